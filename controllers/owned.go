package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// The one rule of the election controllers for the objects they keep (a
// Lease, a Role, a RoleBinding, a Service) is:
//
//   - ours(o, d): labelled ManagedByLabel AND controlled by the Deployment d
//     (its UID): created, kept in line, and deleted when d no longer wants it;
//   - an orphan of ours: labelled, controlled by a Deployment of d's name
//     that no longer exists (d was deleted, or re-created with a new UID):
//     deleted where the controller holds delete, else (Leases) left to the
//     garbage collector, and not granted meanwhile;
//   - anything else of that name (made by someone else, adopted by an older
//     version, made for another Deployment): never updated, relabelled,
//     granted or deleted; the Deployment gets a Warning Event naming it.
//
// So a singleton.dev/lease-name, or a Deployment's name, can never turn the
// webhook's powers against an object it did not make for that Deployment.

// ours reports whether o was made by the webhook for the Deployment d.
func ours(o, d metav1.Object) bool {
	return managed(o) && metav1.IsControlledBy(o, d)
}

// orphanOf reports whether o is one of our objects made for a Deployment
// named name that is gone: none of that name exists (alive nil), or the one
// that exists has another UID.
func orphanOf(o metav1.Object, name string, alive metav1.Object) bool {
	ref := metav1.GetControllerOf(o)
	if !managed(o) || ref == nil || ref.APIVersion != appsv1.SchemeGroupVersion.String() ||
		ref.Kind != deploymentGVK.Kind || ref.Name != name {
		return false
	}
	return alive == nil || ref.UID != alive.GetUID()
}

// errNotOurs stops CreateOrUpdate before it writes to an object not ours.
var errNotOurs = errors.New("not made by " + ManagedBy + " for this Deployment")

// errReplace is returned by a mutate function when a field of our object
// that cannot change (a RoleBinding's roleRef, a Service's clusterIP)
// differs: the object is deleted and made anew.
var errReplace = errors.New("an immutable field differs")

// keeper writes the objects the election controllers keep for Deployments.
type keeper struct {
	// Client writes, and reads through the manager's cache, which holds only
	// objects labelled ManagedByLabel (CacheByObject).
	Client client.Client
	// Reader reads from the API server what the cache does not hold.
	Reader client.Reader
	// Recorder records conflicts and creations on the Deployment.
	Recorder events.EventRecorder
}

// kept names an object for the Events: its kind, the Event reason of a
// conflict and what the user should do about one, and the reason and note
// of the Normal Event recorded when it is created (none when empty).
type kept struct {
	kind, reason, remedy string
	created, createdNote string
	// undeletable: the webhook holds no delete on the kind (Leases); an
	// orphan of ours is left to the garbage collector.
	undeletable bool
}

// notOurs is what ensure reports when it left an object alone.
const notOurs controllerutil.OperationResult = "not ours"

// ensure makes obj (its name and namespace set) exist for d as mutate sets
// it: created when absent, labelled ManagedByLabel with d its controller;
// brought back by mutate when ours; never written when not ours, which
// ensure reports as false after a Warning Event on d. An orphan of ours in
// the way, or an object of ours that needs a change mutate cannot make in
// place (errReplace), is deleted: its deletion event brings d back here;
// ensure then reports notOurs too, as there is nothing to build on yet.
func (k keeper) ensure(ctx context.Context, d *appsv1.Deployment, obj client.Object, what kept, mutate func() error) (controllerutil.OperationResult, error) {
	key := client.ObjectKeyFromObject(obj)
	res, err := controllerutil.CreateOrUpdate(ctx, k.Client, obj, func() error {
		if obj.GetResourceVersion() != "" && !ours(obj, d) {
			return errNotOurs
		}
		l := obj.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[ManagedByLabel] = ManagedBy
		obj.SetLabels(l)
		if err := controllerutil.SetControllerReference(d, obj, k.Client.Scheme()); err != nil {
			return err
		}
		return mutate()
	})
	switch {
	case err == nil:
	case errors.Is(err, errReplace):
		return notOurs, k.remove(ctx, obj)
	case errors.Is(err, errNotOurs), apierrors.IsAlreadyExists(err):
		// The cache holds only labelled objects, so a Create can meet an
		// object it does not show: ours not cached yet, or not ours.
		have := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(client.Object)
		if err := k.Reader.Get(ctx, key, have); err != nil {
			return notOurs, client.IgnoreNotFound(fmt.Errorf("read %s %s: %w", what.kind, key.Name, err))
		}
		if ours(have, d) {
			return controllerutil.OperationResultNone, nil // its watch event follows
		}
		if orphanOf(have, d.Name, d) && !what.undeletable {
			return notOurs, k.remove(ctx, have)
		}
		k.conflict(ctx, d, have, what)
		return notOurs, nil
	default:
		return notOurs, fmt.Errorf("write %s %s: %w", what.kind, key.Name, err)
	}
	if res != controllerutil.OperationResultNone {
		logf.FromContext(ctx).Info("kept an object for the Deployment", "kind", what.kind, "name", key.Name, "operation", res)
	}
	if res == controllerutil.OperationResultCreated && what.created != "" {
		k.Recorder.Eventf(d, nil, corev1.EventTypeNormal, what.created, "Create", "%s %s %s", what.kind, key.Name, what.createdNote)
	}
	return res, nil
}

