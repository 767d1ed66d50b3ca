package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// nodeLeaseNamespace holds one Lease per node, never a singleton's: it is
// left out of cluster-wide Lease lists, which would otherwise grow with
// the cluster.
const nodeLeaseNamespace = "kube-node-lease"

// Scope is what a command reads: one namespace, or all of them, and
// optionally one Deployment.
type Scope struct {
	// Namespace is the namespace read when AllNamespaces is false.
	Namespace string
	// AllNamespaces reads every namespace.
	AllNamespaces bool
	// Name restricts the answer to the Deployment of that name.
	Name string
}

// Snapshot is what was read of the cluster at one time.
type Snapshot struct {
	// Now is when the reading started: ages and Lease validity count from it.
	Now time.Time
	// Deployments are the Deployments in scope, singletons or not.
	Deployments []appsv1.Deployment
	// Pods are the Pods in scope that carry patches.LabelDeployment.
	Pods []corev1.Pod
	// Leases are the Leases in scope.
	Leases []coordinationv1.Lease
	// Unread names what could not be read; the answer is partial if any.
	Unread []ReadError
	// unreadKinds records, per namespace ("" for all), the kinds not read.
	unreadKinds map[string]map[string]bool
}

// ReadError is one list that failed.
type ReadError struct {
	// Resource is the plural resource name ("pods").
	Resource string
	// Namespace is the namespace listed; empty: all namespaces.
	Namespace string
	// Err is the failure.
	Err error
}

// Error says in one line what could not be read and why.
func (e ReadError) Error() string {
	where := "in all namespaces"
	if e.Namespace != "" {
		where = "in namespace " + e.Namespace
	}
	reason := e.Err.Error()
	if apierrors.IsForbidden(e.Err) {
		reason = "forbidden: the caller may not list " + e.Resource + " " + where
	}
	return fmt.Sprintf("cannot list %s %s: %s", e.Resource, where, reason)
}

// Known reports whether resource was read in namespace ns.
func (s *Snapshot) Known(resource, ns string) bool {
	return !s.unreadKinds[""][resource] && !s.unreadKinds[ns][resource]
}

func (s *Snapshot) unread(resource, ns string, err error) {
	s.Unread = append(s.Unread, ReadError{Resource: resource, Namespace: ns, Err: err})
	if s.unreadKinds == nil {
		s.unreadKinds = map[string]map[string]bool{}
	}
	if s.unreadKinds[ns] == nil {
		s.unreadKinds[ns] = map[string]bool{}
	}
	s.unreadKinds[ns][resource] = true
}

// Read lists the Deployments, the Pods of singletons and the Leases in
// scope: one list per kind. With AllNamespaces and no right to list a kind
// cluster-wide, it lists the namespaces and reads each one it may: the
// answer covers those and is partial. Only a failure that leaves nothing
// to show (the API server unreachable, no namespace readable) is an error.
func Read(ctx context.Context, cs kubernetes.Interface, scope Scope) (*Snapshot, error) {
	return readAt(ctx, cs, scope, time.Now())
}

// readAt is Read with the snapshot's time given.
func readAt(ctx context.Context, cs kubernetes.Interface, scope Scope, now time.Time) (*Snapshot, error) {
	s := &Snapshot{Now: now}
	ns := scope.Namespace
	if scope.AllNamespaces {
		ns = metav1.NamespaceAll
	}
	err := s.readIn(ctx, cs, ns, scope.Name)
	if err == nil || !scope.AllNamespaces || !apierrors.IsForbidden(err) {
		return s, err
	}
	// Not allowed cluster-wide: read namespace by namespace.
	names, lerr := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if lerr != nil {
		return nil, fmt.Errorf("%w; listing the namespaces to read them one by one failed too (%v): pass -n NAMESPACE", err, shortErr(lerr))
	}
	*s = Snapshot{Now: s.Now}
	readable := 0
	for _, n := range names.Items {
		switch err := s.readIn(ctx, cs, n.Name, scope.Name); {
		case err == nil:
			readable++
		case !apierrors.IsForbidden(err):
			return nil, err
		}
	}
	if readable == 0 {
		return nil, fmt.Errorf("cannot list deployments in any of the %d namespaces: forbidden", len(names.Items))
	}
	return s, nil
}

// readIn lists each kind in ns (all: ""). A list the caller may not make is
// recorded in Unread; a Deployments list that fails is also returned, as
// nothing can be said of that namespace.
func (s *Snapshot) readIn(ctx context.Context, cs kubernetes.Interface, ns, name string) error {
	opts := metav1.ListOptions{}
	if name != "" {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
	ds, err := cs.AppsV1().Deployments(ns).List(ctx, opts)
	if err != nil {
		if apierrors.IsForbidden(err) && ns != metav1.NamespaceAll {
			s.unread("deployments", ns, err)
		}
		return describeListError("deployments", ns, err)
	}
	s.Deployments = append(s.Deployments, ds.Items...)
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: patches.LabelDeployment})
	if err != nil {
		if !apierrors.IsForbidden(err) {
			return describeListError("pods", ns, err)
		}
		s.unread("pods", ns, err)
	} else {
		s.Pods = append(s.Pods, pods.Items...)
	}
	lopts := metav1.ListOptions{}
	if ns == metav1.NamespaceAll {
		lopts.FieldSelector = fields.OneTermNotEqualSelector("metadata.namespace", nodeLeaseNamespace).String()
	}
	leases, err := cs.CoordinationV1().Leases(ns).List(ctx, lopts)
	if err != nil {
		if !apierrors.IsForbidden(err) {
			return describeListError("leases", ns, err)
		}
		s.unread("leases", ns, err)
	} else {
		s.Leases = append(s.Leases, leases.Items...)
	}
	return nil
}

// describeListError turns a failed list into one line naming what was
// being read; a forbidden cluster-wide list keeps its type (IsForbidden).
func describeListError(resource, ns string, err error) error {
	where := "in all namespaces"
	if ns != "" {
		where = "in namespace " + ns
	}
	if apierrors.IsForbidden(err) {
		return &forbiddenError{msg: fmt.Sprintf("cannot list %s %s: forbidden", resource, where), err: err}
	}
	return fmt.Errorf("cannot list %s %s: %s", resource, where, shortErr(err))
}

// forbiddenError is a forbidden list, described in one line.
type forbiddenError struct {
	msg string
	err error
}

func (e *forbiddenError) Error() string { return e.msg }
func (e *forbiddenError) Unwrap() error { return e.err }

// shortErr is the last, most specific part of a client error: a dial
// failure ends with "connection refused", not with the whole URL chain.
func shortErr(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "dial tcp "); i >= 0 {
		return msg[i:]
	}
	return msg
}

// sortDeployments orders Deployments by namespace and name.
func sortDeployments(ds []appsv1.Deployment) {
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].Namespace != ds[j].Namespace {
			return ds[i].Namespace < ds[j].Namespace
		}
		return ds[i].Name < ds[j].Name
	})
}
