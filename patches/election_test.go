package patches_test

// Election-mode tests beyond the golden cases (testdata/election-*.yaml, run
// by TestGolden): the exact denial messages of the tuning annotations, and
// the options' validation. Pod Security: election_podsecurity_test.go.

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// electionDeployment is a minimal election-mode Deployment with extra
// annotations.
func electionDeployment(annotations map[string]string) *appsv1.Deployment {
	a := map[string]string{patches.AnnotationSingleton: "true", patches.AnnotationMode: "election"}
	for k, v := range annotations {
		a[k] = v
	}
	yes, no := true, false
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "jobs", Annotations: a},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "worker"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "worker"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "worker", Image: "registry.k8s.io/pause:3.10",
					SecurityContext: &corev1.SecurityContext{
						RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no,
						Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
				}}},
			},
		},
	}
}

// TestElectionAnnotationDenials checks the exact refusal of each bad tuning
// annotation, and that a refusal leaves the Deployment unchanged.
func TestElectionAnnotationDenials(t *testing.T) {
	const (
		lease   = patches.AnnotationLeaseDuration
		renew   = patches.AnnotationRenewDeadline
		retry   = patches.AnnotationRetryPeriod
		name    = patches.AnnotationLeaseName
		service = patches.AnnotationLeaderService
	)
	tests := map[string]struct {
		annotations map[string]string
		deployment  string // metadata.name; "worker" when empty
		want        string
	}{
		"a lease duration that is not a duration": {
			annotations: map[string]string{lease: "15"},
			want:        `annotation singleton.dev/lease-duration: "15" is not a duration; write a Go duration such as "15s" or "1m30s"`,
		},
		"a retry period that is not a duration": {
			annotations: map[string]string{retry: "two seconds"},
			want:        `annotation singleton.dev/retry-period: "two seconds" is not a duration; write a Go duration such as "15s" or "1m30s"`,
		},
		"a zero renew deadline": {
			annotations: map[string]string{renew: "0s"},
			want:        `annotation singleton.dev/renew-deadline: "0s" must be greater than zero`,
		},
		"a negative retry period": {
			annotations: map[string]string{retry: "-2s"},
			want:        `annotation singleton.dev/retry-period: "-2s" must be greater than zero`,
		},
		"a lease duration in fractions of a second": {
			annotations: map[string]string{lease: "15500ms"},
			want:        `annotation singleton.dev/lease-duration: "15500ms" must be a whole number of seconds (the Lease stores seconds)`,
		},
		"a lease duration equal to the written renew deadline": {
			annotations: map[string]string{lease: "10s", renew: "10s"},
			want:        `annotation singleton.dev/renew-deadline: "10s" must be at most lease duration 10s − 450ms = 9.55s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)`,
		},
		"a lease duration below the default renew deadline": {
			annotations: map[string]string{lease: "5s"},
			want:        `annotation singleton.dev/lease-duration: "5s" must be at least renew deadline 10s + 350ms = 10.35s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals); renew deadline is the default 10s, set singleton.dev/renew-deadline to change it`,
		},
		"a renew deadline too close to a two-second lease": {
			annotations: map[string]string{lease: "2s", renew: "1800ms", retry: "300ms"},
			want:        `annotation singleton.dev/renew-deadline: "1800ms" must be at most lease duration 2s − 290ms = 1.71s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)`,
		},
		"a renew deadline above the default lease duration": {
			annotations: map[string]string{renew: "20s"},
			want:        `annotation singleton.dev/renew-deadline: "20s" must be at most lease duration 15s − 550ms = 14.45s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals); lease duration is the default 15s, set singleton.dev/lease-duration to change it`,
		},
		"a renew deadline within a second and the jitter of the written retry period": {
			annotations: map[string]string{renew: "3400ms", retry: "2s"},
			want:        `annotation singleton.dev/renew-deadline: "3400ms" must be greater than 1s + 1.2 × retry period 2s = 3.4s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second)`,
		},
		"a renew deadline within a second and the jitter of the default retry period": {
			annotations: map[string]string{renew: "2s"},
			want:        `annotation singleton.dev/renew-deadline: "2s" must be greater than 1s + 1.2 × retry period 2s = 3.4s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second); retry period is the default 2s, set singleton.dev/retry-period to change it`,
		},
		"a retry period too long for the default renew deadline": {
			annotations: map[string]string{retry: "8s"},
			want:        `annotation singleton.dev/retry-period: "8s" is too long: 1s + 1.2 × 8s = 10.6s must be less than renew deadline 10s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second); renew deadline is the default 10s, set singleton.dev/renew-deadline to change it`,
		},
		"a lease name that is not a DNS subdomain": {
			annotations: map[string]string{name: "My_Lease"},
			want:        `annotation singleton.dev/lease-name: "My_Lease" is not a valid Lease name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
		},
		"an empty lease name": {
			annotations: map[string]string{name: ""},
			want:        `annotation singleton.dev/lease-name: "" must name the Lease: the Deployment has no metadata.name to default to`,
		},
		"a leader-service value other than true or false": {
			annotations: map[string]string{service: "yes"},
			want:        `annotation singleton.dev/leader-service: "yes" is not accepted; use "true" for a Service that selects only the leader, or "false"`,
		},
		"a leader Service whose name would not be a Service name": {
			annotations: map[string]string{service: "true"},
			deployment:  "worker.v2",
			want:        `annotation singleton.dev/leader-service: "true" cannot be honoured: the Service would be named "worker.v2-leader", which is not a valid Service name: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := electionDeployment(tc.annotations)
			if tc.deployment != "" {
				d.Name = tc.deployment
			}
			before := d.DeepCopy()
			_, err := patches.Apply(d, patches.Policy{})
			if err == nil {
				t.Fatalf("Apply accepted %v", tc.annotations)
			}
			if err.Error() != tc.want {
				t.Errorf("message:\n got %s\nwant %s", err, tc.want)
			}
			if !equality.Semantic.DeepEqual(before, d) {
				t.Error("a refused Apply changed the Deployment")
			}
		})
	}
}

