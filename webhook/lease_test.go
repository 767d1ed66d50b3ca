package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// electionManifest is an election-mode singleton "app" in default; lease,
// if set, is its singleton.dev/lease-name.
func electionManifest(mode, lease string) string {
	extra := ""
	if lease != "" {
		extra = "\n    " + patches.AnnotationLeaseName + ": " + lease
	}
	return `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: default
  uid: 7d7c9d8e-0000-4000-8000-000000000001
  annotations:
    singleton: "true"
    ` + patches.AnnotationMode + `: ` + mode + extra + `
spec:
  replicas: 2` + podTemplate
}

// leaseMeta is the metadata of a Lease named name in default.
func leaseMeta(name string, labels map[string]string, owner *metav1.OwnerReference) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels}}
	if owner != nil {
		m.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return m
}

// deploymentOwner is a controller reference to the apps/v1 Deployment name.
func deploymentOwner(name, uid string) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: types.UID(uid),
		Controller: ptr.To(true)}
}

// leaseWarningPrefix starts every Lease conflict warning.
const leaseWarningPrefix = "singleton: the leader-election Lease "

var ours = map[string]string{"app.kubernetes.io/managed-by": "singleton-webhook"}

// TestDeploymentsWarnOfLeasesNotOurs checks the warning an election-mode
// singleton gets when its Lease exists and is not the webhook's for it, and
// that nothing is said (and, in replicas mode, nothing looked up) otherwise.
func TestDeploymentsWarnOfLeasesNotOurs(t *testing.T) {
	const uid = "7d7c9d8e-0000-4000-8000-000000000001"
	for name, tc := range map[string]struct {
		mode, leaseName string
		lease           *metav1.PartialObjectMetadata
		err             error
		op              admissionv1.Operation
		wantLookup      string // namespace/name looked up; empty: no lookup
		want            []string
	}{
		"a Lease another component made": {
			mode: "election", leaseName: "kube-thing", op: admissionv1.Create, wantLookup: "default/kube-thing",
			lease: leaseMeta("kube-thing", map[string]string{"app.kubernetes.io/managed-by": "Helm"},
				&metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "thing", UID: "u", Controller: ptr.To(true)}),
			want: []string{"singleton: the leader-election Lease default/kube-thing exists and is not managed by singleton-webhook " +
				`(app.kubernetes.io/managed-by="Helm", controller ConfigMap thing): ` +
				"the webhook will not grant the elector sidecar access to it; set singleton.dev/lease-name to a name " +
				"nothing else uses, or delete that Lease if nothing needs it"},
		},
		"an unlabelled Lease without owner": {
			mode: "election", leaseName: "bare", op: admissionv1.Update, wantLookup: "default/bare",
			lease: leaseMeta("bare", nil, nil),
			want: []string{"singleton: the leader-election Lease default/bare exists and is not managed by singleton-webhook " +
				"(no app.kubernetes.io/managed-by label, no controller): the webhook will not grant"},
		},
		"another singleton's Lease": {
			mode: "election", leaseName: "first", op: admissionv1.Create, wantLookup: "default/first",
			lease: leaseMeta("first", ours, deploymentOwner("first", "other")),
			want: []string{"singleton: the leader-election Lease default/first exists and was made by singleton-webhook " +
				"for Deployment first, not for this Deployment: the webhook will not grant"},
		},
		"a labelled Lease without controller": {
			mode: "election", leaseName: "stray", op: admissionv1.Create, wantLookup: "default/stray",
			lease: leaseMeta("stray", ours, nil),
			want: []string{"singleton: the leader-election Lease default/stray exists and carries " +
				"app.kubernetes.io/managed-by=singleton-webhook but no controller"},
		},
		"its own Lease, by the default name": {
			mode: "election", op: admissionv1.Update, wantLookup: "default/app",
			lease: leaseMeta("app", ours, deploymentOwner("app", uid)),
		},
		"a Lease an earlier Deployment of its name left": {
			mode: "election", op: admissionv1.Create, wantLookup: "default/app",
			lease: leaseMeta("app", ours, deploymentOwner("app", "earlier")),
		},
		"no Lease yet": {
			mode: "election", leaseName: "fresh", op: admissionv1.Create, wantLookup: "default/fresh",
		},
		"a lookup error": {
			mode: "election", leaseName: "kube-thing", op: admissionv1.Create, wantLookup: "default/kube-thing",
			err: errors.New("connection refused"),
		},
		"replicas mode": {mode: "replicas", leaseName: "kube-thing", op: admissionv1.Create},
	} {
		t.Run(name, func(t *testing.T) {
			var looked []string
			h := &Deployments{Leases: func(ctx context.Context, namespace, name string) (*metav1.PartialObjectMetadata, error) {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("the lookup has no deadline")
				}
				looked = append(looked, namespace+"/"+name)
				return tc.lease, tc.err
			}}
			resp := h.Handle(context.Background(), deploymentRequest(tc.op, toJSON(t, electionManifest(tc.mode, tc.leaseName))))
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			if want := []string{tc.wantLookup}; tc.wantLookup == "" && len(looked) != 0 ||
				tc.wantLookup != "" && strings.Join(looked, ",") != strings.Join(want, ",") {
				t.Errorf("looked up %q, want %q", looked, tc.wantLookup)
			}
			var got []string
			for _, w := range resp.Warnings {
				if strings.HasPrefix(w, leaseWarningPrefix) {
					got = append(got, w)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Lease warnings %q, want %d starting %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("warning %q\nwant it to start %q", got[i], tc.want[i])
				}
			}
		})
	}
}

