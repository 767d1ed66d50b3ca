package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// stopTimeout is how long the webhook gets to exit after SIGTERM before it
// is killed.
const stopTimeout = 10 * time.Second

// child is the singleton-webhook serve process.
type child struct {
	cmd        *exec.Cmd
	caPath     string
	logPath    string
	logFile    *os.File
	url        string
	readyURL   string
	metricsURL string
	exited     chan struct{}
	exitErr    error
}

// startWebhook starts `singleton-webhook serve --self-signed` on free
// loopback ports, its output going to runDir/webhook.log. The child gets its
// own process group, so a Ctrl-C reaches only this program, which stops it
// in order; it is also sent SIGTERM if this program dies.
func startWebhook(o *options, kubeconfig string) (*child, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	c := &child{
		caPath:     filepath.Join(o.runDir, "ca.crt"),
		logPath:    filepath.Join(o.runDir, "webhook.log"),
		url:        fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
		readyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]),
		exited:     make(chan struct{}),
	}
	_ = os.Remove(c.caPath) // a stale CA must not pass for this run's
	if c.logFile, err = os.Create(c.logPath); err != nil {
		return nil, fmt.Errorf("create webhook log: %w", err)
	}
	c.cmd = exec.Command(o.binary, "serve",
		"--self-signed", "--self-signed-ca-out", c.caPath,
		"--kubeconfig", kubeconfig,
		"--webhook-port", strconv.Itoa(ports[0]),
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(ports[1]),
		"--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(ports[2]),
	)
	c.cmd.Stdout, c.cmd.Stderr = c.logFile, c.logFile
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := c.cmd.Start(); err != nil {
		_ = c.logFile.Close()
		return nil, fmt.Errorf("start %s: %w", o.binary, err)
	}
	go func() {
		c.exitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// waitReady waits for /readyz and returns the CA bundle the child wrote.
func (c *child) waitReady(ctx context.Context) ([]byte, error) {
	for {
		if ca, err := os.ReadFile(c.caPath); err == nil && len(ca) > 0 && c.ready(ctx) {
			return ca, nil
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("singleton-webhook exited during start-up: %w; its log: %s", c.exitErr, c.logPath)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for singleton-webhook to be ready at %s: %w; its log: %s", c.readyURL, ctx.Err(), c.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *child) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.readyURL, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM, waits, and kills the child if it does not exit in
// time. The CA file goes with it; the log stays for a post-mortem.
func (c *child) stop() error {
	defer func() {
		_ = c.logFile.Close()
		_ = os.Remove(c.caPath)
	}()
	select {
	case <-c.exited:
		return nil // already reported by run
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop singleton-webhook: %w", err)
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("stop singleton-webhook: killed after %s without exiting", stopTimeout)
	}
}

// freePorts returns n distinct loopback ports free at the time of the call.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
