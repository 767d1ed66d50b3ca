//go:build integration

package install

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// loadNamespace holds the Deployments of the load loop.
const loadNamespace = "load"

// rotations is how many renewals the rotation test forces.
const rotations = 3

// load writes singleton Deployments through the API server from a few
// workers until stopped, and counts the admissions: every create and update
// must come back mutated (one replica, Recreate). Admissions are also
// counted per epoch: epoch r begins once the server is seen serving the
// certificate of renewal r.
type load struct {
	cs       kubernetes.Interface
	epoch    atomic.Int64
	perEpoch [rotations + 1]atomic.Int64
	ok       atomic.Int64
	failed   atomic.Int64

	mu       sync.Mutex
	failures []string
}

// run starts workers goroutines, and returns a function that stops them and
// waits for them.
func (l *load) run(ctx context.Context, workers int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(ctx, w)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// worker creates a singleton Deployment asking for 3 replicas, updates it to
// ask for 4, and deletes it, over and over: two admissions per round.
func (l *load) worker(ctx context.Context, w int) {
	api := l.cs.AppsV1().Deployments(loadNamespace)
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("load-%d-%d", w, i)
		epoch := l.epoch.Load()
		d, err := api.Create(ctx, loadDeployment(name), metav1.CreateOptions{})
		if !l.record(ctx, epoch, "create "+name, d, err) {
			continue
		}
		four := int32(4)
		d.Spec.Replicas = &four
		epoch = l.epoch.Load()
		d, err = api.Update(ctx, d, metav1.UpdateOptions{})
		l.record(ctx, epoch, "update "+name, d, err)
		_ = api.Delete(ctx, name, metav1.DeleteOptions{})
	}
}

// record counts one admission; it reports whether it succeeded. A call cut
// short by the end of the load is not an admission.
func (l *load) record(ctx context.Context, epoch int64, what string, d *appsv1.Deployment, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch {
	case err != nil:
		l.fail(fmt.Sprintf("%s: %v", what, err))
		return false
	case d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType:
		l.fail(fmt.Sprintf("%s: admitted un-mutated: replicas %v, strategy %q", what, d.Spec.Replicas, d.Spec.Strategy.Type))
		return false
	}
	l.ok.Add(1)
	l.perEpoch[epoch].Add(1)
	return true
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, msg)
	}
}

func loadDeployment(name string) *appsv1.Deployment {
	three := int32(3)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: loadNamespace, Annotations: map[string]string{"singleton": "true"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &three,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
}

// closingServer registers every handler so that its responses close the
// connection: each admission is then a new TLS handshake with whatever
// certificate the server holds at that moment, and an admission that
// succeeds after a rotation proves the API server verified the new one.
// (With keep-alive, the API server could keep using a connection made
// before the rotation.)
type closingServer struct {
	ctrlwebhook.Server
}

func (s closingServer) Register(path string, hook http.Handler) {
	s.Server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		hook.ServeHTTP(w, r)
	}))
}
