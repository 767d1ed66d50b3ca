package elector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
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
//
// Patches are serialized, and a "leader" patch carries the Pod's
// resourceVersion as a precondition: a leader patch that reaches the API
// server late (its client gave up, the server went on) fails with a
// conflict instead of overwriting a later "standby".
type labeler struct {
	pods    corev1client.PodInterface // nil disables the label
	pod     string
	retry   time.Duration
	log     logr.Logger
	metrics *metrics

	turn chan struct{} // a token: held while a patch is in flight
	kick chan struct{}

	mu      sync.Mutex
	want    string
	applied string // "" when unknown
	rv      string // resourceVersion of the Pod after our last write; "" when unknown
	refused bool   // the API server refuses to let this sidecar set the label
}

func newLabeler(pods corev1client.PodInterface, pod string, retry time.Duration, log logr.Logger, m *metrics) *labeler {
	if pod == "" {
		pods = nil
	}
	return &labeler{
		pods: pods, pod: pod, retry: retry, log: log, metrics: m,
		turn: make(chan struct{}, 1), kick: make(chan struct{}, 1), want: RoleStandby,
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

// sync applies the wanted role now, after any patch in flight; waiting and
// patching together are bounded by timeout.
func (l *labeler) sync(ctx context.Context, timeout time.Duration) error {
	if l.pods == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case l.turn <- struct{}{}:
		defer func() { <-l.turn }()
	case <-ctx.Done():
		return fmt.Errorf("patch pod %s label %s: wait for the patch in flight: %w", l.pod, RoleLabel, ctx.Err())
	}
	l.mu.Lock()
	want, applied, rv := l.want, l.applied, l.rv
	l.mu.Unlock()
	if want == applied {
		return nil
	}
	pod, err := l.patch(ctx, want, rv)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused = refused(err)
	if err != nil {
		l.metrics.labelFailures.Inc()
		if !notApplied(err) {
			l.applied = "" // the patch may have landed despite the error
		}
		l.rv = ""
		return fmt.Errorf("patch pod %s label %s=%s: %w", l.pod, RoleLabel, want, err)
	}
	l.applied, l.rv = want, pod.ResourceVersion
	l.log.V(1).Info("Role label set", "pod", l.pod, "role", want)
	return nil
}

// patch writes the role; a leader patch is conditioned on rv (read first
// when unknown).
func (l *labeler) patch(ctx context.Context, role, rv string) (*corev1.Pod, error) {
	if role != RoleLeader {
		body := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, RoleLabel, role)
		return l.pods.Patch(ctx, l.pod, types.MergePatchType, body, metav1.PatchOptions{})
	}
	if rv == "" {
		pod, err := l.pods.Get(ctx, l.pod, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		rv = pod.ResourceVersion
	}
	body := fmt.Appendf(nil, `{"metadata":{"resourceVersion":%q,"labels":{%q:%q}}}`, rv, RoleLabel, role)
	return l.pods.Patch(ctx, l.pod, types.MergePatchType, body, metav1.PatchOptions{})
}

// mayClaimLeader reports whether the label may still say "leader": it is
// enabled, not known to say standby, and the API server did not refuse to
// let this sidecar set it at all (no such Pod, no RBAC), in which case the
// label is no signal and the failure is only logged.
func (l *labeler) mayClaimLeader() bool {
	if l.pods == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied != RoleStandby && !l.refused
}

// notApplied tells whether the API server answered err and certainly did
// not apply the write: a client error other than a timeout or throttling.
func notApplied(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return false
	}
	code := st.Status().Code
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// refused tells whether err says the label cannot be set by this sidecar.
func refused(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsInvalid(err) || apierrors.IsBadRequest(err)
}
