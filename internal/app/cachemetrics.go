package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// CachedObjectsMetric is how many objects of a kind the controllers' cache
// holds: the Deployments admission labelled singletons, and their Pods. It
// grows with the singletons, not with the cluster.
const CachedObjectsMetric = "singleton_webhook_cached_objects"

// cacheCollector serves CachedObjectsMetric, counted from the manager's
// cache at scrape time, once the controllers run on this replica (their
// informers exist then; a count must never start one).
type cacheCollector struct {
	cache   client.Reader
	running atomic.Bool
	desc    *prometheus.Desc
	// kinds are the lists to count, by the kind label.
	kinds map[string]func() client.ObjectList
}

// newCacheCollector returns the collector of the Deployment and Pod
// informers of cache, the manager's, counting only the kinds the named
// controllers watch: drift and election the Deployments, gate and election
// the Pods.
func newCacheCollector(cache client.Reader, controllerNames []string) *cacheCollector {
	c := &cacheCollector{
		cache: cache,
		desc: prometheus.NewDesc(CachedObjectsMetric,
			"Objects the controllers' cache holds, by kind: the labelled singleton Deployments (metadata) and their Pods; served where the controllers run.",
			[]string{"kind"}, nil),
		kinds: map[string]func() client.ObjectList{
			"Deployment": func() client.ObjectList {
				l := &metav1.PartialObjectMetadataList{}
				l.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("DeploymentList"))
				return l
			},
			"Pod": func() client.ObjectList { return &corev1.PodList{} },
		},
	}
	watched := map[string]bool{}
	for _, n := range controllerNames {
		switch n {
		case "drift":
			watched["Deployment"] = true
		case "gate":
			watched["Pod"] = true
		case "election":
			watched["Deployment"], watched["Pod"] = true, true
		}
	}
	maps.DeleteFunc(c.kinds, func(kind string, _ func() client.ObjectList) bool { return !watched[kind] })
	return c
}

// register registers c with reg, replacing the collector of an earlier
// serve in the same process (tests).
func (c *cacheCollector) register(reg prometheus.Registerer) error {
	err := reg.Register(c)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		reg.Unregister(are.ExistingCollector)
		err = reg.Register(c)
	}
	if err != nil {
		return fmt.Errorf("register cache metrics: %w", err)
	}
	return nil
}

// Start implements manager.Runnable: it runs with the controllers (leader
// election) and marks their informers as there to count.
func (c *cacheCollector) Start(ctx context.Context) error {
	c.running.Store(true)
	<-ctx.Done()
	c.running.Store(false)
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (c *cacheCollector) NeedLeaderElection() bool { return true }

// Describe implements prometheus.Collector.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.running.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for kind, newList := range c.kinds {
		l := newList()
		if err := c.cache.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			logf.Log.WithName("metrics").V(1).Info("count the cache for the metrics", "kind", kind, "error", err.Error())
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(meta.LenList(l)), kind)
	}
}
