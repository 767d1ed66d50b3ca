//go:build integration

package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// switchWriter creates singletons without pause and checks every answer:
// a replicas-mode singleton stored pinned, gated and labelled, an invalid
// trigger refused. It counts the writes of each phase of a switch.
type switchWriter struct {
	mu         sync.Mutex
	phase      string
	writes     map[string]int
	violations []string
}

func (w *switchWriter) setPhase(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.phase = p
}

func (w *switchWriter) record(violation string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes[w.phase]++
	if violation != "" {
		w.violations = append(w.violations, w.phase+": "+violation)
	}
}

// run writes until ctx is done.
func (w *switchWriter) run(ctx context.Context, env *testenv.Env, ns string) {
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("w-%d", i)
		if i%4 == 3 {
			d := deployment(ns, name, 3, map[string]string{patches.AnnotationSingleton: "yes"})
			_, err := env.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
			switch {
			case ctx.Err() != nil:
			case err == nil:
				w.record(name + `: singleton: "yes" admitted`)
			case !strings.Contains(err.Error(), `annotation singleton: "yes" is not accepted`):
				w.record(name + ": refused for another reason: " + err.Error())
			default:
				w.record("")
			}
			continue
		}
		got, err := env.Clientset.AppsV1().Deployments(ns).Create(ctx, probe(ns, name, nil), metav1.CreateOptions{})
		switch {
		case ctx.Err() != nil:
		case err != nil:
			w.record(name + ": refused: " + err.Error())
		default:
			w.record(unprotected(got))
		}
	}
}

// unprotected says what a stored replicas-mode singleton lacks, or "".
func unprotected(d *appsv1.Deployment) string {
	var lacks []string
	if replicasOf(d) != "1" {
		lacks = append(lacks, "replicas "+replicasOf(d))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		lacks = append(lacks, "strategy "+string(d.Spec.Strategy.Type))
	}
	if d.Spec.Template.Labels[patches.LabelDeployment] != d.Name {
		lacks = append(lacks, "no pod label")
	}
	gated := false
	for _, g := range d.Spec.Template.Spec.SchedulingGates {
		gated = gated || g.Name == patches.GateOneAtATime
	}
	if !gated {
		lacks = append(lacks, "no scheduling gate")
	}
	if len(lacks) == 0 {
		return ""
	}
	return d.Name + " stored with " + strings.Join(lacks, ", ")
}

// TestPolicySwitch switches a live cluster from webhook to policy admission
// and back while singletons are written without pause: in the order the
// install documents, no write is admitted unprotected. webhook → policy:
// install the policies, wait until they are in effect, then narrow the
// webhook. policy → webhook: widen the webhook, wait until it is in
// effect, then remove the policies. In policy mode the webhook is stopped
// for a while: replicas mode no longer needs it.
func TestPolicySwitch(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	hook := env.StartWebhook(t, testenv.WebhookOptions{})
	pi := newPolicyInstall(t, env, patches.Policy{})
	ns, probes := newNamespace(t, env), newNamespace(t, env)

	w := &switchWriter{writes: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx, env, ns) }()
	defer func() { cancel(); <-done }()
	dwell := func() { time.Sleep(500 * time.Millisecond) }

	phases := []struct {
		name string
		step func()
	}{
		{"webhook", func() {}},
		{"policies installed", func() { pi.installPolicies(t, env); waitPoliciesActive(t, env, probes) }},
		{"webhook narrowed", func() {
			pi.narrowWebhook(t, env)
			eventually(t, 30*time.Second, "the webhook narrowed", func() (bool, string) {
				_, err := dryRunCreate(t, env.Clientset, probe(probes, "narrow-probe", map[string]string{patches.AnnotationEnforcement: "deny"}))
				return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+patches.ValidatingPolicyName+"'"), fmt.Sprint(err)
			})
		}},
		{"policy, webhook down", func() { hook.Stop(t) }},
		{"policy, webhook up", func() { hook.Start(t) }},
		{"webhook widened", func() { env.InstallWebhookConfiguration(t, env.CABundle); waitWebhookHandlesAll(t, env, probes) }},
		{"policies removed", func() {
			pi.removePolicies(t, env)
			cs, warned := warningClient(t, env)
			eventually(t, 30*time.Second, "the policies gone", func() (bool, string) {
				warned.reset()
				if _, err := dryRunCreate(t, cs, probe(probes, "gone-probe", nil)); err != nil {
					return false, err.Error()
				}
				all := warned.String()
				return strings.HasPrefix(all, "singleton: spec.replicas forced") && !strings.Contains(all, "ValidatingAdmissionPolicy"), all
			})
		}},
	}
	for _, p := range phases {
		p.step()
		w.setPhase(p.name)
		dwell()
	}
	cancel()
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range phases {
		if w.writes[p.name] == 0 {
			t.Errorf("no write during phase %q: the switch was not exercised", p.name)
		}
	}
	t.Logf("writes per phase: %v", w.writes)
	for _, v := range w.violations {
		t.Error(v)
	}
}
