package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestOptionsRefused(t *testing.T) {
	tests := map[string]struct {
		opts Options
		want string
	}{
		"no directory": {Options{}, "no directory"},
		"negative nodes": {Options{Dir: "d", Nodes: -1},
			"-1 nodes: want at least 1"},
		"a grace period shorter than two monitor periods": {Options{Dir: "d", NodeMonitorPeriod: 5 * time.Second, NodeMonitorGracePeriod: 8 * time.Second},
			"node monitor grace period 8s must be at least twice the monitor period 5s"},
		"negative tolerations": {Options{Dir: "d", TolerationSeconds: -3},
			"toleration -3 s: want 0 or more"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.defaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	o := Options{Dir: "d"}
	if err := o.defaults(); err != nil || o.Nodes != DefaultNodes || o.NodeMonitorGracePeriod != DefaultNodeMonitorGracePeriod || o.TolerationSeconds != DefaultTolerationSeconds {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestStartWithoutTheBinariesNamesTheMissingOne(t *testing.T) {
	assets := t.TempDir()
	// The API server's binaries exist; the cluster's own do not.
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if err := os.WriteFile(filepath.Join(assets, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KUBEBUILDER_ASSETS", assets)
	_, err := Start(context.Background(), Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "kube-controller-manager missing") || !strings.Contains(err.Error(), "make controlplane kwok") {
		t.Errorf("got %v, want the missing component and how to build it", err)
	}
}

func TestAComponentThatDiesAtStartIsReportedWithItsLog(t *testing.T) {
	dir := t.TempDir()
	p, err := startProcess(dir, "kube-scheduler", "/bin/sh", "-c", "echo 'bind: address already in use'; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.waitHealthy(ctx, port)
	logPath := filepath.Join(dir, "kube-scheduler.log")
	if err == nil || !strings.Contains(err.Error(), "kube-scheduler exited while becoming healthy") ||
		!strings.Contains(err.Error(), "exit status 3") || !strings.HasSuffix(err.Error(), "its log: "+logPath) {
		t.Errorf("got %v, want one line naming kube-scheduler, its exit and its log %s", err, logPath)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the error spans lines: %q", err)
	}
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), "address already in use") {
		t.Errorf("log %q lacks the component's output", b)
	}
}

func TestStartProcessWithAMissingBinary(t *testing.T) {
	_, err := startProcess(t.TempDir(), "kwok-node-0", "/nonexistent/kwok")
	if err == nil || !strings.HasPrefix(err.Error(), "kwok-node-0: binary /nonexistent/kwok missing") {
		t.Errorf("got %v, want the component and the missing binary named", err)
	}
}

func TestStopEndsAComponentThatIgnoresSIGTERM(t *testing.T) {
	p, err := startProcess(t.TempDir(), "stubborn", "/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		p.stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout + 10*time.Second):
		t.Fatal("stop did not return")
	}
	if p.running() {
		t.Error("the component still runs after stop")
	}
}

func TestNodesHaveDistinctAddresses(t *testing.T) {
	if nodeIP(0) == nodeIP(1) || podCIDR(0) == podCIDR(1) {
		t.Errorf("nodes share addresses: %s %s, %s %s", nodeIP(0), nodeIP(1), podCIDR(0), podCIDR(1))
	}
}

// The Pods of the Jobs a test runs are left out of exactly the Stages that
// would run them (pod-ready, pod-complete), and every other Stage is kept
// as it is; without such Jobs the Stages are the embedded ones.
func TestStagesLeaveTheJobsRunByTheTest(t *testing.T) {
	if b, err := stagesLeaving(stages, nil); err != nil || string(b) != string(stages) {
		t.Fatalf("without Jobs: %v, stages changed %t", err, string(b) != string(stages))
	}
	b, err := stagesLeaving(stages, []string{"hook"})
	if err != nil {
		t.Fatal(err)
	}
	docs, orig := strings.Split(string(b), "\n---\n"), strings.Split(string(stages), "\n---\n")
	if len(docs) != len(orig) {
		t.Fatalf("%d Stages, want %d", len(docs), len(orig))
	}
	changed := 0
	for i, d := range docs {
		if d == orig[i] {
			continue
		}
		changed++
		st := map[string]any{}
		if err := yaml.Unmarshal([]byte(d), &st); err != nil {
			t.Fatal(err)
		}
		name, _, _ := unstructured.NestedString(st, "metadata", "name")
		exprs, _, _ := unstructured.NestedSlice(st, "spec", "selector", "matchExpressions")
		last, _ := exprs[len(exprs)-1].(map[string]any)
		if !slices.Contains(podRunningStages, name) || last["key"] != `.metadata.labels["batch.kubernetes.io/job-name"]` ||
			last["operator"] != "NotIn" || fmt.Sprint(last["values"]) != "[hook]" {
			t.Errorf("stage %s changed to select %v", name, last)
		}
		tmpl, _, _ := unstructured.NestedString(st, "spec", "next", "statusTemplate")
		if !strings.Contains(orig[i], strings.Split(strings.TrimSpace(tmpl), "\n")[0]) {
			t.Errorf("stage %s lost its status template", name)
		}
	}
	if changed != len(podRunningStages) {
		t.Errorf("%d Stages changed, want %d", changed, len(podRunningStages))
	}
}
