package patches_test

// Fuzz tests of the annotation parser and Apply, for panics, unbounded
// messages, refusals that still changed the object, and second passes that
// change something. `go test -fuzz FuzzApply ./patches/` (hack/fuzz.sh runs
// every target).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// maxMessage bounds a refusal message: it quotes at most a clipped key and
// value, whatever the user wrote.
const maxMessage = 4096

// fuzzSeeds returns every golden case input of testdata as JSON.
func fuzzSeeds(f *testing.F) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.yaml") || strings.HasSuffix(file, ".policy.yaml") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			f.Fatalf("%s: %v", file, err)
		}
		seeds = append(seeds, j)
	}
	return seeds
}

func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Add([]byte(`{"metadata":{"annotations":{"singleton":"true"}},"spec":null}`), false)
	f.Add([]byte(`{"metadata":{"annotations":{"singleton":"true","singleton.dev/mode":"election",`+
		`"singleton.dev/lease-duration":"1s","singleton.dev/renew-deadline":"2s"}}}`), false)
	f.Add([]byte(`{"metadata":{"annotations":{"singleton":"true"}},"spec":{"replicas":-5,`+
		`"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"200%"}}}}`), false)
	f.Fuzz(func(t *testing.T, data []byte, election bool) {
		d := &appsv1.Deployment{}
		if err := json.Unmarshal(data, d); err != nil {
			return
		}
		p := patches.Policy{}
		if election {
			p.DefaultMode = patches.ModeElection
		}
		checkApply(t, d, p)
	})
}

func FuzzAnnotations(f *testing.F) {
	f.Add("true", "", "", "", int32(3))
	f.Add("true", "election", "singleton.dev/lease-duration", "20s", int32(2))
	f.Add("True", "replicas", "singleton.dev/mdoe", "x", int32(1))
	f.Add("false", "election", "singleton.dev/leader-service", "true", int32(0))
	f.Add("true", "replicas", "singleton.dev/original-replicas", "-1", int32(-1))
	f.Add("\u202etrue", "\x00", "singleton.dev/"+strings.Repeat("k", 64), "\xff", int32(7))
	f.Fuzz(func(t *testing.T, trigger, mode, key, value string, replicas int32) {
		d := &appsv1.Deployment{}
		d.Name = "app"
		d.Spec.Replicas = &replicas
		d.Annotations = map[string]string{patches.AnnotationSingleton: trigger}
		if mode != "" {
			d.Annotations[patches.AnnotationMode] = mode
		}
		if key != "" {
			d.Annotations[key] = value
		}
		on, err := patches.Enabled(d.Annotations)
		switch {
		case err != nil && (trigger == "true" || trigger == "false"):
			t.Fatalf("Enabled(%q) refused an accepted value: %v", trigger, err)
		case err == nil && on != (d.Annotations[patches.AnnotationSingleton] == "true"):
			t.Fatalf("Enabled(%q) = %v", d.Annotations[patches.AnnotationSingleton], on)
		case err == nil && d.Annotations[patches.AnnotationSingleton] != "true" && d.Annotations[patches.AnnotationSingleton] != "false":
			t.Fatalf("Enabled accepted %q: a typo must never silently disable enforcement", d.Annotations[patches.AnnotationSingleton])
		}
		checkApply(t, d, patches.Policy{})
	})
}

// checkApply runs Apply on d and checks what must hold for any input.
func checkApply(t *testing.T, d *appsv1.Deployment, p patches.Policy) {
	t.Helper()
	before := d.DeepCopy()
	res, err := patches.Apply(d, p)
	if err != nil {
		if msg := err.Error(); msg == "" || len(msg) > maxMessage {
			t.Fatalf("refusal message of %d bytes: %.200q", len(msg), msg)
		}
		if !equality.Semantic.DeepEqual(before, d) {
			t.Fatalf("refused (%v) but changed the Deployment", err)
		}
		return
	}
	if !res.Enforced {
		// The only change allowed: the gate and the label of a former
		// singleton go, each with a warning.
		cleaned := before.DeepCopy()
		cleaned.Spec.Template.Spec.SchedulingGates = slices.DeleteFunc(cleaned.Spec.Template.Spec.SchedulingGates,
			func(g corev1.PodSchedulingGate) bool { return g.Name == patches.GateOneAtATime })
		delete(cleaned.Spec.Template.Labels, patches.LabelDeployment)
		changes := 0
		if len(cleaned.Spec.Template.Spec.SchedulingGates) != len(before.Spec.Template.Spec.SchedulingGates) {
			changes++
		}
		if len(cleaned.Spec.Template.Labels) != len(before.Spec.Template.Labels) {
			changes++
		}
		if !equality.Semantic.DeepEqual(cleaned, d) || len(res.Warnings) != changes {
			t.Fatalf("not enforced, yet changed more than the webhook's gate and label, or warned %q", res.Warnings)
		}
		return
	}
	if res.Mode == patches.ModeReplicas {
		if r := d.Spec.Replicas; r != nil && *r > 1 {
			t.Fatalf("replicas mode left %d replicas", *r)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
			t.Fatalf("replicas mode left strategy %+v", d.Spec.Strategy)
		}
	}
	once := d.DeepCopy()
	res2, err := patches.Apply(d, p)
	if err != nil {
		t.Fatalf("second pass refused what the first produced: %v", err)
	}
	if !equality.Semantic.DeepEqual(once, d) || len(res2.Warnings) > 0 {
		t.Fatalf("second pass changed the Deployment or warned: %q", res2.Warnings)
	}
}
