package app

import (
	"io"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/elector"
	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
	"github.com/singleton-webhook/singleton-webhook/patches"
)

// TestInjectedArgumentsMeanWhatTheInjectionMeant is the round trip of the
// sidecar contract: the webhook injects, elect's own parser reads the
// container's arguments and environment back, and the result is what the
// annotations asked for.
func TestInjectedArgumentsMeanWhatTheInjectionMeant(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		hostNetwork bool
		want        elector.Config
	}{
		"the defaults": {
			want: elector.Config{LeaseName: "worker", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second,
				RetryPeriod: 2 * time.Second, ListenAddress: "127.0.0.1:8910"},
		},
		"tuning annotations at the tightest accepted timings": {
			annotations: map[string]string{patches.AnnotationLeaseName: "work-lock", patches.AnnotationLeaseDuration: "2s",
				patches.AnnotationRenewDeadline: "1710ms", patches.AnnotationRetryPeriod: "590ms"},
			want: elector.Config{LeaseName: "work-lock", LeaseDuration: 2 * time.Second, RenewDeadline: 1710 * time.Millisecond,
				RetryPeriod: 590 * time.Millisecond, ListenAddress: "127.0.0.1:8910"},
		},
		"hostNetwork moves the port": {
			hostNetwork: true,
			want: elector.Config{LeaseName: "worker", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second,
				RetryPeriod: 2 * time.Second, ListenAddress: "127.0.0.1:" + strconv.Itoa(patches.HostNetworkPort("worker"))},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := electionDeployment(tc.annotations)
			d.Spec.Template.Spec.HostNetwork = tc.hostNetwork
			if _, err := patches.Apply(d, patches.Policy{}); err != nil {
				t.Fatalf("apply: %v", err)
			}
			c := electorOf(t, d)
			// The downward API as the kubelet would resolve it.
			for _, e := range c.Env {
				switch e.ValueFrom.FieldRef.FieldPath {
				case "metadata.name":
					t.Setenv(e.Name, "worker-7d9f-abcde")
				case "metadata.namespace":
					t.Setenv(e.Name, "jobs")
				}
			}
			if c.Args[0] != sidecar.Command {
				t.Fatalf("args start with %q, want the %q command", c.Args[0], sidecar.Command)
			}
			f, err := parseElect(c.Args[1:], io.Discard)
			if err != nil {
				t.Fatalf("elect refuses the injected arguments %q: %v", c.Args, err)
			}
			want := tc.want
			want.LeaseNamespace, want.Identity = "jobs", "worker-7d9f-abcde"
			want.StateDir, want.MetricsAddress, want.WatchLease = stateMount(t, c), sidecar.MetricsDisabled, true
			if f.cfg != want {
				t.Errorf("elect parsed\n %+v\nwant\n %+v", f.cfg, want)
			}
			app := d.Spec.Template.Spec.Containers[0]
			wantEnv := map[string]string{
				sidecar.EnvLeaderURL:  "http://" + f.cfg.ListenAddress + "/leader",
				sidecar.EnvLeaderFile: filepath.Join(f.cfg.StateDir, sidecar.LeaderFileName),
			}
			for _, e := range app.Env {
				if w, ok := wantEnv[e.Name]; ok && e.Value != w {
					t.Errorf("app env %s=%s, want %s (where elect serves)", e.Name, e.Value, w)
				}
				delete(wantEnv, e.Name)
			}
			if len(wantEnv) > 0 {
				t.Errorf("app env lacks %v", wantEnv)
			}
		})
	}
}

// TestElectRefusesAListenerBeyondLoopback checks elect's message for a
// listen address other Pods could reach.
func TestElectRefusesAListenerBeyondLoopback(t *testing.T) {
	t.Setenv("POD_NAME", "p")
	t.Setenv("POD_NAMESPACE", "ns")
	_, err := parseElect([]string{"--lease-name=l", "--listen-address=:8910"}, io.Discard)
	want := `elect: --listen-address ":8910" must be on 127.0.0.1 (such as 127.0.0.1:8910): GET /leader is for the Pod's own containers only; serve metrics to others with --metrics-bind-address`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func electorOf(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == sidecar.ContainerName {
			return c
		}
	}
	t.Fatalf("no %s container injected", sidecar.ContainerName)
	return corev1.Container{}
}

// stateMount is where the sidecar mounts the state volume.
func stateMount(t *testing.T, c corev1.Container) string {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.Name == sidecar.VolumeName {
			return m.MountPath
		}
	}
	t.Fatalf("the sidecar does not mount %s", sidecar.VolumeName)
	return ""
}

func electionDeployment(annotations map[string]string) *appsv1.Deployment {
	a := map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election"}
	for k, v := range annotations {
		a[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "jobs", Annotations: a},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "worker"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "worker"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "worker:1"}}},
			},
		},
	}
}
