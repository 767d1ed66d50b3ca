package patches

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
)

// Names of what ModeElection injects: the contract between the webhook, the
// `singleton-webhook elect` sidecar and the application, owned by package
// sidecar and repeated here for the callers of patches.
const (
	// ElectorContainerName names the injected sidecar container.
	ElectorContainerName = sidecar.ContainerName
	// StateVolumeName names the emptyDir shared by the sidecar and the app.
	StateVolumeName = sidecar.VolumeName
	// StateDir is where StateVolumeName is mounted in every container.
	StateDir = sidecar.StateDir
	// LeaderFile exists only in the leader's StateDir.
	LeaderFile = sidecar.LeaderFile
	// ElectorPort serves /leader and /healthz on the Pod's 127.0.0.1.
	ElectorPort = sidecar.DefaultPort
	// EnvLeaderURL is the app's environment variable holding the URL of
	// GET /leader.
	EnvLeaderURL = sidecar.EnvLeaderURL
	// EnvLeaderFile is the app's environment variable holding LeaderFile.
	EnvLeaderFile = sidecar.EnvLeaderFile
	// RoleLabel is the Pod label the webhook's controller sets to
	// RoleLeader or "standby"; a leader Service selects RoleLeader.
	RoleLabel = sidecar.RoleLabel
	// RoleLeader is the RoleLabel value of the leading Pod.
	RoleLeader = sidecar.RoleLeader
)

// Defaults of ElectorOptions, the values core Kubernetes components use.
const (
	// DefaultImageRepository is the repository of the product's image; the
	// sidecar runs the webhook's own image, tagged with its version.
	DefaultImageRepository = "ghcr.io/singleton-webhook/singleton-webhook"
	// DefaultVersion stands for a build without a version stamp.
	DefaultVersion = "dev"
	// DefaultLeaseDuration is sidecar.DefaultLeaseDuration.
	DefaultLeaseDuration = sidecar.DefaultLeaseDuration
	// DefaultRenewDeadline is sidecar.DefaultRenewDeadline.
	DefaultRenewDeadline = sidecar.DefaultRenewDeadline
	// DefaultRetryPeriod is sidecar.DefaultRetryPeriod.
	DefaultRetryPeriod = sidecar.DefaultRetryPeriod
)

