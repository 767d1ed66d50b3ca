package controllers

import (
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// specFacts is what the RBAC controller needs from a Deployment's spec,
// which the metadata-only cache does not hold.
type specFacts struct {
	namespace      string
	generation     int64
	serviceAccount string
	injected       bool
}

// specMemo remembers specFacts per Deployment UID and generation, so a
// namespace pass reads from the API server only the Deployments whose spec
// changed since the last pass: a generation bump is the only way the
// ServiceAccount or the injection marker can change.
type specMemo struct {
	mu    sync.Mutex
	facts map[types.UID]specFacts
}

// get returns the facts remembered for uid at generation.
func (m *specMemo) get(uid types.UID, generation int64) (specFacts, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.facts[uid]
	return f, ok && f.generation == generation
}

// put remembers the facts of d.
func (m *specMemo) put(d *appsv1.Deployment) specFacts {
	_, injected := d.Spec.Template.Annotations[patches.AnnotationInjected]
	f := specFacts{namespace: d.Namespace, generation: d.Generation,
		serviceAccount: serviceAccountOf(&d.Spec.Template.Spec), injected: injected}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.facts == nil {
		m.facts = map[types.UID]specFacts{}
	}
	m.facts[d.UID] = f
	return f
}

// prune forgets the Deployments of namespace ns that are not in seen.
func (m *specMemo) prune(ns string, seen map[types.UID]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, f := range m.facts {
		if f.namespace == ns && !seen[uid] {
			delete(m.facts, uid)
		}
	}
}
