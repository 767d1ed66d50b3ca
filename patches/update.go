package patches

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// CheckUpdate refuses an update of a Deployment, given the stored object
// old, that would move the candidates of a live election to another Lease.
//
// The new Lease starts empty, so the first Pod of the new template takes it
// at once, while an old Pod's sidecar keeps telling its app it leads until
// its renew deadline (or longer, cut off from the API server): two leaders.
// No hand-over between two Leases can rule that out without the old
// candidates' cooperation, so the change is refused while the Deployment
// may have candidates, and the message gives the safe procedure: scale to
// 0, wait for the Pods to be gone, change the Lease, scale back (or create
// a new Deployment).
//
// The Deployment may have candidates when, in old: spec.replicas is not 0;
// or status.replicas or status.terminatingReplicas is not 0; or the
// Deployment controller has not observed its last generation yet, so its
// status may lag behind a scale to 0. A cluster that does not fill
// status.terminatingReplicas (the DeploymentReplicaSetTerminatingReplicas
// feature, on by default since Kubernetes 1.35) is trusted to have no
// terminating Pods once status.replicas is 0: the procedure says to wait
// for them.
//
// Only the effective Lease counts: the annotation, or the Deployment's name
// when there is none. Leaving election mode, or entering it, moves no
// candidate to another Lease and is not refused here.
func CheckUpdate(old, d *appsv1.Deployment, p Policy) error {
	from, ok := electionLease(old, p)
	if !ok {
		return nil
	}
	to, ok := electionLease(d, p)
	if !ok || to == from {
		return nil
	}
	why := liveCandidates(old)
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("election mode: the effective Lease would change from %q to %q while the Deployment may have candidates (%s): "+
		"a Pod on the new, empty Lease would lead at once while a Pod on the old one may still believe it leads. "+
		"Change it safely: kubectl scale deployment/%s --replicas=0; wait until kubectl get pods -l %s=%s lists no Pod; "+
		"then set %s and scale back; or create a new Deployment with the new Lease and scale this one to 0",
		from, to, strings.Join(why, "; "), old.Name, LabelDeployment, DeploymentLabelValue(old.Name), AnnotationLeaseName)
}

// electionLease returns the effective Lease name of an election-mode
// singleton, and whether d is one.
func electionLease(d *appsv1.Deployment, p Policy) (string, bool) {
	mode, enforced, err := Resolve(d.Annotations, p)
	if err != nil || !enforced || mode != ModeElection || Released(d.Annotations) {
		return "", false
	}
	if v, ok := d.Annotations[AnnotationLeaseName]; ok {
		return v, true
	}
	return d.Name, true
}

// liveCandidates says why a stored Deployment may still have Pods running
// the election; empty when it has none.
func liveCandidates(d *appsv1.Deployment) []string {
	var why []string
	if r := d.Spec.Replicas; r == nil || *r != 0 {
		why = append(why, "spec.replicas is "+replicasString(r))
	}
	s := d.Status
	if s.Replicas != 0 {
		why = append(why, fmt.Sprintf("status.replicas is %d", s.Replicas))
	}
	if t := s.TerminatingReplicas; t != nil && *t != 0 {
		why = append(why, fmt.Sprintf("status.terminatingReplicas is %d", *t))
	}
	if s.ObservedGeneration < d.Generation {
		why = append(why, fmt.Sprintf("the Deployment controller has observed generation %d of %d, so the status may not show every Pod yet",
			s.ObservedGeneration, d.Generation))
	}
	return why
}

// TemplateChanged reports whether an update changes the pod template the
// user wrote, compared with the stored object, leaving out what the webhook
// injected: then the Deployment rolls anyway, and the webhook renews an
// older sidecar in that rollout (Policy.RenewSidecar).
func TemplateChanged(old, d *appsv1.Deployment) bool {
	return !equality.Semantic.DeepEqual(usersTemplate(old), usersTemplate(d))
}

// KeepInjection gives d, an update of old whose pod template the user did
// not change (TemplateChanged is false), the stored template back when d
// lost the injection: a server-side apply or a replace of the manifest as
// the user wrote it drops the sidecar an older version injected, and
// injecting this version's instead would roll the Deployment for the
// version alone. Then Apply keeps the older sidecar. Mutate mode only:
// deny mode takes the manifest as written or refuses it.
func KeepInjection(old, d *appsv1.Deployment, p Policy) {
	if e, err := ParseEnforcement(d.Annotations[AnnotationEnforcement], p.DefaultEnforcement); err != nil || e != EnforcementMutate || p.CheckOnly {
		return
	}
	if _, ok := InjectedVersion(&d.Spec.Template); ok {
		return
	}
	if _, ok := InjectedVersion(&old.Spec.Template); !ok || TemplateChanged(old, d) {
		return
	}
	d.Spec.Template = *old.Spec.Template.DeepCopy()
}

// usersTemplate is a Deployment's pod template without what the webhook
// writes into it: the election injection and the Deployment label.
func usersTemplate(d *appsv1.Deployment) *corev1.PodTemplateSpec {
	c := &appsv1.Deployment{ObjectMeta: d.ObjectMeta, Spec: appsv1.DeploymentSpec{Template: *d.Spec.Template.DeepCopy()}}
	stripElection(c)
	stripPodLabel(c)
	return &c.Spec.Template
}
