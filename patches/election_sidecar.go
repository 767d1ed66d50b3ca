package patches

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

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
	// tokenExpirySeconds is the lifetime of the sidecar's projected token,
	// the one the API server gives automatic tokens; the kubelet renews it
	// at 80%, and client-go rereads the file.
	tokenExpirySeconds = 3607
)

// inject writes the sidecar, its volume, the app's mounts and environment,
// and the marker into a pod template. It rebuilds whatever it owns, so it
// converges from any earlier injection, native or plain.
func inject(t *corev1.PodTemplateSpec, cfg electionConfig, o ElectorOptions) {
	injectContainer(t, cfg, o, o.Version, electorContainer(cfg, o, &t.Spec))
}

// injectContainer is inject with the sidecar container c, marked as
// injected by version: the container built for this version, or the one an
// earlier version injected, kept (see keptInjection).
func injectContainer(t *corev1.PodTemplateSpec, cfg electionConfig, o ElectorOptions, version string, c corev1.Container) {
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Annotations[AnnotationInjected] = version
	s := &t.Spec
	if o.PlainContainer {
		s.InitContainers = without(s.InitContainers, containerName, ElectorContainerName)
		s.Containers = put(s.Containers, c, containerName)
	} else {
		s.Containers = without(s.Containers, containerName, ElectorContainerName)
		s.InitContainers = put(s.InitContainers, c, containerName)
	}
	s.Volumes = put(s.Volumes, stateVolume(), volumeName)
	if needsToken(s) {
		s.Volumes = put(s.Volumes, tokenVolume(), volumeName)
	} else {
		s.Volumes = without(s.Volumes, volumeName, sidecar.TokenVolumeName)
	}
	for i := range s.Containers {
		app := &s.Containers[i]
		if app.Name == ElectorContainerName {
			continue
		}
		app.VolumeMounts = put(app.VolumeMounts, corev1.VolumeMount{
			Name: StateVolumeName, MountPath: StateDir, ReadOnly: true}, mountName)
		app.Env = put(app.Env, corev1.EnvVar{Name: EnvLeaderURL, Value: sidecar.LeaderURL(cfg.port)}, envName)
		app.Env = put(app.Env, corev1.EnvVar{Name: EnvLeaderFile, Value: LeaderFile}, envName)
	}
}

// sidecarConfig is the contract's view of what the annotations asked.
func (cfg electionConfig) sidecarConfig() sidecar.Config {
	c := sidecar.Defaults(func(string) (string, bool) { return "", false })
	c.LeaseName = cfg.leaseName
	c.Timings = sidecar.Timings{LeaseDuration: cfg.leaseDuration, RenewDeadline: cfg.renewDeadline, RetryPeriod: cfg.retryPeriod}
	c.Port = cfg.port
	return c
}

// electorContainer is the sidecar, with every field the API server would
// default set explicitly, so the stored object equals it and a later pass
// (reinvocation, drift controller) finds nothing to change.
//
// It has no probes: kubelet probes reach the Pod IP, and the sidecar
// serves on 127.0.0.1 only. It exits when it cannot go on, and a sidecar
// that hangs cannot mislead: GET /leader checks the deadline on every
// request, and the leader file carries it. It declares a port only with
// hostNetwork, where the port is the node's: declared, it is a host port,
// and the scheduler never puts two Pods that declare it on one node.
func electorContainer(cfg electionConfig, o ElectorOptions, pod *corev1.PodSpec) corev1.Container {
	c := corev1.Container{
		Name:            ElectorContainerName,
		Image:           o.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            cfg.sidecarConfig().Args(),
		Env: []corev1.EnvVar{
			fieldEnv(sidecar.EnvPodName, "metadata.name"),
			fieldEnv(sidecar.EnvPodNamespace, "metadata.namespace"),
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(electorCPURequest),
				corev1.ResourceMemory: resource.MustParse(electorMemoryRequest),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(electorMemoryLimit)},
		},
		VolumeMounts:             []corev1.VolumeMount{{Name: StateVolumeName, MountPath: StateDir}},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		SecurityContext:          restricted(),
	}
	if pod.HostNetwork {
		port := int32(cfg.port)
		c.Ports = []corev1.ContainerPort{{Name: "elector", ContainerPort: port, HostPort: port, Protocol: corev1.ProtocolTCP}}
	}
	if needsToken(pod) {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{
			Name: sidecar.TokenVolumeName, MountPath: sidecar.TokenMountPath, ReadOnly: true})
	}
	if !o.PlainContainer {
		always := corev1.ContainerRestartPolicyAlways
		c.RestartPolicy = &always
	}
	return c
}

// needsToken reports whether the Pod opts out of the automatic
// ServiceAccount token, so the sidecar needs a token of its own.
func needsToken(s *corev1.PodSpec) bool {
	return s.AutomountServiceAccountToken != nil && !*s.AutomountServiceAccountToken
}

// tokenVolume is what the API server would mount for an automatic token (a
// bound, expiring ServiceAccount token, the cluster's CA, the namespace),
// with its defaults written out; only the sidecar mounts it.
func tokenVolume() corev1.Volume {
	mode, expiry := int32(0o644), int64(tokenExpirySeconds)
	return corev1.Volume{Name: sidecar.TokenVolumeName, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: &mode, Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		}}}}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
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
