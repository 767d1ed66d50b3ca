package ops

import (
	"slices"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/singleton-webhook/singleton-webhook/controllers"
	"github.com/singleton-webhook/singleton-webhook/elector"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// overdueSlack is how long past its grace period a Pod may take to go
// before it counts as overdue: the gate controller's own allowance.
const overdueSlack = 2 * time.Second

// Status turns a snapshot into one Singleton per annotated Deployment.
func Status(s *Snapshot) *StatusList {
	out := &StatusList{APIVersion: StatusAPIVersion, Kind: StatusKind, Errors: []string{}, Items: []Singleton{}}
	for _, e := range s.Unread {
		out.Errors = append(out.Errors, e.Error())
	}
	out.Partial = len(out.Errors) > 0
	ds := slices.Clone(s.Deployments)
	sortDeployments(ds)
	for i := range ds {
		if on, err := patches.Enabled(ds[i].Annotations); on || err != nil {
			out.Items = append(out.Items, singletonOf(s, &ds[i]))
		}
	}
	return out
}

// singletonOf builds the state of one Deployment.
func singletonOf(s *Snapshot, d *appsv1.Deployment) Singleton {
	st := Singleton{Namespace: d.Namespace, Name: d.Name, Waiting: []WaitingPod{}}
	mode, _, err := patches.Resolve(d.Annotations, patches.Policy{DefaultMode: templateMode(d)})
	st.Mode = string(mode)
	if err != nil {
		st.Mode = "invalid"
	}
	enf, err := patches.ParseEnforcement(d.Annotations[patches.AnnotationEnforcement], "")
	st.Enforcement = string(enf)
	if err != nil {
		st.Enforcement = "invalid"
	}
	st.Enforced, st.NotEnforced = admitted(d, mode)
	pods := podsOf(s, d)
	gated, running := sortPods(pods)
	if !st.Enforced {
		n := int(d.Status.Replicas)
		st.PodsAlive = &n
	} else if s.Known("pods", d.Namespace) {
		n := len(running)
		st.PodsAlive = &n
	}
	if mode == patches.ModeElection {
		st.Lease = leaseState(s, d)
		st.Active = leader(st.Lease, pods)
	} else if len(running) > 0 {
		p := running[0]
		st.Active = &ActivePod{Pod: p.Name, Node: p.Spec.NodeName, Phase: phaseOf(p), Since: p.CreationTimestamp.UTC()}
	}
	for _, p := range gated {
		st.Waiting = append(st.Waiting, waiting(s.Now, p, running))
	}
	return st
}

// templateMode is the mode the pod template shows the webhook applied:
// the cluster's default mode is the webhook's flag, unknown here, so a
// Deployment without a mode annotation is read from what was done to it.
func templateMode(d *appsv1.Deployment) patches.Mode {
	if _, ok := d.Spec.Template.Annotations[patches.AnnotationInjected]; ok {
		return patches.ModeElection
	}
	return patches.ModeReplicas
}

// admitted reports whether the pod template carries what the webhook
// writes in mode: the label and the gate (replicas), the injection marker
// (election).
func admitted(d *appsv1.Deployment, mode patches.Mode) (bool, string) {
	t := &d.Spec.Template
	switch mode {
	case patches.ModeElection:
		if _, ok := t.Annotations[patches.AnnotationInjected]; ok {
			return true, ""
		}
		return false, "not enforced yet: the pod template has no elector (annotated before the webhook was installed, or admitted while it was down)"
	case patches.ModeReplicas:
		if _, ok := t.Labels[patches.LabelDeployment]; ok && hasGate(&t.Spec) {
			return true, ""
		}
		return false, "not enforced yet: the pod template has no scheduling gate (annotated before the webhook was installed, or admitted while it was down)"
	}
	return false, "not enforced: its singleton annotations are invalid, the webhook denies it"
}

// podsOf returns the Pods of d's group.
func podsOf(s *Snapshot, d *appsv1.Deployment) []*corev1.Pod {
	group := patches.DeploymentLabelValue(d.Name)
	var out []*corev1.Pod
	for i := range s.Pods {
		p := &s.Pods[i]
		if p.Namespace == d.Namespace && p.Labels[patches.LabelDeployment] == group {
			out = append(out, p)
		}
	}
	return out
}

// sortPods splits a group as the gate controller does: gated Pods (not
// being deleted), oldest first, and alive ungated ones, oldest first.
func sortPods(pods []*corev1.Pod) (gated, running []*corev1.Pod) {
	for _, p := range pods {
		switch {
		case hasGate(&p.Spec) && p.DeletionTimestamp == nil:
			gated = append(gated, p)
		case hasGate(&p.Spec):
		case alive(p):
			running = append(running, p)
		}
	}
	older := func(s []*corev1.Pod) func(i, j int) bool {
		return func(i, j int) bool {
			if !s[i].CreationTimestamp.Equal(&s[j].CreationTimestamp) {
				return s[i].CreationTimestamp.Before(&s[j].CreationTimestamp)
			}
			return s[i].Name < s[j].Name
		}
	}
	sort.Slice(gated, older(gated))
	sort.Slice(running, older(running))
	return gated, running
}

func alive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

func hasGate(s *corev1.PodSpec) bool {
	return slices.ContainsFunc(s.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == patches.GateOneAtATime })
}

