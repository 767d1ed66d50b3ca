//go:build integration

package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/cluster"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// The suite's cluster: node loss is seen after 10 s and Pods on a lost node
// are evicted 2 s later, so node-loss tests finish in seconds.
var (
	cl      *cluster.Cluster
	hook    *cluster.Webhook
	root    string
	kubectl string
	binary  string
)

const (
	nodeMonitorGrace  = 10 * time.Second
	tolerationSeconds = 2
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	var err error
	if root, err = testenv.ModuleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if kubectl, err = testenv.KubectlPath(root); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binary = filepath.Join(root, "bin", "singleton-webhook")
	dir, err := os.MkdirTemp("", "cluster-tier-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	start := time.Now()
	cl, err = cluster.Start(ctx, cluster.Options{
		Dir:                    dir,
		NodeMonitorPeriod:      time.Second,
		NodeMonitorGracePeriod: nodeMonitorGrace,
		TolerationSeconds:      tolerationSeconds,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster tier:", err)
		return 1
	}
	defer func() {
		if err := cl.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "cluster tier:", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "cluster tier: cluster started in %s\n", time.Since(start).Round(100*time.Millisecond))
	if hook, err = cl.StartWebhook(ctx, binary); err != nil {
		fmt.Fprintln(os.Stderr, "cluster tier:", err)
		return 1
	}
	defer func() { hook.Stop() }()
	code := m.Run()
	if code != 0 {
		for name, p := range cl.LogPaths() {
			fmt.Fprintf(os.Stderr, "cluster tier: %s log: %s\n", name, p)
		}
		dumpLogs()
	}
	return code
}

// dumpLogs prints the tail of the webhook's log for a failed run, before
// the directory is removed.
func dumpLogs() {
	b, err := os.ReadFile(hook.LogPath)
	if err != nil {
		return
	}
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	fmt.Fprintf(os.Stderr, "--- tail of the webhook log\n%s\n", b)
}
