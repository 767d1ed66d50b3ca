package patches_test

import (
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// annotated returns a Deployment with the given annotations and replicas.
func annotated(annotations map[string]string, replicas *int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "default", Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
		},
	}
}

func int32p(n int32) *int32 { return &n }

const knownKeysList = "singleton.dev/enforcement, singleton.dev/leader-service, singleton.dev/lease-duration, singleton.dev/lease-name, " +
	"singleton.dev/mode, singleton.dev/original-replicas, singleton.dev/original-strategy, singleton.dev/released, " +
	"singleton.dev/renew-deadline, singleton.dev/retry-period"

func TestApplyDeniesBadAnnotations(t *testing.T) {
	const badTrigger = `is not accepted; use "true" to enforce or "false" to opt out (exact, lower case)`
	tests := map[string]struct {
		annotations map[string]string
		replicas    *int32
		// key is the AnnotationError's key; empty when the refusal is not
		// about an annotation.
		key  string
		want string
	}{
		"a trigger of yes is refused": {
			annotations: map[string]string{"singleton": "yes"},
			key:         "singleton",
			want:        `annotation singleton: "yes" ` + badTrigger,
		},
		"a capitalised True is refused": {
			annotations: map[string]string{"singleton": "True"},
			key:         "singleton",
			want:        `annotation singleton: "True" ` + badTrigger,
		},
		"an empty trigger is refused": {
			annotations: map[string]string{"singleton": ""},
			key:         "singleton",
			want:        `annotation singleton: "" ` + badTrigger,
		},
		"an unknown mode is refused with the accepted modes": {
			annotations: map[string]string{"singleton": "true", "singleton.dev/mode": "leader"},
			key:         "singleton.dev/mode",
			want:        `annotation singleton.dev/mode: "leader" is not a mode; use one of: replicas, election`,
		},
		"a mode in capitals is refused": {
			annotations: map[string]string{"singleton": "true", "singleton.dev/mode": "Replicas"},
			key:         "singleton.dev/mode",
			want:        `annotation singleton.dev/mode: "Replicas" is not a mode; use one of: replicas, election`,
		},
		"a typo'd mode key suggests the right one": {
			annotations: map[string]string{"singleton": "true", "singleton.dev/mdoe": "replicas"},
			key:         "singleton.dev/mdoe",
			want:        `annotation singleton.dev/mdoe: "replicas" is set on an unknown annotation key; did you mean singleton.dev/mode?`,
		},
		"a far-off unknown key lists the known keys": {
			annotations: map[string]string{"singleton": "true", "singleton.dev/frobnicate": "yes"},
			key:         "singleton.dev/frobnicate",
			want: `annotation singleton.dev/frobnicate: "yes" is set on an unknown annotation key; known keys: ` +
				knownKeysList,
		},
		"of two unknown keys the first in order is named": {
			annotations: map[string]string{"singleton": "true", "singleton.dev/zzz": "1", "singleton.dev/lease-nme": "x"},
			key:         "singleton.dev/lease-nme",
			want:        `annotation singleton.dev/lease-nme: "x" is set on an unknown annotation key; did you mean singleton.dev/lease-name?`,
		},
		"negative replicas are refused": {
			annotations: map[string]string{"singleton": "true"},
			replicas:    int32p(-1),
			want:        "spec.replicas is -1; it must not be negative",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := annotated(tc.annotations, tc.replicas)
			before := d.DeepCopy()
			res, err := patches.Apply(d, patches.Policy{})
			if err == nil {
				t.Fatalf("Apply allowed it: %+v", res)
			}
			if err.Error() != tc.want {
				t.Errorf("message:\n got: %s\nwant: %s", err, tc.want)
			}
			var ae *patches.AnnotationError
			switch {
			case tc.key == "" && errors.As(err, &ae):
				t.Errorf("got an AnnotationError for %s, want a spec error", ae.Key)
			case tc.key != "" && !errors.As(err, &ae):
				t.Errorf("got %T, want *patches.AnnotationError", err)
			case tc.key != "" && (ae.Key != tc.key || ae.Value != tc.annotations[tc.key]):
				t.Errorf("AnnotationError names %s=%q, want %s=%q", ae.Key, ae.Value, tc.key, tc.annotations[tc.key])
			}
			if res.Enforced || len(res.Warnings) != 0 {
				t.Errorf("a refusal returned a result: %+v", res)
			}
			if !equality.Semantic.DeepEqual(before, d) {
				t.Errorf("a refused Apply changed the Deployment")
			}
		})
	}
}

