package cluster

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// stages are kwok's Stages: the simulated kubelet's behaviour.
//
//go:embed stages.yaml
var stages []byte

// StoppedAnnotation on a terminating Pod tells its simulated node that its
// containers have exited: the Pod goes away at once instead of at the end
// of its grace period.
const StoppedAnnotation = "cluster.singleton.dev/stopped"

// kwokNodeAnnotation marks a Node as one kwok manages.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// nodeName is the name of simulated node i.
func nodeName(i int) string { return "node-" + strconv.Itoa(i) }

// Addresses of the simulated nodes and their Pods: documentation and
// benchmarking ranges (RFC 5737, RFC 2544), which no network routes. They
// only ever appear in API objects; nothing connects to them.
func nodeIP(i int) string  { return "192.0.2." + strconv.Itoa(10+i) }
func podCIDR(i int) string { return "198.18." + strconv.Itoa(i) + ".0/24" }

// nodeLeaseSeconds is the kwok node lease: renewed every quarter of it,
// several times within the node monitor grace period.
func (c *Cluster) nodeLeaseSeconds() int {
	s := int(c.opts.NodeMonitorGracePeriod.Seconds()) / 2
	return max(s, 4)
}

func (c *Cluster) startNodes(ctx context.Context) error {
	b, err := stagesLeaving(stages, c.opts.JobsRunByTest)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.opts.Dir, "kwok-stages.yaml"), b, 0o600); err != nil {
		return fmt.Errorf("kwok: write stages: %w", err)
	}
	for i := range c.opts.Nodes {
		name := nodeName(i)
		if err := c.createNode(ctx, i); err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, name)
		if err := c.StartNode(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// podRunningStages are the Stages that start a scheduled Pod's containers
// (pod-ready) and end those of a Job's Pod (pod-complete): what a kubelet
// decides by running them.
var podRunningStages = []string{"pod-ready", "pod-complete"}

// jobNameLabel is the label the Job controller gives every Pod of a Job.
const jobNameLabel = "batch.kubernetes.io/job-name"

// stagesLeaving returns the Stages of all, with the Pods of the named Jobs
// excluded from podRunningStages: they stay as scheduled until the test
// sets their status.
func stagesLeaving(all []byte, jobs []string) ([]byte, error) {
	if len(jobs) == 0 {
		return all, nil
	}
	values := make([]any, len(jobs))
	for i, j := range jobs {
		values[i] = j
	}
	docs := strings.Split(string(all), "\n---\n")
	found := 0
	for i, doc := range docs {
		st := map[string]any{}
		if err := yaml.Unmarshal([]byte(doc), &st); err != nil {
			return nil, fmt.Errorf("kwok: decode stage %d: %w", i, err)
		}
		name, _, _ := unstructured.NestedString(st, "metadata", "name")
		if !slices.Contains(podRunningStages, name) {
			continue
		}
		exprs, _, err := unstructured.NestedSlice(st, "spec", "selector", "matchExpressions")
		if err != nil {
			return nil, fmt.Errorf("kwok: stage %s: %w", name, err)
		}
		exprs = append(exprs, map[string]any{
			"key":      `.metadata.labels["` + jobNameLabel + `"]`,
			"operator": "NotIn",
			"values":   values,
		})
		if err := unstructured.SetNestedSlice(st, exprs, "spec", "selector", "matchExpressions"); err != nil {
			return nil, fmt.Errorf("kwok: stage %s: %w", name, err)
		}
		b, err := yaml.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("kwok: encode stage %s: %w", name, err)
		}
		docs[i] = string(b)
		found++
	}
	if found != len(podRunningStages) {
		return nil, fmt.Errorf("kwok: found %d of the stages %v", found, podRunningStages)
	}
	return []byte(strings.Join(docs, "\n---\n")), nil
}

// createNode registers simulated node i, as a kubelet registers itself.
func (c *Cluster) createNode(ctx context.Context, i int) error {
	name := nodeName(i)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels: map[string]string{
				corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
				"type": "kwok",
			},
		},
		Spec:   corev1.NodeSpec{PodCIDR: podCIDR(i), PodCIDRs: []string{podCIDR(i)}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := c.Clientset.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("register node %s: %w", name, err)
	}
	return nil
}

// StartNode starts the kwok process of a node (again, after StopNode) and
// waits until the node is Ready.
func (c *Cluster) StartNode(ctx context.Context, name string) error {
	i := -1
	for j, n := range c.Nodes {
		if n == name {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("start node %q: no such node (have %v)", name, c.Nodes)
	}
	if p := c.nodes[name]; p != nil && p.running() {
		return fmt.Errorf("start node %s: already running", name)
	}
	p, err := startProcess(c.opts.Dir, "kwok-"+name, c.kwok,
		"--kubeconfig="+c.Kubeconfig,
		"--config="+filepath.Join(c.opts.Dir, "kwok-stages.yaml"),
		"--manage-single-node="+name,
		"--node-ip="+nodeIP(i),
		"--cidr="+podCIDR(i),
		"--node-lease-duration-seconds="+strconv.Itoa(c.nodeLeaseSeconds()),
	)
	if err != nil {
		return err
	}
	c.nodes[name] = p
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return p.poll(ctx, "making node "+name+" Ready", func() error {
		n, err := c.Node(ctx, name)
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready", name)
	})
}

// StopNode stops the kwok process of a node: its heartbeats stop, and the
// node-lifecycle controller sees it unreachable after the node monitor
// grace period. Its Pods stay as they are, as on a node cut off the network.
func (c *Cluster) StopNode(name string) error {
	p := c.nodes[name]
	if p == nil || !p.running() {
		return fmt.Errorf("stop node %q: not running", name)
	}
	p.stop()
	return nil
}

// MarkStopped annotates a Pod with StoppedAnnotation: if it is terminating,
// its node removes it at once, as a kubelet does when the containers exit
// before the grace period ends. A Pod that is already gone is not an error.
func (c *Cluster) MarkStopped(ctx context.Context, namespace, pod string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{StoppedAnnotation: "true"}}})
	if err != nil {
		return err
	}
	_, err = c.Clientset.CoreV1().Pods(namespace).Patch(ctx, pod, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark pod %s/%s stopped: %w", namespace, pod, err)
	}
	return nil
}
