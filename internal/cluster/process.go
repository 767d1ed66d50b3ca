package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// stopTimeout is how long a component gets to exit after SIGTERM before it
// is killed.
const stopTimeout = 10 * time.Second

// process is one component the cluster started: its command, log file and
// exit.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	exited  chan struct{}
	err     error
}

// startProcess starts binary with args, its output in dir/name.log. The
// child gets SIGKILL if this process dies without stopping it, so a killed
// test or `make run` leaves nothing behind.
func startProcess(dir, name, binary string, args ...string) (*process, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("%s: binary %s missing (run `make controlplane kwok`): %w", name, binary, err)
	}
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: create log: %w", name, err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: start %s: %w; its log: %s", name, binary, err, logPath)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, log: f, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.exited)
	}()
	return p, nil
}

// failed describes why the component is not usable, in one line naming its
// log.
func (p *process) failed(what string, err error) error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited while %s (%v); its log: %s", p.name, what, p.err, p.logPath)
	default:
	}
	return fmt.Errorf("%s: %s: %w; its log: %s", p.name, what, err, p.logPath)
}

// running reports whether the process has not exited.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL after stopTimeout, and waits for the
// exit. Stopping an exited process is a no-op.
func (p *process) stop() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// waitHealthy polls https://127.0.0.1:port/healthz until it answers 200, the
// process exits or ctx ends.
func (p *process) waitHealthy(ctx context.Context, port int) error {
	c := &http.Client{
		Timeout: time.Second,
		// The components serve a self-signed certificate of their own.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback health probe
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	return p.poll(ctx, "becoming healthy on "+url, func() error { return getOK(c, url) })
}

// getOK GETs url and returns an error unless the answer is 200.
func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// poll calls check every 100 ms until it succeeds; it fails when the
// process exits or ctx ends, with check's last error.
func (p *process) poll(ctx context.Context, what string, check func() error) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		last := check()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return p.failed(what, last)
		case <-p.exited:
			return p.failed(what, last)
		case <-t.C:
		}
	}
}

// freePort picks a free port for a component (testutil.PickPort: below
// the ephemeral range, so no client connection takes it meanwhile).
func freePort() (int, error) { return testutil.PickPort() }
