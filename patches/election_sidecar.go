package patches

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
)

// Resources of the sidecar. A client-go leader elector holds one Lease, one
// Pod patch and a tiny HTTP server: it idles near 0 CPU and 20-25 MiB of
// Go heap and runtime. The requests reserve that; the memory limit leaves
// room for a burst (reconnects, TLS handshakes) while bounding a leak.
// There is no CPU limit on purpose: CFS throttling delays renewals, and a
// leader that misses its renew deadline steps down for nothing.
const (
	electorCPURequest    = "10m"
	electorMemoryRequest = "32Mi"
	electorMemoryLimit   = "64Mi"
	// stateVolumeSize bounds the shared emptyDir: it holds one small file.
	stateVolumeSize = "1Mi"
	// electorUID is the "nonroot" user of distroless images.
	electorUID = 65532
)

// inject writes the sidecar, its volume, the app's mounts and environment,
// and the marker into a pod template. It rebuilds whatever it owns, so it
// converges from any earlier injection, native or plain.
func inject(t *corev1.PodTemplateSpec, cfg electionConfig, o ElectorOptions) {
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations[AnnotationInjected] = o.Version
	s := &t.Spec
	c := electorContainer(cfg, o)
	if o.PlainContainer {
		s.InitContainers = without(s.InitContainers, containerName, ElectorContainerName)
		s.Containers = put(s.Containers, c, containerName)
	} else {
		s.Containers = without(s.Containers, containerName, ElectorContainerName)
		s.InitContainers = put(s.InitContainers, c, containerName)
	}
	s.Volumes = put(s.Volumes, stateVolume(), volumeName)
	for i := range s.Containers {
		app := &s.Containers[i]
		if app.Name == ElectorContainerName {
			continue
		}
		app.VolumeMounts = put(app.VolumeMounts, corev1.VolumeMount{
			Name: StateVolumeName, MountPath: StateDir, ReadOnly: true}, mountName)
		app.Env = put(app.Env, corev1.EnvVar{Name: EnvLeaderURL, Value: sidecar.LeaderURL(ElectorPort)}, envName)
		app.Env = put(app.Env, corev1.EnvVar{Name: EnvLeaderFile, Value: LeaderFile}, envName)
	}
}

// electorContainer is the sidecar, with every field the API server would
// default set explicitly, so the stored object equals it and a later pass
// (reinvocation, drift controller) finds nothing to change.
func electorContainer(cfg electionConfig, o ElectorOptions) corev1.Container {
	c := corev1.Container{
		Name:            ElectorContainerName,
		Image:           o.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args: []string{
			"elect",
			"--lease-name=" + cfg.leaseName,
			"--lease-duration=" + cfg.leaseDuration.String(),
			"--renew-deadline=" + cfg.renewDeadline.String(),
			"--retry-period=" + cfg.retryPeriod.String(),
			"--listen-address=:" + strconv.Itoa(ElectorPort),
			"--state-dir=" + StateDir,
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		},
		Ports: []corev1.ContainerPort{{Name: "elector", ContainerPort: ElectorPort, Protocol: corev1.ProtocolTCP}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(electorCPURequest),
				corev1.ResourceMemory: resource.MustParse(electorMemoryRequest),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(electorMemoryLimit)},
		},
		// Both probes ask /healthz, which answers 200 on standbys too: a
		// standby is healthy and ready, only the app decides what it serves.
		LivenessProbe:            healthProbe(),
		ReadinessProbe:           healthProbe(),
		VolumeMounts:             []corev1.VolumeMount{{Name: StateVolumeName, MountPath: StateDir}},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		SecurityContext:          restricted(),
	}
	if !o.PlainContainer {
		always := corev1.ContainerRestartPolicyAlways
		c.RestartPolicy = &always
	}
	return c
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
}

func healthProbe() *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/healthz", Port: intstr.FromInt32(ElectorPort), Scheme: corev1.URISchemeHTTP}},
		TimeoutSeconds:   1,
		PeriodSeconds:    10,
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
}

// restricted is a security context that passes Pod Security "restricted".
func restricted() *corev1.SecurityContext {
	yes, no, uid := true, false, int64(electorUID)
	return &corev1.SecurityContext{
		RunAsNonRoot:             &yes,
		RunAsUser:                &uid,
		RunAsGroup:               &uid,
		AllowPrivilegeEscalation: &no,
		ReadOnlyRootFilesystem:   &yes,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// stateVolume is the shared emptyDir, in memory: the leader file must
// vanish with the Pod, and tmpfs makes its writes cheap.
func stateVolume() corev1.Volume {
	size := resource.MustParse(stateVolumeSize)
	return corev1.Volume{Name: StateVolumeName, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size}}}
}

// put replaces the element named like x in place, dropping later
// duplicates, or appends x. A native sidecar appended after the user's init
// containers starts once they are done, and after their own sidecars (a mesh
// proxy it may need to reach the API server).
func put[T any](xs []T, x T, name func(T) string) []T {
	for i := range xs {
		if name(xs[i]) == name(x) {
			xs[i] = x
			return append(xs[:i+1], without(xs[i+1:], name, name(x))...)
		}
	}
	return append(xs, x)
}

// without returns xs minus the elements with one of the names; nil when
// nothing is left, the form a decoded object has.
func without[T any](xs []T, name func(T) string, names ...string) []T {
	var out []T
	for _, x := range xs {
		if !slices.Contains(names, name(x)) {
			out = append(out, x)
		}
	}
	return out
}

func containerName(c corev1.Container) string { return c.Name }
func volumeName(v corev1.Volume) string       { return v.Name }
func mountName(m corev1.VolumeMount) string   { return m.Name }
func envName(e corev1.EnvVar) string          { return e.Name }