// TestElectionTimingsAccepted checks values right next to the limits pass
// and reach the sidecar's flags.
func TestElectionTimingsAccepted(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		wantArgs    []string
	}{
		"the defaults": {
			wantArgs: []string{"--lease-duration=15s", "--renew-deadline=10s", "--retry-period=2s"},
		},
		"a renew deadline just above 1s + 1.2 × the retry period": {
			annotations: map[string]string{patches.AnnotationRenewDeadline: "3401ms"},
			wantArgs:    []string{"--lease-duration=15s", "--renew-deadline=3.401s", "--retry-period=2s"},
		},
		"a renew deadline at the margin of a lease in minutes": {
			annotations: map[string]string{patches.AnnotationLeaseDuration: "1m", patches.AnnotationRenewDeadline: "58550ms"},
			wantArgs:    []string{"--lease-duration=1m0s", "--renew-deadline=58.55s", "--retry-period=2s"},
		},
		"the tightest accepted timings": {
			annotations: map[string]string{patches.AnnotationLeaseDuration: "2s", patches.AnnotationRenewDeadline: "1710ms",
				patches.AnnotationRetryPeriod: "590ms"},
			wantArgs: []string{"--lease-duration=2s", "--renew-deadline=1.71s", "--retry-period=590ms"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := electionDeployment(tc.annotations)
			if _, err := patches.Apply(d, patches.Policy{}); err != nil {
				t.Fatalf("Apply refused: %v", err)
			}
			args := strings.Join(d.Spec.Template.Spec.InitContainers[0].Args, " ")
			for _, a := range tc.wantArgs {
				if !strings.Contains(args, a) {
					t.Errorf("sidecar args %q lack %s", args, a)
				}
			}
		})
	}
}

// TestValidateTimings checks the rule the policy flags are validated with.
func TestValidateTimings(t *testing.T) {
	s := time.Second
	tests := map[string]struct {
		lease, renew, retry time.Duration
		want                string // empty: valid
	}{
		"the defaults":                      {15 * s, 10 * s, 2 * s, ""},
		"a zero retry period":               {15 * s, 10 * s, 0, "retry period 0s must be greater than zero"},
		"a lease equal to the renew":        {10 * s, 10 * s, 2 * s, "renew deadline 10s must be at most lease duration 10s − 450ms = 9.55s (2% of the lease duration for clocks running at different rates, plus 250ms for the sidecar to drop its signals)"},
		"a renew within the retry's jitter": {15 * s, 3 * s, 2 * s, "renew deadline 3s must be greater than 1s + 1.2 × retry period 2s = 3.4s (the Lease record shows renewals to the second: the leader must renew within its renew deadline less a second)"},
		"a lease in fractions of a second":  {1500 * time.Millisecond, s, 100 * time.Millisecond, "lease duration 1.5s must be a whole number of seconds (the Lease stores seconds)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := patches.ValidateTimings(tc.lease, tc.renew, tc.retry)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// TestElectionPolicyOptions checks the policy's options reach the sidecar:
// image, version marker and default timings.
func TestElectionPolicyOptions(t *testing.T) {
	d := electionDeployment(nil)
	p := patches.Policy{Elector: patches.ElectorOptions{
		Image: "registry.example/elector:1.2.3", Version: "v1.2.3",
		LeaseDuration: 30 * time.Second, RenewDeadline: 20 * time.Second, RetryPeriod: 5 * time.Second,
	}}
	if _, err := patches.Apply(d, p); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got := d.Spec.Template.Annotations[patches.AnnotationInjected]; got != "v1.2.3" {
		t.Errorf("marker %q, want v1.2.3", got)
	}
	c := d.Spec.Template.Spec.InitContainers[0]
	if c.Image != "registry.example/elector:1.2.3" {
		t.Errorf("image %q", c.Image)
	}
	args := strings.Join(c.Args, " ")
	for _, a := range []string{"--lease-name=worker", "--lease-duration=30s", "--renew-deadline=20s", "--retry-period=5s"} {
		if !strings.Contains(args, a) {
			t.Errorf("sidecar args %q lack %s", args, a)
		}
	}
	if got := patches.DefaultImage(""); got != "ghcr.io/singleton-webhook/singleton-webhook:dev" {
		t.Errorf("DefaultImage of no version: %q", got)
	}
}
