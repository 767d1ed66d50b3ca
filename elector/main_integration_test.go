//go:build integration

package elector_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// cluster is the real API server (with etcd) the integration tests share,
// and the binary whose `elect` command they run as candidates.
var cluster struct {
	cfg        *rest.Config
	client     kubernetes.Interface
	kubeconfig string
	bin        string
	tmp        string
}

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

// electBin, when set, is a prebuilt binary to run as the candidates
// instead of building the repository's (for experiments with a changed
// elector, built elsewhere).
var electBin = flag.String("elect-bin", "", "prebuilt singleton-webhook binary to run as the candidates; default: build the repository's")

func runMain(m *testing.M) int {
	flag.Parse()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "FAIL: KUBEBUILDER_ASSETS is not set; the elector integration tests need a real "+
			"kube-apiserver and etcd: run them with KUBEBUILDER_ASSETS=$PWD/bin/k8s (see hack/controlplane)")
		return 1
	}
	tmp, err := os.MkdirTemp("", "elector-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	cluster.tmp = tmp
	if err := build(tmp); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start kube-apiserver and etcd from %s: %v\n", assets, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	cluster.cfg = cfg
	cluster.client = kubernetes.NewForConfigOrDie(cfg)
	cluster.kubeconfig = filepath.Join(tmp, "kubeconfig")
	if err := writeKubeconfig(cluster.kubeconfig, cfg, cfg.Host); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	return m.Run()
}

// build compiles the product binary from the repository root.
func build(tmp string) error {
	root, err := filepath.Abs("..")
	if err != nil {
		return err
	}
	cluster.bin = filepath.Join(tmp, "singleton-webhook")
	if *electBin != "" {
		cluster.bin = *electBin
	} else {
		cmd := exec.Command("go", "build", "-o", cluster.bin, ".")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build the singleton-webhook binary: %w\n%s", err, out)
		}
	}
	// Fail early, with a clear message, if the binary has no elect command.
	out, _ := exec.Command(cluster.bin, "elect", "-h").CombinedOutput()
	if !strings.Contains(string(out), "-lease-name") {
		return fmt.Errorf("the built binary has no working elect command (is runElect wired in package main?): %s", out)
	}
	return nil
}

// writeKubeconfig writes cfg's credentials for the given server URL.
func writeKubeconfig(path string, cfg *rest.Config, server string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// newNamespace creates a namespace of its own for a test, with one Pod
// object per candidate name (no kubelet runs: the Pods exist only for
// their labels).
func newNamespace(t *testing.T, pods ...string) string {
	t.Helper()
	ctx := context.Background()
	ns, err := cluster.client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "elect-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	for _, name := range pods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name, Labels: map[string]string{"app": "it"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
		}
		if _, err := cluster.client.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
	}
	return ns.Name
}

// eventually polls cond every 5ms until it holds or timeout passes.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}