// conflict tells, in the log and in a Warning Event on d, that the name of
// an object d needs is taken by one the webhook did not make for d.
func (k keeper) conflict(ctx context.Context, d *appsv1.Deployment, have client.Object, what kept) {
	whose := whoseIs(have, d)
	logf.FromContext(ctx).Info("not touching an object of the same name that was not made for this Deployment",
		"kind", what.kind, "name", have.GetName())
	k.Recorder.Eventf(d, nil, corev1.EventTypeWarning, what.reason, "Keep",
		"%s %s exists and %s; %s", what.kind, have.GetName(), whose, what.remedy)
}

// whoseIs says who made have, an object d needs that is not ours for d.
func whoseIs(have, d metav1.Object) string {
	ref := metav1.GetControllerOf(have)
	if !managed(have) || ref == nil {
		return "is not managed by " + ManagedBy
	}
	if ref.Kind == deploymentGVK.Kind && ref.Name == d.GetName() {
		return fmt.Sprintf("was made by %s for an earlier Deployment %s (uid %s)", ManagedBy, ref.Name, ref.UID)
	}
	return fmt.Sprintf("was made by %s for %s %s, not for this Deployment", ManagedBy, ref.Kind, ref.Name)
}

// LeaseConflict says who made lease, the Lease of the name the Deployment d
// elects on (LeaseName), when the election controllers will not grant d's
// sidecar access to it; it is empty when they will, or soon will. It serves
// admission, which sees d before it is stored, so d may have no UID yet:
//
//   - a Lease the webhook made for a Deployment of d's name is d's (ours), or
//     an orphan of an earlier Deployment of that name, which the garbage
//     collector removes before the controller makes d's own: no conflict;
//   - any other Lease (made by another component, or by the webhook for
//     another Deployment) is never granted: the conflict, naming the Lease's
//     app.kubernetes.io/managed-by label and controller when it has them.
func LeaseConflict(lease, d metav1.Object) string {
	ref := metav1.GetControllerOf(lease)
	if managed(lease) && ref != nil && ref.APIVersion == appsv1.SchemeGroupVersion.String() &&
		ref.Kind == deploymentGVK.Kind && ref.Name == d.GetName() {
		return ""
	}
	switch {
	case managed(lease) && ref != nil:
		return whoseIs(lease, d)
	case managed(lease):
		return fmt.Sprintf("carries %s=%s but no controller: it was not made by %s", ManagedByLabel, ManagedBy, ManagedBy)
	}
	label, controller := "no "+ManagedByLabel+" label", "no controller"
	if v, ok := lease.GetLabels()[ManagedByLabel]; ok {
		label = fmt.Sprintf("%s=%q", ManagedByLabel, v)
	}
	if ref != nil {
		controller = fmt.Sprintf("controller %s %s", ref.Kind, ref.Name)
	}
	return fmt.Sprintf("%s (%s, %s)", whoseIs(lease, d), label, controller)
}

// remove deletes one of our objects, only if it is still the object seen.
func (k keeper) remove(ctx context.Context, o client.Object) error {
	if !managed(o) {
		return nil
	}
	uid, rv := o.GetUID(), o.GetResourceVersion()
	err := k.Client.Delete(ctx, o, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return nil // gone, or changed meanwhile: its watch event brings it back here
	case err != nil:
		return fmt.Errorf("delete %T %s: %w", o, o.GetName(), err)
	}
	logf.FromContext(ctx).Info("removed an object no Deployment needs", "kind", fmt.Sprintf("%T", o), "name", o.GetName())
	return nil
}

// removeFor deletes the object named like o if it is ours for alive, the
// Deployment named name, or an orphan of ours left by an earlier Deployment
// of that name (alive nil: none exists now). A missing object, or one not
// ours, is left as it is.
func (k keeper) removeFor(ctx context.Context, o client.Object, name string, alive metav1.Object) error {
	err := k.Client.Get(ctx, client.ObjectKeyFromObject(o), o)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %T %s: %w", o, o.GetName(), err)
	}
	if (alive != nil && ours(o, alive)) || orphanOf(o, name, alive) {
		return k.remove(ctx, o)
	}
	return nil
}
