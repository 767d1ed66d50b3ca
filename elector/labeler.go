package elector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// labeler keeps the RoleLabel of the own Pod equal to the wanted role. The
// label is the weakest signal: it needs the API server, so while the Pod is
// cut off from it the label may still say "leader" after the other signals
// dropped. It is retried every retry period until it sticks.
type labeler struct {
	pods    corev1client.PodInterface // nil disables the label
	pod     string
	retry   time.Duration
	timeout time.Duration
	log     logr.Logger
	metrics *metrics

	// patchMu serializes patches, so they land in the order roles were set.
	patchMu sync.Mutex
	mu      sync.Mutex
	want    string
	applied string
	kick    chan struct{}
}

func newLabeler(pods corev1client.PodInterface, pod string, retry time.Duration, log logr.Logger, m *metrics) *labeler {
	if pod == "" {
		pods = nil
	}
	return &labeler{
		pods: pods, pod: pod, retry: retry, timeout: retry, log: log, metrics: m,
		want: RoleStandby, kick: make(chan struct{}, 1),
	}
}

// set records the wanted role; run applies it in the background.
func (l *labeler) set(role string) {
	l.mu.Lock()
	l.want = role
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run applies the wanted role whenever it changes, and retries failures
// every retry period, until ctx is done.
func (l *labeler) run(ctx context.Context) {
	if l.pods == nil {
		return
	}
	tick := time.NewTicker(l.retry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-tick.C:
		}
		if err := l.sync(ctx); err != nil {
			l.log.Error(err, "Cannot set the role label; will retry", "pod", l.pod)
		}
	}
}

// sync applies the wanted role now, waiting for a patch in flight first.
// Each attempt is bounded by the retry period.
func (l *labeler) sync(ctx context.Context) error {
	if l.pods == nil {
		return nil
	}
	l.patchMu.Lock()
	defer l.patchMu.Unlock()
	l.mu.Lock()
	want, applied := l.want, l.applied
	l.mu.Unlock()
	if want == applied {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, RoleLabel, want)
	if _, err := l.pods.Patch(ctx, l.pod, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		l.metrics.labelFailures.Inc()
		// The patch may have landed despite the error: the label is unknown.
		l.mu.Lock()
		l.applied = ""
		l.mu.Unlock()
		return fmt.Errorf("patch pod %s label %s=%s: %w", l.pod, RoleLabel, want, err)
	}
	l.mu.Lock()
	l.applied = want
	l.mu.Unlock()
	l.log.V(1).Info("Role label set", "pod", l.pod, "role", want)
	return nil
}
