//go:build integration

package install

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// restrained is one write the webhook's ServiceAccount makes, and what the
// self-restraint policy must answer: empty want allows it, else the
// refusal must carry the policy's message and want.
type restrained struct {
	write func(ctx context.Context, c client.Client) error
	want  string
}

// Parts of the policy's messages, one per rule.
const (
	notSingletonPod  = "only change Pods of a singleton"
	podLabels        = "of a Pod's labels the webhook may only set"
	podMetadata      = "may not change a Pod's annotations"
	podSpec          = "of a Pod's spec the webhook may only remove"
	notSingletonDep  = "may only update singleton Deployments"
	depFields        = "of a Deployment the webhook may only change"
	depLabels        = "of a Deployment's labels the webhook may only set"
	templateSpec     = "of a pod template's spec"
	templateMetadata = "of a pod template's labels and annotations"
	containers       = "of a pod template's containers"
	notOurs          = "labelled app.kubernetes.io/managed-by=singleton-webhook"
	roleRules        = "grants exactly get, update and watch on one Lease"
	bindingRef       = "binds the Role"
	leaseSpec        = "never changes its spec"
	leaderService    = "a ClusterIP Service"
	// The API server's RBAC escalation check refuses a binding to a role
	// whose powers the webhook lacks before admission, hence before the
	// policy, sees it.
	rbacEscalation = "is attempting to grant RBAC permissions not currently held"
)

// TestSelfRestraint has the webhook's ServiceAccount (impersonated, with
// manifests/rbac.yaml, which RBAC allows all of this) try what its
// controllers never do, each refused by manifests/selfrestraint.yaml with
// its message, and everything its controllers do, each allowed. The
// in-process webhook runs as that account too, without controllers, so a
// Deployment update passes the real mutation before the policy sees it.
func TestSelfRestraint(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	env.StartWebhook(t, testenv.WebhookOptions{Controllers: []string{}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newRestraintFixtures(ctx, t, env)
	hook, err := client.New(testenv.AsWebhook(env.Config), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("refused", func(t *testing.T) {
		for name, c := range f.refused() {
			t.Run(name, func(t *testing.T) { checkRestrained(ctx, t, hook, c) })
		}
	})
	// In order: later writes build on earlier ones.
	for _, c := range f.allowed() {
		t.Run("in order/"+c.name, func(t *testing.T) { checkRestrained(ctx, t, hook, c.restrained) })
	}
}

func checkRestrained(ctx context.Context, t *testing.T, hook client.Client, c restrained) {
	t.Helper()
	err := c.write(ctx, hook)
	switch {
	case c.want == "" && err != nil:
		t.Errorf("refused: %v; want allowed", err)
	case c.want == "":
	case err == nil:
		t.Errorf("allowed; want refused by the self-restraint policy (%q)", c.want)
	case c.want == rbacEscalation:
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), rbacEscalation) {
			t.Errorf("refused with %v; want RBAC's escalation check", err)
		}
	case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), testenv.SelfRestraintMessage) ||
		!strings.Contains(err.Error(), c.want):
		t.Errorf("refused with %v; want the self-restraint policy's %q", err, c.want)
	default:
		t.Logf("refused: %v", err)
	}
}

