package ops

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/version"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// roleLabelGrace is how long after a change of leader the role labels may
// still disagree with the Lease: the controller sets them on the Lease's
// next event.
const roleLabelGrace = 10 * time.Second

// excludedNamespaces returns the namespaces in the snapshot where the
// webhook configuration's Deployment entry does not apply (its
// namespaceSelector), with the reason. Unknown without the configuration.
func (c *installCheck) excludedNamespaces(ctx context.Context, snap *Snapshot) map[string]string {
	if c.mwc == nil {
		return nil
	}
	w := deploymentsEntry(c.mwc)
	if w == nil || w.NamespaceSelector == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
	if err != nil {
		return nil
	}
	nss, err := c.cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.result.unread("namespaces (excluded and opted-out namespaces not checked)", err)
		return nil
	}
	out := map[string]string{}
	for _, ns := range nss.Items {
		if !sel.Matches(labels.Set(ns.Labels)) {
			out[ns.Name] = fmt.Sprintf("the webhook configuration's namespaceSelector (%s) excludes namespace %s", sel, ns.Name)
		}
	}
	return out
}

// singletonCheck checks every singleton of a snapshot.
type singletonCheck struct {
	snap           *Snapshot
	install        Install
	webhookVersion *version.Version
	excluded       map[string]string
	result         *CheckResult
}

func (c *singletonCheck) run() {
	list := Status(c.snap)
	byName := map[string]*appsv1.Deployment{}
	for i := range c.snap.Deployments {
		d := &c.snap.Deployments[i]
		byName[d.Namespace+"/"+d.Name] = d
	}
	for i := range list.Items {
		s := &list.Items[i]
		c.check(s, byName[s.Namespace+"/"+s.Name])
	}
}

func (c *singletonCheck) check(s *Singleton, d *appsv1.Deployment) {
	obj := "deployment/" + s.Namespace + "/" + s.Name
	kubectl := "kubectl -n " + s.Namespace + " "
	if d.Spec.Template.Spec.NodeName != "" && s.Mode == string(patches.ModeReplicas) {
		c.result.add(CodeNodeNameTemplate, SeverityError, obj,
			kubectl+`patch deployment `+s.Name+` --type=json -p '[{"op":"remove","path":"/spec/template/spec/nodeName"}]'  # pin with nodeSelector kubernetes.io/hostname instead`,
			"the pod template sets nodeName %q: its Pods bypass the scheduler, so the scheduling gate cannot hold them (the API server refuses a gated Pod with a nodeName)", d.Spec.Template.Spec.NodeName)
	}
	if why, ok := c.excluded[s.Namespace]; ok {
		c.result.add(CodeExcludedNamespace, SeverityError, obj,
			fmt.Sprintf("kubectl label namespace %s singleton.dev/webhook-  # or remove the singleton annotation: %s", s.Namespace, why),
			"annotated singleton, but the webhook does not apply in namespace %s: nothing is enforced", s.Namespace)
		return
	}
	if !s.Enforced {
		c.result.add(CodeNotAdmitted, SeverityError, obj, kubectl+"rollout restart deployment/"+s.Name+"  # an update goes through the webhook",
			"annotated singleton, but the webhook never admitted it: %s", s.NotEnforced)
		return
	}
	if s.Mode == string(patches.ModeElection) {
		c.checkElection(s, d, obj, kubectl)
		return
	}
	if s.PodsAlive != nil && *s.PodsAlive > 1 {
		c.result.add(CodeTwoPodsAlive, SeverityError, obj,
			kubectl+"get pods -o wide -l "+patches.LabelDeployment+"="+patches.DeploymentLabelValue(s.Name)+"  # then delete the Pod that must not run",
			"%d Pods of this replicas-mode singleton may run at once (a gate removed by hand, or a force-deleted Pod still running)", *s.PodsAlive)
	}
	for _, w := range s.Waiting {
		if w.BlockerState != "overdue" {
			continue
		}
		c.result.add(CodeGateOverdue, SeverityError, obj,
			fmt.Sprintf("%sdelete pod %s --grace-period=0 --force  # only once node %s is really down; or: kubectl taint node %s node.kubernetes.io/out-of-service=nodeshutdown:NoExecute",
				kubectl, w.WaitsFor, w.BlockerNode, w.BlockerNode),
			"Pod %s waits since %s for %s, still Terminating %s after its grace period on node %q (lost?)",
			w.Pod, age(c.snap.Now, w.Since), w.WaitsFor, age(c.snap.Now, *w.GraceEnds), w.BlockerNode)
	}
}

// checkElection checks an election singleton against its Lease and Pods.
func (c *singletonCheck) checkElection(s *Singleton, d *appsv1.Deployment, obj, kubectl string) {
	l := s.Lease
	if c.webhookVersion != nil {
		injected := d.Spec.Template.Annotations[patches.AnnotationInjected]
		if v, err := version.ParseGeneric(injected); err == nil && v.LessThan(c.webhookVersion) {
			c.result.add(CodeSidecarOutdated, SeverityWarning, obj, kubectl+"rollout restart deployment/"+s.Name+"  # the update injects the webhook's sidecar",
				"the injected sidecar is %s, older than the webhook's %s", injected, c.webhookVersion)
		}
	}
	if l.Found && !l.ManagedByWebhook {
		c.result.add(CodeLeaseNotOwned, SeverityWarning, obj,
			fmt.Sprintf("%sannotate deployment %s singleton.dev/lease-name=%s-leader  # a Lease name the webhook creates", kubectl, s.Name, s.Name),
			"the Lease %s was not made by the webhook: another program may hold or write it", l.Name)
	}
	pods := podsOf(c.snap, d)
	if !c.snap.Known("pods", s.Namespace) || s.PodsAlive == nil || *s.PodsAlive == 0 {
		return
	}
	duration := time.Duration(l.DurationSeconds) * time.Second
	since := oldest(pods)
	if l.ValidUntil != nil {
		since = *l.ValidUntil
	}
	if !l.Valid && c.snap.Now.Sub(since) > max(duration, patches.DefaultLeaseDuration) {
		c.result.add(CodeNoLeader, SeverityError, obj,
			kubectl+"logs deployment/"+s.Name+" -c "+patches.ElectorContainerName,
			"no valid leader for %s (Lease %s), longer than its lease duration, with %d Pods alive", age(c.snap.Now, since), l.Name, *s.PodsAlive)
		return
	}
	if !l.Valid || c.snap.Now.Sub(l.acquired) < roleLabelGrace {
		return
	}
	for _, p := range pods {
		role := p.Labels[patches.RoleLabel]
		if (p.Name == l.Holder) != (role == patches.RoleLeader) && alive(p) {
			c.result.add(CodeRoleLabelMismatch, SeverityError, obj,
				fmt.Sprintf("kubectl -n %s logs deployment/%s  # the webhook's role label controller sets it", c.install.Namespace, c.install.Deployment),
				"Pod %s is labelled %s=%q but the Lease is held by %s: a leader Service routes to the wrong Pod", p.Name, patches.RoleLabel, role, l.Holder)
		}
	}
}

// oldest is the creation time of the oldest Pod.
func oldest(pods []*corev1.Pod) time.Time {
	var t time.Time
	for _, p := range pods {
		if t.IsZero() || p.CreationTimestamp.Before(&metav1.Time{Time: t}) {
			t = p.CreationTimestamp.Time
		}
	}
	return t
}
