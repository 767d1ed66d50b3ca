package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// fixtureObjects is a namespace of every kind of singleton.
func fixtureObjects() []runtime.Object {
	rep := deployment("shop", "cart", patches.ModeReplicas, true)
	el := deployment("shop", "billing", patches.ModeElection, true)
	el.Status.Replicas = 2
	old := deployment("shop", "legacy", patches.ModeReplicas, false)
	plain := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	return []runtime.Object{
		rep, el, old, plain,
		deleting(pod(rep, "cart-old", "node-1", -20*time.Minute, false), -5*time.Minute),
		pod(rep, "cart-new", "", -6*time.Minute, true),
		pod(el, "billing-a", "node-1", -30*time.Minute, false),
		pod(el, "billing-b", "node-2", -30*time.Minute, false),
		lease("shop", "billing", "billing-a", -3*time.Second, true),
	}
}

// readFixture reads objs through a fake clientset, as status does, at t0.
func readFixture(t *testing.T, scope Scope, objs ...runtime.Object) *StatusList {
	t.Helper()
	snap, err := Read(context.Background(), fake.NewClientset(objs...), scope)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	snap.Now = t0
	return Status(snap)
}

func TestStatusOfEachKindOfSingleton(t *testing.T) {
	list := readFixture(t, Scope{Namespace: "shop"}, fixtureObjects()...)
	if len(list.Items) != 3 {
		t.Fatalf("%d singletons, want 3 (billing, cart, legacy; web is none): %+v", len(list.Items), list.Items)
	}
	billing, cart, legacy := list.Items[0], list.Items[1], list.Items[2]
	if billing.Active == nil || billing.Active.Pod != "billing-a" || billing.Lease == nil || !billing.Lease.Valid ||
		billing.Lease.Epoch != 1767225600<<20+3 || *billing.PodsAlive != 2 {
		t.Errorf("election singleton: %+v lease %+v", billing, billing.Lease)
	}
	if cart.Active == nil || cart.Active.Pod != "cart-old" || cart.Active.Phase != "Terminating" || len(cart.Waiting) != 1 {
		t.Fatalf("replicas singleton: %+v", cart)
	}
	if w := cart.Waiting[0]; w.Pod != "cart-new" || w.WaitsFor != "cart-old" || w.BlockerState != "overdue" || w.BlockerNode != "node-1" {
		t.Errorf("waiting Pod: %+v", w)
	}
	if legacy.Enforced || !strings.Contains(legacy.NotEnforced, "not enforced yet") || *legacy.PodsAlive != 1 {
		t.Errorf("Deployment annotated before the install: %+v", legacy)
	}
	if list.Partial || len(list.Errors) != 0 {
		t.Errorf("partial %v %v, want a whole answer", list.Partial, list.Errors)
	}
}

func TestStatusTable(t *testing.T) {
	list := readFixture(t, Scope{AllNamespaces: true}, fixtureObjects()...)
	for name, tc := range map[string]struct {
		format string
		want   []string
	}{
		"the default table names the active Pod, its epoch and lease, and who waits": {"", []string{
			"NAMESPACE   NAME      MODE       ENFORCEMENT   ADMITTED   PODS   ACTIVE",
			"billing-a (epoch 1853070350745603, valid 12s)",
			"cart-new for cart-old (overdue) since 6m",
			"legacy    replicas   mutate        NO         1      <none>",
		}},
		"the wide table adds node, lease, epoch, validity and why a singleton is not enforced": {"wide", []string{
			"NODE", "VALID-UNTIL", "billing   ", "2026-01-02T15:04:17Z", "not enforced yet: the pod template has no scheduling gate",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteStatus(&b, list, tc.format, true, t0); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("table lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// TestStatusJSONIsTheDocumentedSchema holds -o json to its golden file
// (UPDATE_GOLDEN=1 rewrites it) and to the schema: it decodes strictly into
// the v1 types, and every field is documented in docs/status-check.md.
func TestStatusJSONIsTheDocumentedSchema(t *testing.T) {
	list := readFixture(t, Scope{Namespace: "shop"}, fixtureObjects()...)
	var b bytes.Buffer
	if err := WriteStatus(&b, list, OutputJSON, false, t0); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "status.golden.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("-o json changed; a change to status.singleton.dev/v1 may only add fields (UPDATE_GOLDEN=1 rewrites)\n got %s\nwant %s", b.String(), want)
	}
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.DisallowUnknownFields()
	var back StatusList
	if err := dec.Decode(&back); err != nil || back.APIVersion != StatusAPIVersion || len(back.Items) != 3 {
		t.Errorf("golden file does not decode into the v1 types: %v %+v", err, back)
	}
	assertDocumented(t, "status.singleton.dev/v1", StatusList{})
}

func TestStatusPartialWhenSomeNamespacesAreForbidden(t *testing.T) {
	objs := append(fixtureObjects(), deployment("ops", "cron", patches.ModeReplicas, true),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ops"}})
	cs := fake.NewClientset(objs...)
	// The caller may list nothing cluster-wide, and no Pods in "ops".
	cs.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetResource().Resource == "namespaces" {
			return false, nil, nil
		}
		if a.GetNamespace() == "" || (a.GetNamespace() == "ops" && a.GetResource().Resource == "pods") {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: a.GetResource().Resource}, "", nil)
		}
		return false, nil, nil
	})
	snap, err := Read(context.Background(), cs, Scope{AllNamespaces: true})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	list := Status(snap)
	if !list.Partial || len(list.Errors) != 1 || list.Errors[0] != "cannot list pods in namespace ops: forbidden: the caller may not list pods in namespace ops" {
		t.Errorf("partial %v errors %q", list.Partial, list.Errors)
	}
	if len(list.Items) != 4 || list.Items[0].Name != "cron" || list.Items[0].PodsAlive != nil {
		t.Errorf("want the 4 singletons of both namespaces, cron's Pods unknown: %+v", list.Items)
	}
}

func TestStatusFailsInOneLineWhenNothingIsReadable(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: a.GetResource().Resource}, "", nil)
	})
	_, err := Read(context.Background(), cs, Scope{AllNamespaces: true})
	want := "cannot list deployments in all namespaces: forbidden; listing the namespaces to read them one by one failed too"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v, want one line starting %q", err, want)
	}
}

func TestStatusYAMLIsTheJSONSchema(t *testing.T) {
	list := readFixture(t, Scope{Namespace: "shop"}, fixtureObjects()...)
	var y bytes.Buffer
	if err := WriteStatus(&y, list, OutputYAML, false, t0); err != nil {
		t.Fatal(err)
	}
	var back StatusList
	if err := yaml.UnmarshalStrict(y.Bytes(), &back); err != nil || back.APIVersion != StatusAPIVersion || len(back.Items) != 3 ||
		back.Items[0].Lease.Epoch != list.Items[0].Lease.Epoch {
		t.Errorf("-o yaml: %v %+v\n%s", err, back, y.String())
	}
	if err := WriteStatus(&y, list, "xml", false, t0); err == nil {
		t.Error("-o xml accepted")
	}
}
