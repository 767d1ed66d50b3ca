//go:build integration

package elector_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/singleton-webhook/singleton-webhook/elector"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// timings are the election durations the candidates run with.
type timings struct{ lease, renew, retry time.Duration }

var (
	// fast keeps the suite short: valid per elector.Validate, with 0.5s
	// between the leader's renew deadline and the earliest takeover.
	fast = timings{lease: 2 * time.Second, renew: 1500 * time.Millisecond, retry: 300 * time.Millisecond}
	// production are the defaults of `singleton-webhook elect`.
	production = timings{lease: elector.DefaultLeaseDuration, renew: elector.DefaultRenewDeadline, retry: elector.DefaultRetryPeriod}
)

var probe = &http.Client{Timeout: 250 * time.Millisecond}

// candidate is one `singleton-webhook elect` process; it can be stopped
// and started again under the same name, port and state directory, as a
// restarted container would be.
type candidate struct {
	name, ns, lease string
	port            int
	dir             string
	kubeconfig      string
	tm              timings
	extra           []string
	proxy           *testutil.Proxy // its own path to the API server, if any

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs bytes.Buffer
}

func newCandidate(t *testing.T, ns, lease, name string, tm timings, extra ...string) *candidate {
	t.Helper()
	port := restartablePort(t)
	c := &candidate{name: name, ns: ns, lease: lease, port: port, dir: t.TempDir(),
		kubeconfig: cluster.kubeconfig, tm: tm, extra: extra}
	t.Cleanup(func() {
		c.stop(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("logs of %s:\n%s", c.name, c.tail(1<<20))
		}
	})
	return c
}

// restartablePort returns a free loopback port below the kernel's
// ephemeral range: a candidate restarted on its port must find it free,
// and a port of the ephemeral range may meanwhile be the source port of
// any connection on the machine (the other test packages run at once).
func restartablePort(t *testing.T) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const from = 10000
	if low-from < 1000 {
		// No room below the ephemeral range: any free port.
		return testutil.FreePort(t)
	}
	for range 100 {
		port := from + rand.IntN(low-from)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		_ = ln.Close()
		return port
	}
	t.Fatalf("no free port in %d..%d", from, low-1)
	return 0
}

// start runs the process and waits until it serves /healthz.
func (c *candidate) start(t *testing.T) {
	t.Helper()
	args := []string{"elect",
		"--lease-name=" + c.lease, "--lease-namespace=" + c.ns, "--identity=" + c.name,
		"--lease-duration=" + c.tm.lease.String(), "--renew-deadline=" + c.tm.renew.String(),
		"--retry-period=" + c.tm.retry.String(), "--listen-address=" + c.addr(), "--state-dir=" + c.dir,
		"--kubeconfig=" + c.kubeconfig, "--zap-time-encoding=rfc3339nano", "--zap-log-level=1"}
	cmd := exec.Command(cluster.bin, append(args, c.extra...)...)
	cmd.Env = append(os.Environ(), "POD_NAME=", "POD_NAMESPACE=")
	c.mu.Lock()
	fmt.Fprintf(&c.logs, "--- start %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = &lockedWriter{c}, &lockedWriter{c}
	c.mu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", c.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	if !eventually(10*time.Second, func() bool { return c.healthy() }) {
		t.Fatalf("%s does not serve /healthz", c.name)
	}
}

// stop signals the process and waits up to timeout for it to exit; it
// returns the exit code, or -1 if it did not exit or was not running.
func (c *candidate) stop(sig syscall.Signal, timeout time.Duration) int {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil {
		return -1
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return -1
	}
	c.mu.Lock()
	c.cmd = nil
	c.mu.Unlock()
	return cmd.ProcessState.ExitCode()
}

// signal sends sig to the running process (SIGSTOP, SIGCONT).
func (c *candidate) signal(sig syscall.Signal) {
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(sig)
	}
}

// freshFile reads the leader file and reports whether it is valid: present,
// saying isLeader, and read before its validUntil. That is how the README
// tells applications to read it: a killed or stopped sidecar cannot remove
// its file, but its validUntil passes.
func (c *candidate) freshFile() (elector.Status, bool) {
	var st elector.Status
	b, err := os.ReadFile(c.filePath())
	read := time.Now()
	if err != nil || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, st.IsLeader && st.ValidUntil != nil && st.ValidUntil.After(read)
}

func (c *candidate) addr() string { return "127.0.0.1:" + strconv.Itoa(c.port) }

func (c *candidate) healthy() bool {
	resp, err := probe.Get("http://" + c.addr() + "/healthz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// status is GET /leader; a candidate that does not answer is no leader.
func (c *candidate) status() (elector.Status, error) {
	var st elector.Status
	resp, err := probe.Get("http://" + c.addr() + "/leader")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /leader: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (c *candidate) httpLeader() bool {
	st, err := c.status()
	return err == nil && st.IsLeader
}

func (c *candidate) filePath() string { return filepath.Join(c.dir, elector.LeaderFileName) }

func (c *candidate) hasFile() bool {
	_, err := os.Stat(c.filePath())
	return err == nil
}

func (c *candidate) tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.logs.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// logged returns the time of the first log line with message msg at or
// after since, from the candidate's own (nanosecond) log timestamps.
func (c *candidate) logged(msg string, since time.Time) (time.Time, bool) {
	c.mu.Lock()
	lines := strings.Split(c.logs.String(), "\n")
	c.mu.Unlock()
	for _, line := range lines {
		var entry struct {
			TS  string `json:"ts"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Msg != msg {
			continue
		}
		if ts, err := time.Parse(time.RFC3339Nano, entry.TS); err == nil && !ts.Before(since) {
			return ts, true
		}
	}
	return time.Time{}, false
}

// lockedWriter appends process output to the candidate's log buffer.
type lockedWriter struct{ c *candidate }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.logs.Write(p)
}
