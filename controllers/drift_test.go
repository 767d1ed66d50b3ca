package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestDriftLooksOnlyAtSpecChangesOfSingletons(t *testing.T) {
	meta := func(generation int64, annotations map[string]string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Name: "app", Generation: generation, Annotations: annotations}}
	}
	singleton := map[string]string{"singleton": "true"}
	tests := map[string]struct {
		update bool
		old    *metav1.PartialObjectMetadata
		new    *metav1.PartialObjectMetadata
		want   bool
	}{
		"a singleton is created (or listed at start)": {new: meta(1, singleton), want: true},
		"an ordinary Deployment is created":           {new: meta(1, nil)},
		"a singleton is scaled (generation bumped)":   {update: true, old: meta(2, singleton), new: meta(3, singleton), want: true},
		"a singleton's status is updated":             {update: true, old: meta(3, singleton), new: meta(3, singleton)},
		"an ordinary Deployment is scaled":            {update: true, old: meta(2, nil), new: meta(3, nil)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := true
			for _, p := range driftEvents() {
				if tc.update {
					got = got && p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new})
				} else {
					got = got && p.Create(event.CreateEvent{Object: tc.new})
				}
			}
			if got != tc.want {
				t.Errorf("looked at: %t, want %t", got, tc.want)
			}
		})
	}
}
