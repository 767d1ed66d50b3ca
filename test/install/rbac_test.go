//go:build integration

package install

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// webhookUser is the identity of the webhook's pods.
const webhookUser = "system:serviceaccount:singleton-system:singleton-webhook"

// access is one request the webhook's ServiceAccount may or may not make.
type access struct {
	group, resource, verb, namespace, name string
	allowed                                bool
}

// webhookAccess lists what `serve` needs (allowed) and a sample of what it
// must not get (denied). It mirrors the comments of manifests/rbac.yaml.
func webhookAccess() map[string]access {
	return map[string]access{
		"the metadata cache lists Deployments cluster-wide":      {group: "apps", resource: "deployments", verb: "list", allowed: true},
		"the metadata cache watches Deployments cluster-wide":    {group: "apps", resource: "deployments", verb: "watch", allowed: true},
		"the drift controller reads a Deployment":                {group: "apps", resource: "deployments", verb: "get", namespace: "team-a", allowed: true},
		"the drift controller re-pins a Deployment":              {group: "apps", resource: "deployments", verb: "update", namespace: "team-a", allowed: true},
		"controller leader election reads its Lease":             {group: "coordination.k8s.io", resource: "leases", verb: "get", namespace: "singleton-system", allowed: true},
		"controller leader election creates its Lease":           {group: "coordination.k8s.io", resource: "leases", verb: "create", namespace: "singleton-system", allowed: true},
		"controller leader election renews its Lease":            {group: "coordination.k8s.io", resource: "leases", verb: "update", namespace: "singleton-system", allowed: true},
		"controllers record Events":                              {resource: "events", verb: "create", namespace: "team-a", allowed: true},
		"controllers record events.k8s.io Events":                {group: "events.k8s.io", resource: "events", verb: "create", namespace: "team-a", allowed: true},
		"the elector RBAC controller creates RoleBindings":       {group: "rbac.authorization.k8s.io", resource: "rolebindings", verb: "create", namespace: "team-a", allowed: true},
		"the elector RBAC controller deletes RoleBindings":       {group: "rbac.authorization.k8s.io", resource: "rolebindings", verb: "delete", namespace: "team-a", allowed: true},
		"the elector RBAC controller creates Roles":              {group: "rbac.authorization.k8s.io", resource: "roles", verb: "create", namespace: "team-a", allowed: true},
		"the elector RBAC controller creates Leases":             {group: "coordination.k8s.io", resource: "leases", verb: "create", namespace: "team-a", allowed: true},
		"Deployment admission reads an election Lease by name":   {group: "coordination.k8s.io", resource: "leases", verb: "get", namespace: "team-a", allowed: true},
		"the leader Service controller creates Services":         {resource: "services", verb: "create", namespace: "team-a", allowed: true},
		"the leader Service controller watches Services":         {resource: "services", verb: "watch", allowed: true},
		"/metrics checks a scraper's token":                      {group: "authentication.k8s.io", resource: "tokenreviews", verb: "create", allowed: true},
		"/metrics checks a scraper's access":                     {group: "authorization.k8s.io", resource: "subjectaccessreviews", verb: "create", allowed: true},
		"no Secret is read: the certificate is a mounted volume": {resource: "secrets", verb: "get", namespace: "singleton-system"},
		"no Deployment is created":                               {group: "apps", resource: "deployments", verb: "create", namespace: "team-a"},
		"no Deployment is deleted":                               {group: "apps", resource: "deployments", verb: "delete", namespace: "team-a"},
		"no Pod is deleted":                                      {resource: "pods", verb: "delete", namespace: "team-a"},
		"no Pod is created":                                      {resource: "pods", verb: "create", namespace: "team-a"},
		"the controllers' Lease is never deleted":                {group: "coordination.k8s.io", resource: "leases", verb: "delete", namespace: "singleton-system"},
		"no other ClusterRole can be bound":                      {group: "rbac.authorization.k8s.io", resource: "clusterroles", verb: "bind", name: "cluster-admin"},
		"no ClusterRoleBinding is created":                       {group: "rbac.authorization.k8s.io", resource: "clusterrolebindings", verb: "create"},
		"no role is escalated":                                   {group: "rbac.authorization.k8s.io", resource: "roles", verb: "escalate", namespace: "team-a"},
	}
}

// checkRBAC asks the API server's authorizer, with SubjectAccessReviews, for
// each webhookAccess entry, then has the webhook's ServiceAccount create
// (dry-run) the Role the elector RBAC controller makes (get, update, watch on
// one Lease), which the API server's escalation check allows because the
// webhook holds those verbs, and a RoleBinding to cluster-admin, which it
// refuses. Last, the install's self-restraint policy must be in effect.
func checkRBAC(ctx context.Context, t *testing.T, env *testenv.Env) {
	t.Helper()
	for name, a := range webhookAccess() {
		t.Run(name, func(t *testing.T) {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   webhookUser,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:singleton-system", "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Group: a.group, Resource: a.resource, Verb: a.verb, Namespace: a.namespace, Name: a.name,
				},
			}}
			got, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("subject access review: %v", err)
			}
			if got.Status.Allowed != a.allowed {
				t.Errorf("%s %s/%s in %q: allowed = %v, want %v (%s)",
					a.verb, a.group, a.resource, a.namespace, got.Status.Allowed, a.allowed, got.Status.Reason)
			}
		})
	}
	asWebhook := rest.CopyConfig(env.Config)
	asWebhook.Impersonate = rest.ImpersonationConfig{UserName: webhookUser, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	cs, err := kubernetes.NewForConfig(asWebhook)
	if err != nil {
		t.Fatal(err)
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	// Named and labelled as the elector RBAC controller makes it, which the
	// self-restraint policy requires.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "singleton-elector-probe", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "singleton-webhook"}},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			ResourceNames: []string{"probe"}, Verbs: []string{"get", "update", "watch"}}},
	}
	if _, err := cs.RbacV1().Roles(role.Namespace).Create(ctx, role, dryRun); err != nil {
		t.Errorf("the webhook creating the elector's Role: %v, want allowed", err)
	}
	for role, wantOK := range map[string]bool{"cluster-admin": false} {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "elector-probe", Namespace: metav1.NamespaceDefault},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "default", Namespace: metav1.NamespaceDefault}},
		}
		_, err := cs.RbacV1().RoleBindings(rb.Namespace).Create(ctx, rb, dryRun)
		if (err == nil) != wantOK {
			t.Errorf("the webhook binding ClusterRole %s: err = %v, want allowed = %v", role, err, wantOK)
		}
	}
	if err := testenv.WaitForSelfRestraint(ctx, env.Config); err != nil {
		t.Errorf("the installed self-restraint policy: %v", err)
	}
}
