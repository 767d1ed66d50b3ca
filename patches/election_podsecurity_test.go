package patches_test

// Pod Security of every injected election template.

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// restrictedViolations returns why a pod template fails Pod Security
// "restricted" at the latest version; empty when it passes.
func restrictedViolations(t *testing.T, tmpl *corev1.PodTemplateSpec) []string {
	t.Helper()
	e, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("build Pod Security evaluator: %v", err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}
	res := psapolicy.AggregateCheckResults(e.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec))
	if res.Allowed {
		return nil
	}
	return []string{res.ForbiddenReason(), res.ForbiddenDetail()}
}

// TestElectionPodSecurityRestricted applies every election golden case that
// succeeds and checks the result passes Pod Security "restricted". The
// fixtures' app containers are compliant on their own and set nothing at
// pod level, so the check judges what the webhook adds.
func TestElectionPodSecurityRestricted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "election-*.yaml"))
	if err != nil {
		t.Fatalf("list testdata: %v", err)
	}
	checked := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if strings.HasSuffix(name, ".golden") || strings.HasSuffix(name, ".policy") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			d := readDeployment(t, f)
			// hostNetwork is never "restricted" (nor "baseline"), and there
			// the sidecar's host port is part of the design: judge what the
			// sidecar adds with both taken out.
			hostNetwork := d.Spec.Template.Spec.HostNetwork
			if v := restrictedViolations(t, withoutHostNetwork(&d.Spec.Template)); v != nil {
				t.Fatalf("fixture's own pod template is not restricted-compliant: %v", v)
			}
			res, err := patches.Apply(d, readPolicy(t, filepath.Join("testdata", name+".policy.yaml")))
			if err != nil {
				return // a refused case: TestGolden checks its message
			}
			if res.Mode != patches.ModeElection {
				return // switched away from election mode
			}
			checked++
			tmpl := &d.Spec.Template
			if hostNetwork {
				tmpl = withoutHostNetwork(tmpl)
			}
			if v := restrictedViolations(t, tmpl); v != nil {
				t.Errorf("injected pod template fails Pod Security restricted: %v", v)
			}
		})
	}
	if checked < 8 {
		t.Errorf("only %d injected election cases were checked, want at least 8", checked)
	}
}

// withoutHostNetwork is a copy of tmpl without hostNetwork and host ports.
func withoutHostNetwork(tmpl *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	t := tmpl.DeepCopy()
	t.Spec.HostNetwork = false
	for _, cs := range [][]corev1.Container{t.Spec.InitContainers, t.Spec.Containers} {
		for i := range cs {
			for j := range cs[i].Ports {
				cs[i].Ports[j].HostPort = 0
			}
		}
	}
	return t
}

// TestElectionPodSecurityCatchesViolations proves the check above can fail:
// the injected sidecar without its security context is refused.
func TestElectionPodSecurityCatchesViolations(t *testing.T) {
	d := electionDeployment(nil)
	if _, err := patches.Apply(d, patches.Policy{}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	for i := range d.Spec.Template.Spec.InitContainers {
		d.Spec.Template.Spec.InitContainers[i].SecurityContext = nil
	}
	if v := restrictedViolations(t, &d.Spec.Template); v == nil {
		t.Fatal("a sidecar without a security context passed Pod Security restricted")
	}
}