// TestSelfRestraintFailsClosedForTheWebhookOnly installs a copy of the
// policy with one expression that fails on every Pod update: the webhook's
// own legitimate write is refused (failurePolicy Fail), while the same
// write by the administrator, and by a ServiceAccount of the same name in
// another namespace bound to cluster-admin, pass: the match condition keeps
// everyone else out of the policy, errors included.
func TestSelfRestraintFailsClosedForTheWebhookOnly(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	installBrokenPolicy(ctx, t, env)
	pod := singletonPod(metav1.NamespaceDefault, "app-0", "app")
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	hook, err := client.New(testenv.AsWebhook(env.Config), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The policy loads asynchronously: wait for the webhook's refusal.
	var last error
	for last = labelPod(ctx, hook, pod, "leader"); last == nil || !strings.Contains(last.Error(), "no such key"); last = labelPod(ctx, hook, pod, "leader") {
		if ctx.Err() != nil {
			t.Fatalf("the webhook's role label was never refused by the broken policy; last: %v", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the webhook's own write, refused: %v", last)
	if code := apierrors.ReasonForError(last); code == metav1.StatusReasonUnknown {
		t.Errorf("the webhook's write failed with %v; want the policy's refusal (fail closed)", last)
	}
	namesake := grantClusterAdmin(ctx, t, env, "system:serviceaccount:elsewhere:singleton-webhook")
	for who, c := range map[string]client.Client{"the administrator": env.Client, "elsewhere/singleton-webhook": namesake} {
		if err := labelPod(ctx, c, pod, "standby"); err != nil {
			t.Errorf("%s labelling a Pod: %v; want allowed: a broken expression must never refuse anyone but the webhook", who, err)
		}
		patch := client.RawPatch(types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/containers/0/image","value":"registry.example/other:1"}]`))
		if err := c.Patch(ctx, pod.DeepCopy(), patch); err != nil {
			t.Errorf("%s changing a Pod's image: %v; want allowed", who, err)
		}
	}
}

// labelPod sets the role label, as the role label controller does.
func labelPod(ctx context.Context, c client.Client, p *corev1.Pod, role string) error {
	body := []byte(`{"metadata":{"labels":{"singleton.dev/role":"` + role + `"}}}`)
	return c.Patch(ctx, p.DeepCopy(), client.RawPatch(types.MergePatchType, body))
}

// installBrokenPolicy creates a copy of the policy and its binding under
// another name, with a validation that errors on every Pod update.
func installBrokenPolicy(ctx context.Context, t *testing.T, env *testenv.Env) {
	t.Helper()
	objs, err := decodeObjects([]byte(readFile(t, env.Root+"/manifests/selfrestraint.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o.SetName(o.GetName() + "-broken")
		switch o.GetKind() {
		case "ValidatingAdmissionPolicy":
			validations := o.Object["spec"].(map[string]any)["validations"].([]any)
			o.Object["spec"].(map[string]any)["validations"] = append(validations, map[string]any{
				"expression": "request.resource.resource != 'pods' || object.metadata.noSuchField == 'x'",
				"message":    "unreachable: the expression errors",
			})
		case "ValidatingAdmissionPolicyBinding":
			o.Object["spec"].(map[string]any)["policyName"] = "singleton-webhook-self-restraint-broken"
		}
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// grantClusterAdmin binds cluster-admin to user and returns a client
// impersonating it.
func grantClusterAdmin(ctx context.Context, t *testing.T, env *testenv.Env, user string) client.Client {
	t.Helper()
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "namesake-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if err := env.Client.Create(ctx, crb); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.AsWebhook(env.Config)
	cfg.Impersonate.UserName = user
	cfg.Impersonate.Groups = []string{"system:authenticated"}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// singletonPod is a Pod of the singleton Deployment deployment, gated by
// the webhook's gate and by another controller's.
func singletonPod(ns, name, deployment string) *corev1.Pod {
	p := plainPod(ns, name)
	p.Labels = map[string]string{"app": deployment, "singleton.dev/deployment": deployment}
	p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "singleton.dev/one-at-a-time"}, {Name: "example.com/quota"}}
	return p
}

func plainPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.k8s.io/pause:3.10",
		}}},
	}
}

// ownedMeta is the metadata the elector controllers give what they make
// for Deployment d.
func ownedMeta(d *appsv1.Deployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: d.Namespace,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "singleton-webhook"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment",
			Name: d.Name, UID: d.UID, Controller: ptr.To(true)}},
	}
}

// electorRole is the Role the elector RBAC controller writes.
func electorRole(d *appsv1.Deployment, verbs ...string) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: ownedMeta(d, "singleton-elector-"+d.Name),
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			ResourceNames: []string{d.Name}, Verbs: verbs}},
	}
}

// electorBinding binds roleRef to the default ServiceAccount of d's namespace.
func electorBinding(d *appsv1.Deployment, name string, roleRef rbacv1.RoleRef) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: ownedMeta(d, name),
		RoleRef:    roleRef,
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: d.Namespace}},
	}
}

func roleRef(kind, name string) rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
}

// lease is a Lease named name, held by holder when not empty.
func lease(ns, name, holder string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if holder != "" {
		now := metav1.NewMicroTime(time.Now())
		l.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](15),
			AcquireTime: &now, RenewTime: &now}
	}
	return l
}