// TestDeploymentsWithoutLeaseLookup checks offline review: an election-mode
// singleton naming any Lease is mutated without a Lease warning.
func TestDeploymentsWithoutLeaseLookup(t *testing.T) {
	h := NewHandlers(patches.Policy{}, nil).Deployments
	resp := h.Handle(context.Background(), deploymentRequest(admissionv1.Create, toJSON(t, electionManifest("election", "kube-thing"))))
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("allowed %t, patches %v; want the election mutation", resp.Allowed, resp.Patches)
	}
	for _, w := range resp.Warnings {
		if strings.HasPrefix(w, leaseWarningPrefix) {
			t.Errorf("warning %q without a lookup", w)
		}
	}
}

// TestCachedLease checks where the lookup reads: the cache of the
// controllers' Leases first, the API server for what it does not hold, the
// API server only without a cache; none anywhere is nil, no error.
func TestCachedLease(t *testing.T) {
	lease := func(from string) client.Object {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app",
			Annotations: map[string]string{"from": from}}}
	}
	empty := func() client.Reader { return fake.NewClientBuilder().WithScheme(scheme.Scheme).Build() }
	with := func(o client.Object) client.Reader {
		return fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(o).Build()
	}
	broken := interceptorReader(errors.New("cache not synced"))
	for name, tc := range map[string]struct {
		cache, api client.Reader
		want       string // the "from" annotation; empty: none
		wantErr    bool
	}{
		"the cache has it":               {cache: with(lease("cache")), api: with(lease("api")), want: "cache"},
		"only the API server has it":     {cache: empty(), api: with(lease("api")), want: "api"},
		"no cache: the API server":       {api: with(lease("api")), want: "api"},
		"neither has it":                 {cache: empty(), api: empty()},
		"the cache fails: no API read":   {cache: broken, api: with(lease("api")), wantErr: true},
		"the API server fails: an error": {cache: empty(), api: interceptorReader(errors.New("forbidden")), wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := CachedLease(tc.cache, tc.api)(context.Background(), "ns", "app")
			switch {
			case tc.wantErr:
				if err == nil {
					t.Fatalf("got %v, no error; want the error", m)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == "" && m != nil:
				t.Errorf("got %v, want nil", m)
			case tc.want != "" && (m == nil || m.Annotations["from"] != tc.want):
				t.Errorf("got %v, want the Lease from %s", m, tc.want)
			}
		})
	}
}

// interceptorReader is a reader whose every Get fails with err.
func interceptorReader(err error) client.Reader {
	return fake.NewClientBuilder().WithScheme(scheme.Scheme).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return err
		},
	}).Build()
}
