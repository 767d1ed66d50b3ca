package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// pagedDeployments serves Deployment metadata in pages, as the API server
// does with limit and continue, and records every page size asked for.
type pagedDeployments struct {
	client.Reader
	items  []metav1.PartialObjectMetadata
	limits []int64
	// failAt fails the list of the page starting at this index once.
	failAt int
}

func (p *pagedDeployments) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := &client.ListOptions{}
	o.ApplyOptions(opts)
	p.limits = append(p.limits, o.Limit)
	start := 0
	if o.Continue != "" {
		start, _ = strconv.Atoi(o.Continue)
	}
	if p.failAt > 0 && start == p.failAt {
		p.failAt = 0
		return errors.New("the continue token expired")
	}
	end := min(start+int(o.Limit), len(p.items))
	l := list.(*metav1.PartialObjectMetadataList)
	l.Items = slices.Clone(p.items[start:end])
	l.Continue = ""
	if end < len(p.items) {
		l.Continue = strconv.Itoa(end)
	}
	return nil
}

func TestStartListHandsOnUnlabelledSingletonsInScope(t *testing.T) {
	meta := func(ns, name string, annotations, labels map[string]string) metav1.PartialObjectMetadata {
		return metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations, Labels: labels}}
	}
	replicas := map[string]string{patches.AnnotationSingleton: "true"}
	election := map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election"}
	var items []metav1.PartialObjectMetadata
	for i := range 7 {
		items = append(items, meta("shop", fmt.Sprintf("plain-%d", i), nil, nil))
	}
	items = append(items,
		meta("shop", "legacy", replicas, nil),
		meta("shop", "labelled", replicas, map[string]string{patches.LabelMode: "replicas"}),
		meta("shop", "stale-label", election, map[string]string{patches.LabelMode: "replicas"}),
		meta("shop", "off", map[string]string{patches.AnnotationSingleton: "false"}, nil),
		meta("shop", "typo", map[string]string{patches.AnnotationSingleton: "yes"}, nil),
		meta("shop", "released", map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationReleased: "true"}, nil),
		meta("singleton-system", "own", replicas, nil),
	)
	items = append(items, meta("shop", "last", replicas, nil))

	for name, failAt := range map[string]int{"in one pass": 0, "after a failed page": 6} {
		t.Run(name, func(t *testing.T) {
			reader := &pagedDeployments{items: items, failAt: failAt}
			found := make(chan event.GenericEvent, len(items)*2)
			namespaces := fake.NewClientBuilder().WithObjects(
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "singleton-system"}},
			).Build()
			s := &StartList{Reader: reader, Scope: DefaultScope("singleton-system"), Namespaces: namespaces, PageSize: 3, Found: found}
			s.retry = time.Millisecond
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			close(found)
			got := map[string]bool{}
			for e := range found {
				got[e.Object.GetNamespace()+"/"+e.Object.GetName()] = true
			}
			want := map[string]bool{"shop/legacy": true, "shop/stale-label": true, "shop/last": true}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("handed on %v, want %v", got, want)
			}
			for _, l := range reader.limits {
				if l != 3 {
					t.Errorf("a page of limit %d, want 3: pages %v", l, reader.limits)
					break
				}
			}
			pages := (len(items) + 2) / 3
			if failAt > 0 {
				pages += failAt/3 + 1 // the pages before the failure, and the failed one
			}
			if len(reader.limits) != pages {
				t.Errorf("%d pages read, want %d", len(reader.limits), pages)
			}
		})
	}
}
