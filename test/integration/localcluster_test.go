//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// TestLocalCluster runs what `make run` runs, as a user would: waits for
// the export line, applies examples/replicas.yaml with kubectl, sees its Pod
// Running on a simulated node, sends
// SIGTERM, and checks that every process it started is gone with the
// control plane's data.
func TestLocalCluster(t *testing.T) {
	t.Parallel() // each test runs a control plane of its own
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := testenv.KubectlPath(root)
	if err != nil {
		t.Fatal(err)
	}
	lc, kubeconfig := startLocalCluster(t, root)
	children := childProcesses(t, lc.cmd.Process.Pid)
	for _, want := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "singleton-webhook"} {
		if !containsValue(children, want) {
			t.Errorf("localcluster's children %v lack %s", children, want)
		}
	}
	dataDirs := dataDirectories(t, children)

	run := func(args ...string) (string, string) {
		t.Helper()
		c := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		if err := c.Run(); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	_, warnings := run("apply", "-f", filepath.Join(root, "examples", "replicas.yaml"))
	if !strings.Contains(warnings, "Warning: singleton: spec.replicas forced from 3 to 1") {
		t.Errorf("kubectl apply printed %q, want the replicas warning", warnings)
	}
	if got, _ := run("get", "deploy", "queue-consumer", "-o", "jsonpath={.spec.replicas} {.spec.strategy.type}"); got != "1 Recreate" {
		t.Errorf("stored queue-consumer has replicas and strategy %q, want \"1 Recreate\"", got)
	}
	// The cluster runs Pods: the singleton's one Pod is Running on a node.
	deadline := time.Now().Add(time.Minute)
	var pods string
	for time.Now().Before(deadline) {
		pods, _ = run("get", "pods", "-l", "app=queue-consumer", "-o", "jsonpath={range .items[*]}{.status.phase} {.spec.nodeName};{end}")
		if strings.HasPrefix(pods, "Running node-") && strings.Count(pods, ";") == 1 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.HasPrefix(pods, "Running node-") || strings.Count(pods, ";") != 1 {
		t.Errorf("pods of queue-consumer: %q, want one Running on a node", pods)
	}

	if err := lc.stop(time.Minute); err != nil {
		t.Errorf("%v\n%s", err, lc.stderr.String())
	}
	for pid, name := range children {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("%s (pid %d) still running after localcluster exited", name, pid)
		}
	}
	for _, dir := range append(dataDirs, kubeconfig) {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (stat: %v)", dir, err)
		}
	}
}

// localCluster is a running hack/localcluster process.
type localCluster struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	exited chan struct{} // closed once it exited; err is then set
	err    error
}

// startLocalCluster builds hack/localcluster and starts it, with the
// product binary built once per test process and a run directory of the
// test's, and returns once it printed the export line, with the kubeconfig
// path the line names. t.Cleanup stops it if the test did not.
func startLocalCluster(t *testing.T, root string) (*localCluster, string) {
	t.Helper()
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	goBuild(t, root, filepath.Join(bin, "localcluster"), "./hack/localcluster")
	lc := &localCluster{exited: make(chan struct{})}
	lc.cmd = exec.Command(filepath.Join(bin, "localcluster"),
		"-run-dir", t.TempDir(), "-webhook-binary", testutil.Product(t))
	lc.cmd.Dir = root
	lc.cmd.Env = append(os.Environ(), testenv.AssetsEnv+"="+assets)
	lc.cmd.Stderr = &lc.stderr
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	lc.cmd.Stdout = w
	err = lc.cmd.Start()
	_ = w.Close()
	if err != nil {
		t.Fatalf("start localcluster: %v", err)
	}
	go func() {
		lc.err = lc.cmd.Wait()
		close(lc.exited)
	}()
	t.Cleanup(func() { // a failed test must not leave the cluster running
		_ = lc.stop(time.Minute)
		_ = stdout.Close()
	})
	kubeconfig := waitForExport(t, stdout)
	t.Logf("localcluster exported %s", kubeconfig)
	return lc, kubeconfig
}

// stop sends SIGTERM unless it already exited, and waits for the exit.
func (lc *localCluster) stop(timeout time.Duration) error {
	select {
	case <-lc.exited:
		return lc.err
	default:
	}
	if err := lc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("send SIGTERM to localcluster: %w", err)
	}
	select {
	case <-lc.exited:
		if lc.err != nil {
			return fmt.Errorf("localcluster exited with %w after SIGTERM", lc.err)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("localcluster still running %s after SIGTERM", timeout)
	}
}

func goBuild(t *testing.T, root, out, pkg string) {
	t.Helper()
	c := exec.Command("go", "build", "-o", out, pkg)
	c.Dir = root
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// waitForExport reads the program's output until the export line and
// returns the kubeconfig path it names; the rest of the output is drained.
func waitForExport(t *testing.T, stdout io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if p, ok := strings.CutPrefix(s.Text(), "export KUBECONFIG="); ok {
				found <- p
			}
		}
		close(found)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	select {
	case p, ok := <-found:
		if !ok {
			t.Fatal("localcluster closed its output without printing the export line")
		}
		return p
	case <-ctx.Done():
		t.Fatal("no export line within 2 minutes")
	}
	return ""
}

// childProcesses maps the pids of the direct children of pid to the base
// names of their executables, from /proc.
func childProcesses(t *testing.T, pid int) map[int]string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	children := map[int]string{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after ')'.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(rest))
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		children[p] = filepath.Base(exe)
	}
	return children
}

// dataDirectories returns the --data-dir and --cert-dir arguments of the
// processes: the control plane's state, which must not outlive it.
func dataDirectories(t *testing.T, procs map[int]string) []string {
	t.Helper()
	var dirs []string
	for pid := range procs {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			t.Fatalf("read command line of %d: %v", pid, err)
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			for _, flag := range []string{"--data-dir=", "--cert-dir="} {
				if d, ok := strings.CutPrefix(arg, flag); ok {
					dirs = append(dirs, d)
				}
			}
		}
	}
	if len(dirs) == 0 {
		t.Error("found no --data-dir or --cert-dir among the control plane's arguments")
	}
	return dirs
}

func containsValue(m map[int]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}
