package controllers

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ensureRole keeps the Role granting the sidecar what client-go's election
// does with one Lease, named: read it, renew or take it over (update), and
// watch it. Edited rules are restored.
func (r *ElectorRBAC) ensureRole(ctx context.Context, k keeper, d *appsv1.Deployment, lease string) error {
	role := &rbacv1.Role{ObjectMeta: objectMeta(d, RoleBindingPrefix+d.Name)}
	_, err := k.ensure(ctx, d, role, roleKept, func() error {
		role.Rules = []rbacv1.PolicyRule{{
			APIGroups: []string{coordinationv1.GroupName}, Resources: []string{"leases"},
			ResourceNames: []string{lease}, Verbs: []string{"get", "update", "watch"},
		}}
		return nil
	})
	return err
}

// ensureBinding keeps the binding of the Role to the ServiceAccount of d's
// pods. Edited subjects are restored; the roleRef is immutable, so a
// binding with another one is replaced.
func (r *ElectorRBAC) ensureBinding(ctx context.Context, k keeper, d *appsv1.Deployment) error {
	rb := &rbacv1.RoleBinding{ObjectMeta: objectMeta(d, RoleBindingPrefix+d.Name)}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RoleBindingPrefix + d.Name}
	_, err := k.ensure(ctx, d, rb, bindingKept, func() error {
		if rb.ResourceVersion != "" && rb.RoleRef != ref {
			return errReplace
		}
		rb.RoleRef = ref
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind,
			Name: serviceAccountOf(&d.Spec.Template.Spec), Namespace: d.Namespace}}
		return nil
	})
	return err
}

// cleanup removes the Role and RoleBinding kept for the Deployment named
// name: d, or none left (d nil). The Lease stays until the Deployment is
// deleted (its owner reference): without the Role it grants nothing, and
// the webhook holds no delete on Leases. The garbage collector removes a
// deleted Deployment's objects as well; removing them here too makes it
// immediate, and works where no garbage collector runs.
func (r *ElectorRBAC) cleanup(ctx context.Context, k keeper, ns, name string, d *appsv1.Deployment) error {
	meta := metav1.ObjectMeta{Namespace: ns, Name: RoleBindingPrefix + name}
	var alive metav1.Object
	if d != nil {
		alive = d
	}
	for _, o := range []client.Object{&rbacv1.RoleBinding{ObjectMeta: meta}, &rbacv1.Role{ObjectMeta: meta}} {
		if err := k.removeFor(ctx, o, name, alive); err != nil {
			return err
		}
	}
	return nil
}
