//go:build integration

package controllers_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

func TestElectorRBACIntegration(t *testing.T) {
	p := patches.Policy{}
	env := startElection(t, p)
	ns := newNamespace(t, env)

	t.Run("an election-mode Deployment comes back from the API server injected", func(t *testing.T) {
		d := electionDeployment(ns, "worker", "worker", 2, nil)
		if err := env.Client.Create(ctxFor(t), d); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		if d.Spec.Template.Annotations[patches.AnnotationInjected] == "" ||
			len(d.Spec.Template.Spec.InitContainers) != 1 ||
			d.Spec.Template.Spec.InitContainers[0].Name != patches.ElectorContainerName {
			t.Fatalf("not injected: annotations %v, init containers %d", d.Spec.Template.Annotations, len(d.Spec.Template.Spec.InitContainers))
		}
		// The stored object, defaulted by the API server, is a fixed point:
		// the webhook's reinvocation and the drift controller change nothing.
		again := d.DeepCopy()
		res, err := patches.Apply(again, p)
		if err != nil || len(res.Warnings) != 0 || !equality.Semantic.DeepEqual(d, again) {
			t.Errorf("applying the policy to the stored Deployment: err %v, warnings %q, changed %t",
				err, res.Warnings, !equality.Semantic.DeepEqual(d, again))
		}
	})

	t.Run("a plain-container injection is a fixed point of the API server's defaulting too", func(t *testing.T) {
		// The webhook skips namespaces labelled singleton.dev/webhook=disabled,
		// so the object stored is exactly what Apply made, then defaulted.
		off := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "webhook-off-",
			Labels: map[string]string{"singleton.dev/webhook": "disabled"}}}
		if err := env.Client.Create(ctxFor(t), off); err != nil {
			t.Fatalf("create namespace: %v", err)
		}
		plain := patches.Policy{Elector: patches.ElectorOptions{PlainContainer: true}}
		d := electionDeployment(off.Name, "plain", "", 2, nil)
		if _, err := patches.Apply(d, plain); err != nil {
			t.Fatalf("apply: %v", err)
		}
		if err := env.Client.Create(ctxFor(t), d); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		again := d.DeepCopy()
		res, err := patches.Apply(again, plain)
		if err != nil || len(res.Warnings) != 0 || !equality.Semantic.DeepEqual(d, again) {
			t.Errorf("applying the policy to the stored Deployment: err %v, warnings %q, changed %t",
				err, res.Warnings, !equality.Semantic.DeepEqual(d, again))
		}
	})

	t.Run("the controller makes its Lease, a Role on that Lease alone, and binds it to its ServiceAccount", func(t *testing.T) {
		lease := waitObject(t, env, ns, "worker", &coordinationv1.Lease{})
		role := waitObject(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.Role{})
		rb := waitObject(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.RoleBinding{})
		wantRules := []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			ResourceNames: []string{"worker"}, Verbs: []string{"get", "update", "watch"}}}
		if !equality.Semantic.DeepEqual(role.Rules, wantRules) {
			t.Errorf("role rules %+v, want %+v", role.Rules, wantRules)
		}
		if !equality.Semantic.DeepEqual(rb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "worker", Namespace: ns}}) ||
			rb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) {
			t.Errorf("binding: subjects %+v, roleRef %+v", rb.Subjects, rb.RoleRef)
		}
		for _, o := range []metav1.Object{lease, role, rb} {
			if o.GetLabels()[controllers.ManagedByLabel] != controllers.ManagedBy || metav1.GetControllerOf(o) == nil {
				t.Errorf("%s: labels %v, owner %v; want managed and owned by the Deployment", o.GetName(), o.GetLabels(), o.GetOwnerReferences())
			}
		}
	})

	t.Run("the app's ServiceAccount may use its own Lease and is refused everything else", func(t *testing.T) {
		waitObject(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.RoleBinding{})
		admin := env.Clientset
		other := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "someone-else", Namespace: ns}}
		if _, err := admin.CoordinationV1().Leases(ns).Create(ctxFor(t), other, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create another Lease: %v", err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "neighbour", Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}
		if _, err := admin.CoreV1().Pods(ns).Create(ctxFor(t), pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create a Pod: %v", err)
		}
		app := asServiceAccount(t, env, ns, "worker")
		leases := app.CoordinationV1().Leases(ns)
		eventually(t, "the app reads its own Lease", func() (bool, string) {
			_, err := leases.Get(ctxFor(t), "worker", metav1.GetOptions{})
			return err == nil, errString(err)
		})
		own, _ := leases.Get(ctxFor(t), "worker", metav1.GetOptions{})
		holder := "worker-0"
		own.Spec.HolderIdentity = &holder
		if _, err := leases.Update(ctxFor(t), own, metav1.UpdateOptions{}); err != nil {
			t.Errorf("update its own Lease: %v, want allowed", err)
		}
		w, err := leases.Watch(ctxFor(t), metav1.ListOptions{FieldSelector: "metadata.name=worker"})
		if err != nil {
			t.Errorf("watch its own Lease by name: %v, want allowed", err)
		} else {
			w.Stop()
		}
		refused := map[string]error{}
		stolen, _ := admin.CoordinationV1().Leases(ns).Get(ctxFor(t), "someone-else", metav1.GetOptions{})
		stolen.Spec.HolderIdentity = &holder
		_, refused["update another Lease"] = leases.Update(ctxFor(t), stolen, metav1.UpdateOptions{})
		_, refused["create a Lease"] = leases.Create(ctxFor(t),
			&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "new", Namespace: ns}}, metav1.CreateOptions{})
		_, refused["patch a Pod's labels"] = app.CoreV1().Pods(ns).Patch(ctxFor(t), "neighbour", types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"singleton.dev/role":"leader"}}}`), metav1.PatchOptions{})
		_, refused["patch a Pod's image"] = app.CoreV1().Pods(ns).Patch(ctxFor(t), "neighbour", types.StrategicMergePatchType,
			[]byte(`{"spec":{"containers":[{"name":"app","image":"evil:1"}]}}`), metav1.PatchOptions{})
		_, refused["read a Pod"] = app.CoreV1().Pods(ns).Get(ctxFor(t), "neighbour", metav1.GetOptions{})
		refused["delete its own Lease"] = leases.Delete(ctxFor(t), "worker", metav1.DeleteOptions{})
		for what, err := range refused {
			if !apierrors.IsForbidden(err) {
				t.Errorf("the app's ServiceAccount may %s: err %v, want Forbidden", what, err)
			}
		}
	})

	t.Run("a deleted Role is re-created", func(t *testing.T) {
		role := waitObject(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.Role{})
		if err := env.Client.Delete(ctxFor(t), role); err != nil {
			t.Fatalf("delete role: %v", err)
		}
		eventually(t, "role re-created", func() (bool, string) {
			got := &rbacv1.Role{}
			err := env.Client.Get(ctxFor(t), client.ObjectKeyFromObject(role), got)
			return err == nil && got.UID != role.UID, "get: " + errString(err)
		})
	})

	t.Run("widened rules are restored", func(t *testing.T) {
		role := waitObject(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.Role{})
		role.Rules[0].ResourceNames = nil // every Lease of the namespace
		if err := env.Client.Update(ctxFor(t), role); err != nil {
			t.Fatalf("edit role: %v", err)
		}
		eventually(t, "rules restored", func() (bool, string) {
			got := &rbacv1.Role{}
			err := env.Client.Get(ctxFor(t), client.ObjectKeyFromObject(role), got)
			return err == nil && len(got.Rules) == 1 && len(got.Rules[0].ResourceNames) == 1, "get: " + errString(err)
		})
	})

	t.Run("an edited binding is restored", func(t *testing.T) {
		rb := waitObject(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.RoleBinding{})
		rb.Subjects[0].Name = "intruder"
		if err := env.Client.Update(ctxFor(t), rb); err != nil {
			t.Fatalf("edit binding: %v", err)
		}
		eventually(t, "subjects restored", func() (bool, string) {
			got := &rbacv1.RoleBinding{}
			err := env.Client.Get(ctxFor(t), client.ObjectKeyFromObject(rb), got)
			return err == nil && got.Subjects[0].Name == "worker", "subjects: " + errString(err)
		})
	})

	t.Run("switching to replicas mode removes the sidecar, the Role and the binding", func(t *testing.T) {
		updateDeployment(t, env, ns, "worker", func(d *appsv1.Deployment) {
			d.Annotations[patches.AnnotationMode] = string(patches.ModeReplicas)
		})
		d := &appsv1.Deployment{}
		if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: "worker"}, d); err != nil {
			t.Fatalf("get deployment: %v", err)
		}
		if len(d.Spec.Template.Spec.InitContainers) != 0 || d.Spec.Template.Annotations[patches.AnnotationInjected] != "" {
			t.Errorf("sidecar still injected after the switch to replicas mode")
		}
		waitGone(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.RoleBinding{})
		waitGone(t, env, ns, controllers.RoleBindingPrefix+"worker", &rbacv1.Role{})
	})

	t.Run("deleting a Deployment removes its Role and binding", func(t *testing.T) {
		if err := env.Client.Create(ctxFor(t), electionDeployment(ns, "cron", "", 2, nil)); err != nil {
			t.Fatalf("create deployment: %v", err)
		}
		rb := waitObject(t, env, ns, controllers.RoleBindingPrefix+"cron", &rbacv1.RoleBinding{})
		if rb.Subjects[0].Name != controllers.DefaultServiceAccount {
			t.Errorf("binding subject %q, want the default ServiceAccount", rb.Subjects[0].Name)
		}
		deleteDeployment(t, env, ns, "cron")
		waitGone(t, env, ns, controllers.RoleBindingPrefix+"cron", &rbacv1.RoleBinding{})
		waitGone(t, env, ns, controllers.RoleBindingPrefix+"cron", &rbacv1.Role{})
	})
}

// waitObject waits for the object ns/name to exist and returns it in o.
func waitObject[T client.Object](t *testing.T, env *testenv.Env, ns, name string, o T) T {
	t.Helper()
	key := client.ObjectKey{Namespace: ns, Name: name}
	eventually(t, fmt.Sprintf("%T %s", o, name), func() (bool, string) {
		err := env.Client.Get(ctxFor(t), key, o)
		return err == nil, "get: " + errString(err)
	})
	return o
}

// waitGone waits for the object ns/name to be deleted.
func waitGone(t *testing.T, env *testenv.Env, ns, name string, o client.Object) {
	t.Helper()
	key := client.ObjectKey{Namespace: ns, Name: name}
	eventually(t, fmt.Sprintf("%T %s removed", o, name), func() (bool, string) {
		err := env.Client.Get(ctxFor(t), key, o)
		return apierrors.IsNotFound(err), "get: " + errString(err)
	})
}

// asServiceAccount is a clientset with exactly the permissions of the
// ServiceAccount ns/name: a TokenRequest for it, as its Pods would mount.
func asServiceAccount(t *testing.T, env *testenv.Env, ns, name string) kubernetes.Interface {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := env.Clientset.CoreV1().ServiceAccounts(ns).Create(ctxFor(t), sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount: %v", err)
	}
	tr, err := env.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctxFor(t), name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("request a token for ServiceAccount %s: %v", name, err)
	}
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = tr.Status.Token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func deleteDeployment(t *testing.T, env *testenv.Env, ns, name string) {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Delete(ctxFor(t), d); err != nil {
		t.Fatalf("delete deployment %s: %v", name, err)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
