package patches

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReleaseIsWhatTheWebhookThenKeeps(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		mode        Mode
		wantChanges int
	}{
		"a replicas-mode singleton":                         {annotations: map[string]string{AnnotationSingleton: "true"}, wantChanges: 4},
		"a replicas-mode singleton in deny mode":            {annotations: map[string]string{AnnotationSingleton: "true", AnnotationEnforcement: "deny"}, wantChanges: 4},
		"an election-mode singleton: nothing to do":         {annotations: map[string]string{AnnotationSingleton: "true", AnnotationMode: "election"}, mode: ModeElection},
		"a gate left on a Deployment no longer a singleton": {annotations: map[string]string{AnnotationSingleton: "false"}, mode: ModeReplicas, wantChanges: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", Annotations: map[string]string{AnnotationSingleton: "true", AnnotationMode: string(tc.mode)}}}
			if tc.mode == "" {
				d.Annotations[AnnotationMode] = string(ModeReplicas)
			}
			if _, err := Apply(d, Policy{}); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.annotations {
				d.Annotations[k] = v
			}
			changes := Release(d)
			if len(changes) != tc.wantChanges {
				t.Fatalf("changes %q, want %d", changes, tc.wantChanges)
			}
			if HasGate(d) {
				t.Error("the gate is still there")
			}
			if len(Release(d.DeepCopy())) != 0 {
				t.Error("a second Release changes something")
			}
			if tc.wantChanges == 0 {
				return
			}
			again := d.DeepCopy()
			res, err := Apply(again, Policy{})
			if err != nil {
				t.Fatalf("the webhook refuses the released Deployment: %v", err)
			}
			if res.Enforced || !equality.Semantic.DeepEqual(d, again) {
				t.Errorf("the webhook changes the released Deployment (enforced %t): %q", res.Enforced, res.Warnings)
			}
		})
	}
}

func TestReleasedMarkerAcceptsOnlyTrue(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Annotations: map[string]string{
		AnnotationSingleton: "true", AnnotationReleased: "yes"}}}
	_, err := Apply(d, Policy{})
	want := `annotation singleton.dev/released: "yes" is not accepted; "true" (written by singleton-webhook release) lets go of the singleton, remove the annotation to enforce it again`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}
