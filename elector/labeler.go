package elector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// labeler keeps the RoleLabel of the own Pod equal to the wanted role. The
// label is the weakest signal: it needs the API server, so while the Pod is
// cut off from it the label may still say "leader" after the other signals
// dropped. Patches are retried every retry period until they stick, and a
// Lease is released only once the label is known to say standby.
type labeler struct {
	pods    corev1client.PodInterface // nil disables the label
	pod     string
	retry   time.Duration
	log     logr.Logger
	metrics *metrics

	// patchMu serializes patches, so they land in the order roles were set.
	patchMu  sync.Mutex
	mu       sync.Mutex
	want     string
	applied  string // "" when unknown
	rejected bool   // the last patch was refused by the API server
	kick     chan struct{}
}

func newLabeler(pods corev1client.PodInterface, pod string, retry time.Duration, log logr.Logger, m *metrics) *labeler {
	if pod == "" {
		pods = nil
	}
	return &labeler{
		pods: pods, pod: pod, retry: retry, log: log, metrics: m,
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
		if err := l.sync(ctx, l.retry); err != nil {
			l.log.Error(err, "Cannot set the role label; will retry", "pod", l.pod)
		}
	}
}

// sync applies the wanted role now, waiting for a patch in flight first;
// the attempt is bounded by timeout.
func (l *labeler) sync(ctx context.Context, timeout time.Duration) error {
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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, RoleLabel, want)
	_, err := l.pods.Patch(ctx, l.pod, types.MergePatchType, patch, metav1.PatchOptions{})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rejected = rejected(err)
	if err != nil {
		l.metrics.labelFailures.Inc()
		if !l.rejected {
			l.applied = "" // the patch may have landed despite the error
		}
		return fmt.Errorf("patch pod %s label %s=%s: %w", l.pod, RoleLabel, want, err)
	}
	l.applied = want
	l.log.V(1).Info("Role label set", "pod", l.pod, "role", want)
	return nil
}

// mayClaimLeader reports whether the label may still say "leader": it is
// enabled, not known to say standby, and the API server did not refuse to
// let this sidecar set it at all (no such Pod, no RBAC), in which case the
// label is not a signal and is only logged.
func (l *labeler) mayClaimLeader() bool {
	if l.pods == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied != RoleStandby && !l.rejected
}

// rejected tells whether the API server answered err and certainly did not
// apply the patch: a client error other than a timeout or throttling.
func rejected(err error) bool {
	var st apierrors.APIStatus
	if err == nil || !errors.As(err, &st) {
		return false
	}
	code := st.Status().Code
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}