// ElectorOptions configures the sidecar injected in ModeElection. The zero
// value is valid: every field has a documented default.
type ElectorOptions struct {
	// Image is the sidecar's image. Empty: DefaultImage(Version). The image's
	// entrypoint must be the singleton-webhook binary (the sidecar gets only
	// arguments, starting with "elect").
	Image string
	// Version is written to the pod template's AnnotationInjected. Empty:
	// DefaultVersion.
	Version string
	// PlainContainer injects the sidecar as an ordinary container, for
	// clusters older than 1.29 without native sidecars. Default (false): an
	// init container with restartPolicy Always, which starts before and
	// stops after the app containers, so the app never runs without it.
	PlainContainer bool
	// LeaseDuration, RenewDeadline and RetryPeriod apply when a Deployment
	// has no tuning annotation. Zero: DefaultLeaseDuration,
	// DefaultRenewDeadline, DefaultRetryPeriod. See ValidateTimings.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// DefaultImage is the sidecar image of a webhook version: the webhook's own.
func DefaultImage(version string) string {
	if version == "" {
		version = DefaultVersion
	}
	return DefaultImageRepository + ":" + version
}

// withDefaults fills the zero fields with their documented defaults.
func (o ElectorOptions) withDefaults() ElectorOptions {
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Image == "" {
		o.Image = DefaultImage(o.Version)
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	return o
}

// applyElection implements ModeElection: it keeps the replicas and injects
// the elector sidecar, its volume and the app's environment.
//
// Decisions:
//   - everything is checked before anything changes, so an error leaves d
//     untouched; the new pod template is built on a copy.
//   - the containers, volume and environment variables of the contract are
//     owned by the webhook once the template carries AnnotationInjected: they
//     are rebuilt on every pass, so user edits (tuning annotations, a removed
//     variable, a changed flag) converge; without the marker, an existing
//     name is a clash and is refused.
//   - warnings are given only when the template changes, so a second pass
//     warns nothing; the one-replica warning rides along with the change.
//   - original-replicas and original-strategy left by replicas mode are kept
//     as they are: they record what the user last asked for, and switching
//     back to replicas mode reads them again. spec.replicas is not restored
//     from them; the one-replica warning points at them.
//   - a sidecar another version injected is kept as it is while it runs the
//     election the annotations ask for, unless renew is set: an upgrade
//     rolls nothing (see skew.go).
func applyElection(d *appsv1.Deployment, o ElectorOptions, renew bool) ([]string, error) {
	o = o.withDefaults()
	cfg, err := parseElection(d, o)
	if err != nil {
		return nil, err
	}
	from, injected := InjectedVersion(&d.Spec.Template)
	if err := checkClashes(&d.Spec.Template.Spec, injected, cfg.port); err != nil {
		return nil, err
	}
	if kept, ok := keptInjection(&d.Spec.Template, cfg, o); ok && !renew && equality.Semantic.DeepEqual(&d.Spec.Template, kept) {
		return nil, nil
	}
	t := d.Spec.Template.DeepCopy()
	inject(t, cfg, o)
	if equality.Semantic.DeepEqual(&d.Spec.Template, t) {
		return nil, nil
	}
	d.Spec.Template = *t
	kind := "a native sidecar"
	if o.PlainContainer {
		kind = "a plain container"
	}
	var warnings []string
	if injected {
		w := fmt.Sprintf(
			"singleton: the leader-election sidecar %s was brought back in line with the policy and the singleton.dev/ annotations (the pod template had drifted from it)",
			ElectorContainerName)
		if from != o.Version {
			w += fmt.Sprintf("; renewed from version %s to %s, in the rollout this change causes anyway", from, o.Version)
		}
		warnings = append(warnings, w)
	} else {
		w := fmt.Sprintf(
			"singleton: injected the leader-election sidecar %s as %s (image %s, lease %q), the volume %s, and %s and %s in every app container",
			ElectorContainerName, kind, o.Image, cfg.leaseName, StateVolumeName, EnvLeaderURL, EnvLeaderFile)
		if d.Spec.Template.Spec.HostNetwork {
			w += fmt.Sprintf("; with hostNetwork the sidecar listens on the node's 127.0.0.1:%d, declared as a host port, so two replicas never share a node", cfg.port)
		}
		if needsToken(&d.Spec.Template.Spec) {
			w += fmt.Sprintf("; the Pod opts out of its ServiceAccount token, so the sidecar alone mounts the projected token volume %s", sidecar.TokenVolumeName)
		}
		warnings = append(warnings, w)
	}
	if w := oneReplicaWarning(d); w != "" {
		warnings = append(warnings, w)
	}
	return warnings, nil
}

// oneReplicaWarning warns when a single replica leaves no warm standby.
func oneReplicaWarning(d *appsv1.Deployment) string {
	if r := d.Spec.Replicas; r != nil && *r != 1 {
		return ""
	}
	w := "singleton: spec.replicas is 1: there is no warm standby, so a failover waits for a new pod to start; set spec.replicas to 2 or more"
	if orig, err := strconv.Atoi(d.Annotations[AnnotationOriginalReplicas]); err == nil && orig > 1 {
		w += fmt.Sprintf(" (replicas mode recorded your request of %d in %s)", orig, AnnotationOriginalReplicas)
	}
	return w
}

// stripElection removes an earlier injection from a Deployment that is no
// longer in ModeElection, so its pods stop running a sidecar whose RBAC the
// controller withdraws. Only a template carrying AnnotationInjected is
// touched.
func stripElection(d *appsv1.Deployment) []string {
	t := &d.Spec.Template
	if _, ok := t.Annotations[AnnotationInjected]; !ok {
		return nil
	}
	delete(t.Annotations, AnnotationInjected)
	if len(t.Annotations) == 0 {
		t.Annotations = nil
	}
	s := &t.Spec
	s.InitContainers = without(s.InitContainers, containerName, ElectorContainerName)
	s.Containers = without(s.Containers, containerName, ElectorContainerName)
	s.Volumes = without(s.Volumes, volumeName, StateVolumeName, sidecar.TokenVolumeName)
	for i := range s.Containers {
		c := &s.Containers[i]
		c.VolumeMounts = without(c.VolumeMounts, mountName, StateVolumeName)
		c.Env = without(c.Env, envName, EnvLeaderURL, EnvLeaderFile)
	}
	return []string{fmt.Sprintf(
		"singleton: removed the leader-election sidecar %s, the volume %s and %s/%s (the Deployment is no longer in election mode)",
		ElectorContainerName, StateVolumeName, EnvLeaderURL, EnvLeaderFile)}
}

// checkClashes refuses a pod template that already uses a name or place of
// the contract for something the webhook did not inject.
func checkClashes(s *corev1.PodSpec, injected bool, port int) error {
	const notOurs = "that the webhook did not inject (the pod template has no " + AnnotationInjected + " annotation)"
	if !injected {
		for _, list := range []struct {
			field string
			cs    []corev1.Container
		}{{"initContainers", s.InitContainers}, {"containers", s.Containers}} {
			for _, c := range list.cs {
				if c.Name == ElectorContainerName {
					return clashError("spec.template.spec.%s has a container named %q %s; the name is reserved for the leader-election sidecar: rename or remove that container",
						list.field, c.Name, notOurs)
				}
			}
		}
		for _, v := range s.Volumes {
			if v.Name == StateVolumeName {
				return clashError("spec.template.spec.volumes has a volume named %q %s; the name is reserved for the leader-election state: rename or remove that volume",
					v.Name, notOurs)
			}
		}
	}
	for _, c := range s.Containers {
		if c.Name == ElectorContainerName {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath == StateDir && m.Name != StateVolumeName {
				return clashError("container %q mounts volume %q at %s, where the leader-election state is mounted: mount it elsewhere",
					c.Name, m.Name, StateDir)
			}
		}
		for _, p := range c.Ports {
			if int(p.ContainerPort) != port && int(p.HostPort) != port {
				continue
			}
			if s.HostNetwork {
				return clashError("container %q declares port %d, where the leader-election sidecar listens on the node's 127.0.0.1 (with hostNetwork the port is derived from the Lease name): use another port, or another %s",
					c.Name, port, AnnotationLeaseName)
			}
			return clashError("container %q declares port %d, where the leader-election sidecar listens on 127.0.0.1: use another port",
				c.Name, port)
		}
	}
	return nil
}

// clashError explains a clash and how to fix it.
func clashError(format string, a ...any) error {
	return fmt.Errorf("election mode: %s, or use %s: %s", fmt.Sprintf(format, a...), AnnotationMode, ModeReplicas)
}
