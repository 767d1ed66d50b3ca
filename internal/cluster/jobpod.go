package cluster

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ContainerRunner runs the one container of a Pod the test plays the
// kubelet for, and returns its exit code.
type ContainerRunner func(ctx context.Context, pod *corev1.Pod, c corev1.Container) int32

// JobPodRun is one Pod of a Job that RunJobPods ran.
type JobPodRun struct {
	Pod      string
	ExitCode int32
	Started  time.Time
	Took     time.Duration
}

// RunJobPods plays the kubelet for the Pods of a Job named in
// Options.JobsRunByTest, which the simulated nodes leave alone: each Pod,
// once scheduled, is set Running, run runs its container, and the Pod ends
// Succeeded (exit code 0) or Failed, so the Job controller completes the
// Job, fails it or retries as it would. It returns the runs once the Job
// is complete, failed or deleted, or when ctx ends (then with ctx's error).
// The Job may not exist yet when it is called.
func (c *Cluster) RunJobPods(ctx context.Context, namespace, job string, run ContainerRunner) ([]JobPodRun, error) {
	var runs []JobPodRun
	done := map[string]bool{}
	seen := false
	for {
		j, err := c.Clientset.BatchV1().Jobs(namespace).Get(ctx, job, metav1.GetOptions{})
		switch {
		case err == nil:
			seen = true
			if jobFinished(j) {
				return runs, nil
			}
		case seen:
			return runs, nil // deleted (a hook deleted once it succeeded)
		}
		pods, err := c.Clientset.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: jobNameLabel + "=" + job})
		if err == nil {
			for i := range pods.Items {
				p := &pods.Items[i]
				if done[p.Name] || p.Spec.NodeName == "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodPending {
					continue
				}
				done[p.Name] = true
				r, err := c.runJobPod(ctx, p, run)
				if err != nil {
					return runs, err
				}
				runs = append(runs, r)
			}
		}
		select {
		case <-ctx.Done():
			return runs, fmt.Errorf("run the Pods of Job %s/%s: %w", namespace, job, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runJobPod sets p Running, runs its container and sets its outcome.
func (c *Cluster) runJobPod(ctx context.Context, p *corev1.Pod, run ContainerRunner) (JobPodRun, error) {
	if len(p.Spec.Containers) != 1 || len(p.Spec.InitContainers) != 0 {
		return JobPodRun{}, fmt.Errorf("pod %s/%s: %d containers and %d init containers; a test runs exactly one container",
			p.Namespace, p.Name, len(p.Spec.Containers), len(p.Spec.InitContainers))
	}
	ctr := p.Spec.Containers[0]
	start := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = &start
	p.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: start},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: start},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: start},
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ctr.Name, Image: ctr.Image, Ready: true, Started: ptr.To(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}}}}
	running, err := c.Clientset.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	if err != nil {
		return JobPodRun{}, fmt.Errorf("set pod %s/%s Running: %w", p.Namespace, p.Name, err)
	}
	p = running
	code := run(ctx, p, ctr)
	end := metav1.Now()
	phase, reason := corev1.PodSucceeded, "Completed"
	if code != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	p.Status.Phase = phase
	for i := range p.Status.Conditions {
		if t := p.Status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			p.Status.Conditions[i].Status, p.Status.Conditions[i].LastTransitionTime = corev1.ConditionFalse, end
			p.Status.Conditions[i].Reason = "PodCompleted"
		}
	}
	p.Status.ContainerStatuses[0].Ready, p.Status.ContainerStatuses[0].Started = false, ptr.To(false)
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, StartedAt: start, FinishedAt: end}}
	if _, err := c.Clientset.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		return JobPodRun{}, fmt.Errorf("set pod %s %s: %w", p.Name, phase, err)
	}
	return JobPodRun{Pod: p.Name, ExitCode: code, Started: start.Time, Took: end.Sub(start.Time)}, nil
}

// jobFinished reports whether a Job is Complete or Failed.
func jobFinished(j *batchv1.Job) bool {
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