func phaseOf(p *corev1.Pod) string {
	switch {
	case p.DeletionTimestamp != nil:
		return "Terminating"
	case p.Status.Phase == "":
		return string(corev1.PodPending)
	}
	return string(p.Status.Phase)
}

// waiting describes what a gated Pod waits for.
func waiting(now time.Time, p *corev1.Pod, running []*corev1.Pod) WaitingPod {
	w := WaitingPod{Pod: p.Name, Since: p.CreationTimestamp.UTC()}
	if len(running) == 0 {
		return w
	}
	b := running[0]
	w.WaitsFor, w.BlockerNode, w.BlockerState = b.Name, b.Spec.NodeName, "running"
	if b.DeletionTimestamp != nil {
		end := b.DeletionTimestamp.UTC()
		w.GraceEnds, w.BlockerState = &end, "terminating"
		if now.After(end.Add(overdueSlack)) {
			w.BlockerState = "overdue"
		}
	}
	return w
}

// leaseState reads d's election Lease from the snapshot.
func leaseState(s *Snapshot, d *appsv1.Deployment) *LeaseState {
	name := controllers.LeaseName(d)
	ls := &LeaseState{Name: name}
	i := slices.IndexFunc(s.Leases, func(l coordinationv1.Lease) bool { return l.Namespace == d.Namespace && l.Name == name })
	if i < 0 {
		return ls
	}
	l := &s.Leases[i]
	ls.Found, ls.Epoch = true, elector.Epoch(l)
	ls.ManagedByWebhook = l.Labels[controllers.ManagedByLabel] == controllers.ManagedBy
	if l.Spec.HolderIdentity != nil {
		ls.Holder = *l.Spec.HolderIdentity
	}
	if l.Spec.AcquireTime != nil {
		ls.acquired = l.Spec.AcquireTime.UTC()
	}
	if l.Spec.LeaseDurationSeconds != nil {
		ls.DurationSeconds = *l.Spec.LeaseDurationSeconds
	}
	if l.Spec.RenewTime != nil {
		until := l.Spec.RenewTime.Add(time.Duration(ls.DurationSeconds) * time.Second).UTC()
		ls.ValidUntil, ls.Valid = &until, ls.Holder != "" && s.Now.Before(until)
	}
	return ls
}

// leader is the Pod holding a valid Lease, if it exists.
func leader(ls *LeaseState, pods []*corev1.Pod) *ActivePod {
	if !ls.Valid {
		return nil
	}
	a := &ActivePod{Pod: ls.Holder, Phase: "Unknown", Since: ls.acquired}
	for _, p := range pods {
		if p.Name == ls.Holder {
			a.Node, a.Phase = p.Spec.NodeName, phaseOf(p)
		}
	}
	return a
}
