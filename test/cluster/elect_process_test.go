//go:build integration

package cluster

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// electProcess is the `elect` sidecar of one Pod, run on this machine with
// the Pod's injected arguments and a token of its ServiceAccount.
type electProcess struct {
	pod, ns    string
	args       []string
	port       int
	dir        string
	kubeconfig string
	proxy      *tcpProxy

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs bytes.Buffer
}

func startElect(t *testing.T, ns string, pod *corev1.Pod, injected []string) *electProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	e := &electProcess{pod: pod.Name, ns: ns, port: port, dir: t.TempDir(), proxy: newTCPProxy(t)}
	// The injected arguments, then what differs from inside the Pod: the
	// port (all candidates share this machine's loopback), the state dir,
	// and the credentials a Pod finds mounted.
	e.args = append(append([]string{}, injected...),
		"--listen-address=127.0.0.1:"+strconv.Itoa(port), "--state-dir="+e.dir, "--kubeconfig="+filepath.Join(e.dir, "kubeconfig"))
	e.kubeconfig = filepath.Join(e.dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://" + e.proxy.addr, CertificateAuthorityData: cl.Config.CAData}
	kc.AuthInfos["c"] = &clientcmdapi.AuthInfo{Token: appToken(t, ns, pod)}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "c"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, e.kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.stop(syscall.SIGTERM)
		if t.Failed() {
			e.mu.Lock()
			t.Logf("logs of the sidecar of %s:\n%s", e.pod, e.logs.String())
			e.mu.Unlock()
		}
	})
	e.start(t)
	return e
}

func (e *electProcess) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binary, e.args...)
	cmd.Env = append(os.Environ(), "POD_NAME="+e.pod, "POD_NAMESPACE="+e.ns, "KUBECONFIG=")
	e.mu.Lock()
	cmd.Stdout, cmd.Stderr = &lockedBuffer{e}, &lockedBuffer{e}
	e.mu.Unlock()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start elect for %s: %v", e.pod, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	e.mu.Lock()
	e.cmd, e.done = cmd, done
	e.mu.Unlock()
}

// stop signals the process and waits for it to exit (killing it after 10s).
func (e *electProcess) stop(sig syscall.Signal) {
	e.mu.Lock()
	cmd, done := e.cmd, e.done
	e.cmd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

type lockedBuffer struct{ e *electProcess }

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.e.logs.Write(p)
}

// tcpProxy forwards 127.0.0.1 to the API server; cut closes the listener and
// every connection (a partition), heal listens again on the same address.
type tcpProxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T) *tcpProxy {
	t.Helper()
	u, err := url.Parse(cl.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), target: u.Host, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(ln, c)
	}
}

func (p *tcpProxy) pipe(ln net.Listener, down net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = down.Close()
		return
	}
	p.mu.Lock()
	if p.ln != ln {
		p.mu.Unlock()
		_ = down.Close()
		_ = up.Close()
		return
	}
	p.conns[down], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	go func() { _, _ = io.Copy(up, down); _ = up.Close() }()
	_, _ = io.Copy(down, up)
	_ = down.Close()
	p.mu.Lock()
	delete(p.conns, down)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

func (p *tcpProxy) heal(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("heal proxy on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}
