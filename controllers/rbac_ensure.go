package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// ensureRole makes the Role exist as wanted. A Role of that name the
// controller did not create is left alone (and the sidecar may lack its
// RBAC; the Event says so).
func (r *ElectorRBAC) ensureRole(ctx context.Context, d *appsv1.Deployment, want *rbacv1.Role) error {
	have := &rbacv1.Role{}
	found, err := r.read(ctx, want, have)
	if err != nil || !found {
		return err
	}
	if !managed(have) {
		r.foreign(ctx, d, "Role", want.Name)
		return nil
	}
	if equality.Semantic.DeepEqual(have.Rules, want.Rules) {
		return nil
	}
	fixed := have.DeepCopy()
	fixed.Rules = want.Rules
	if err := r.Client.Update(ctx, fixed); err != nil {
		return fmt.Errorf("restore the rules of role %s: %w", want.Name, err)
	}
	logf.FromContext(ctx).Info("restored the rules of an elector role", "role", want.Name)
	return nil
}

// ensureBinding makes the RoleBinding exist as wanted; its roleRef is
// immutable, so a changed one is replaced.
func (r *ElectorRBAC) ensureBinding(ctx context.Context, d *appsv1.Deployment, want *rbacv1.RoleBinding) error {
	have := &rbacv1.RoleBinding{}
	found, err := r.read(ctx, want, have)
	if err != nil || !found {
		return err
	}
	if !managed(have) {
		r.foreign(ctx, d, "RoleBinding", want.Name)
		return nil
	}
	if have.RoleRef != want.RoleRef {
		if err := r.remove(ctx, have); err != nil {
			return err
		}
		_, err := r.read(ctx, want, &rbacv1.RoleBinding{})
		return err
	}
	if equality.Semantic.DeepEqual(have.Subjects, want.Subjects) {
		return nil
	}
	fixed := have.DeepCopy()
	fixed.Subjects = want.Subjects
	if err := r.Client.Update(ctx, fixed); err != nil {
		return fmt.Errorf("restore the subjects of role binding %s: %w", want.Name, err)
	}
	logf.FromContext(ctx).Info("restored the subjects of an elector role binding", "roleBinding", want.Name)
	return nil
}

// read fills have with the object named like want, from the cache of owned
// objects, else from the API server; when there is none it creates want
// and reports found false.
func (r *ElectorRBAC) read(ctx context.Context, want, have client.Object) (found bool, err error) {
	key := client.ObjectKeyFromObject(want)
	kind := fmt.Sprintf("%T", want)
	err = r.Owned.Get(ctx, key, have)
	if err == nil {
		return true, nil
	}
	if !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("read %s %s: %w", kind, key.Name, err)
	}
	err = r.Client.Create(ctx, want)
	if err == nil {
		logf.FromContext(ctx).Info("created an elector RBAC object", "kind", kind, "name", key.Name)
		return false, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create %s %s: %w", kind, key.Name, err)
	}
	if err := r.Reader.Get(ctx, key, have); err != nil {
		return false, fmt.Errorf("read %s %s: %w", kind, key.Name, err)
	}
	return true, nil
}

// foreign reports a name taken by an object the controller did not make.
func (r *ElectorRBAC) foreign(ctx context.Context, d *appsv1.Deployment, kind, name string) {
	logf.FromContext(ctx).Info("not touching an object of the same name that the controller did not create; the sidecar may lack its RBAC",
		"kind", kind, "name", name)
	r.Recorder.Eventf(d, nil, corev1.EventTypeWarning, "ElectorRBACConflict", "Bind",
		"%s %s exists and is not managed by %s; rename or delete it so the leader-election sidecar gets its RBAC",
		kind, name, ManagedBy)
}

// cleanup removes the Role and RoleBinding kept for the Deployment ns/name.
// The Lease stays until the Deployment is deleted (its owner reference):
// without the Role it grants nothing, and the webhook holds no delete on
// Leases. A deleted Deployment's objects go with it as well.
func (r *ElectorRBAC) cleanup(ctx context.Context, ns, name string) error {
	key := client.ObjectKey{Namespace: ns, Name: RoleBindingPrefix + name}
	for _, o := range []client.Object{&rbacv1.RoleBinding{}, &rbacv1.Role{}} {
		err := r.Owned.Get(ctx, key, o)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %T %s: %w", o, key.Name, err)
		}
		if err := r.remove(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes one of our objects, only if it is still the object seen.
func (r *ElectorRBAC) remove(ctx context.Context, o client.Object) error {
	if !managed(o) {
		return nil
	}
	uid, rv := o.GetUID(), o.GetResourceVersion()
	err := r.Client.Delete(ctx, o, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return nil // gone, or changed meanwhile: its watch event brings it back here
	case err != nil:
		return fmt.Errorf("delete %T %s: %w", o, o.GetName(), err)
	}
	logf.FromContext(ctx).Info("removed an elector object no Deployment needs", "kind", fmt.Sprintf("%T", o), "name", o.GetName())
	return nil
}
