package webhook

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestCachedParentFallsBackToTheAPIServer(t *testing.T) {
	dep := func(annotation string) client.Object {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app",
			Annotations: map[string]string{"from": annotation}}}
	}
	empty := func() client.Reader { return fake.NewClientBuilder().WithScheme(scheme.Scheme).Build() }
	with := func(o client.Object) client.Reader {
		return fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(o).Build()
	}
	tests := map[string]struct {
		cache, api client.Reader
		want       string // the "from" annotation; empty: not found
	}{
		"the cache has it":                           {cache: with(dep("cache")), api: with(dep("api")), want: "cache"},
		"only the API server has it (new)":           {cache: empty(), api: with(dep("api")), want: "api"},
		"neither has it: not found, as from the API": {cache: empty(), api: empty()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := CachedParent(tc.cache, tc.api)(context.Background(), "ns", "app")
			if tc.want == "" {
				if !apierrors.IsNotFound(err) {
					t.Fatalf("got %v, %v; want NotFound", m, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Annotations["from"]; got != tc.want {
				t.Errorf("read from %q, want %q", got, tc.want)
			}
		})
	}
}
