//go:build integration

package cluster

import (
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

	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// electProcess is the `elect` sidecar of one Pod, run on this machine with
// the Pod's injected arguments and a token of its ServiceAccount.
type electProcess struct {
	pod, ns    string
	args       []string
	port       int
	dir        string
	kubeconfig string
	proxy      *testutil.Proxy
	logs       testutil.SyncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startElect(t *testing.T, ns string, pod *corev1.Pod, injected []string) *electProcess {
	t.Helper()
	port := testutil.FreePort(t)
	u, err := url.Parse(cl.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	e := &electProcess{pod: pod.Name, ns: ns, port: port, dir: t.TempDir(), proxy: testutil.NewProxy(t, u.Host)}
	// The injected arguments, then what differs from inside the Pod: the
	// port (all candidates share this machine's loopback), the state dir,
	// and the credentials a Pod finds mounted.
	e.args = append(append([]string{}, injected...),
		"--listen-address=127.0.0.1:"+strconv.Itoa(port), "--state-dir="+e.dir, "--kubeconfig="+filepath.Join(e.dir, "kubeconfig"))
	e.kubeconfig = filepath.Join(e.dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://" + e.proxy.Addr, CertificateAuthorityData: cl.Config.CAData}
	kc.AuthInfos["c"] = &clientcmdapi.AuthInfo{Token: appToken(t, ns, pod)}
	kc.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "c"}
	kc.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*kc, e.kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("logs of the sidecar of %s:\n%s", e.pod, e.logs.String())
		}
	})
	e.start(t)
	return e
}

func (e *electProcess) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binary, e.args...)
	cmd.Env = append(os.Environ(), "POD_NAME="+e.pod, "POD_NAMESPACE="+e.ns, "KUBECONFIG=")
	cmd.Stdout, cmd.Stderr = &e.logs, &e.logs
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
