package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestCachedObjectsCountsWhereTheControllersRun(t *testing.T) {
	cache := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "b"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a-0"}},
	).Build()
	const help = "# HELP singleton_webhook_cached_objects Objects the controllers' cache holds, by kind: the labelled singleton Deployments (metadata) and their Pods; served where the controllers run.\n" +
		"# TYPE singleton_webhook_cached_objects gauge\n"
	tests := map[string]struct {
		controllers []string
		running     bool
		want        string
	}{
		"every controller, running": {controllers: []string{"drift", "election", "gate"}, running: true,
			want: help + "singleton_webhook_cached_objects{kind=\"Deployment\"} 2\nsingleton_webhook_cached_objects{kind=\"Pod\"} 1\n"},
		"drift alone: its Deployments only": {controllers: []string{"drift"}, running: true,
			want: help + "singleton_webhook_cached_objects{kind=\"Deployment\"} 2\n"},
		"gate alone: its Pods only": {controllers: []string{"gate"}, running: true,
			want: help + "singleton_webhook_cached_objects{kind=\"Pod\"} 1\n"},
		"not leading: nothing, so no informer is started": {controllers: []string{"drift", "election", "gate"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newCacheCollector(cache, tc.controllers)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			if tc.running {
				go func() { done <- c.Start(ctx) }()
				for !c.running.Load() {
					time.Sleep(time.Millisecond)
				}
			}
			reg := prometheus.NewRegistry()
			if err := c.register(reg); err != nil {
				t.Fatal(err)
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), CachedObjectsMetric); err != nil {
				t.Error(err)
			}
			cancel()
			if tc.running {
				<-done
			}
		})
	}
}