func TestApplyLeavesNonSingletonsAlone(t *testing.T) {
	tests := map[string]map[string]string{
		"no annotations map":              nil,
		"other annotations only":          {"example.com/owner": "team"},
		"singleton is false":              {"singleton": "false"},
		"false with a bad mode":           {"singleton": "false", "singleton.dev/mode": "bogus"},
		"false with an unknown key":       {"singleton": "false", "singleton.dev/mdoe": "replicas"},
		"a singleton.dev key, no trigger": {"singleton.dev/mode": "replicas"},
	}
	for name, annotations := range tests {
		t.Run(name, func(t *testing.T) {
			d := annotated(annotations, int32p(3))
			before := d.DeepCopy()
			res, err := patches.Apply(d, patches.Policy{})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if res.Enforced || res.Mode != "" || len(res.Warnings) != 0 {
				t.Errorf("got %+v, want a zero result", res)
			}
			if !equality.Semantic.DeepEqual(before, d) {
				t.Errorf("Apply changed a Deployment that is not a singleton")
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tests := map[string]struct {
		annotations  map[string]string
		policy       patches.Policy
		wantMode     patches.Mode
		wantEnforced bool
		wantErr      bool
	}{
		"the default mode is replicas": {
			annotations: map[string]string{"singleton": "true"}, wantMode: patches.ModeReplicas, wantEnforced: true,
		},
		"the policy's default mode applies": {
			annotations: map[string]string{"singleton": "true"},
			policy:      patches.Policy{DefaultMode: patches.ModeElection}, wantMode: patches.ModeElection, wantEnforced: true,
		},
		"a written mode wins over the policy": {
			annotations: map[string]string{"singleton": "true", "singleton.dev/mode": "replicas"},
			policy:      patches.Policy{DefaultMode: patches.ModeElection}, wantMode: patches.ModeReplicas, wantEnforced: true,
		},
		"an empty mode means the default": {
			annotations: map[string]string{"singleton": "true", "singleton.dev/mode": ""}, wantMode: patches.ModeReplicas, wantEnforced: true,
		},
		"opted out":     {annotations: map[string]string{"singleton": "false", "singleton.dev/mode": "election"}},
		"no trigger":    {annotations: map[string]string{"singleton.dev/mode": "election"}},
		"a bad trigger": {annotations: map[string]string{"singleton": "on"}, wantErr: true},
		"a bad mode":    {annotations: map[string]string{"singleton": "true", "singleton.dev/mode": "x"}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mode, enforced, err := patches.Resolve(tc.annotations, tc.policy)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %t", err, tc.wantErr)
			}
			if mode != tc.wantMode || enforced != tc.wantEnforced {
				t.Errorf("got mode %q enforced %t, want %q %t", mode, enforced, tc.wantMode, tc.wantEnforced)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []patches.Mode{patches.ModeReplicas, patches.ModeElection} {
		got, err := patches.ParseMode(string(m), "")
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", m, got, err, m)
		}
	}
	if got, err := patches.ParseMode("", patches.ModeElection); err != nil || got != patches.ModeElection {
		t.Errorf("ParseMode of empty = %q, %v; want the default %q", got, err, patches.ModeElection)
	}
	if _, err := patches.ParseMode("replica", patches.ModeReplicas); err == nil {
		t.Error("ParseMode accepted replica")
	}
}
