package patches

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
)

// LeaderServiceSuffix makes the name of a Deployment's leader Service.
const LeaderServiceSuffix = "-leader"

// electionConfig is what the annotations and the policy ask of the sidecar.
type electionConfig struct {
	leaseName     string
	port          int // of GET /leader on 127.0.0.1
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
}

// parseElection reads and validates the election annotations of d.
func parseElection(d *appsv1.Deployment, o ElectorOptions) (electionConfig, error) {
	cfg := electionConfig{leaseName: d.Name}
	if v, ok := d.Annotations[AnnotationLeaseName]; ok {
		cfg.leaseName = v
	}
	if cfg.leaseName == "" {
		return cfg, &AnnotationError{Key: AnnotationLeaseName, Value: "",
			Reason: "must name the Lease: the Deployment has no metadata.name to default to"}
	}
	if errs := validation.IsDNS1123Subdomain(cfg.leaseName); len(errs) > 0 {
		return cfg, &AnnotationError{Key: AnnotationLeaseName, Value: cfg.leaseName,
			Reason: "is not a valid Lease name: " + strings.Join(errs, "; ")}
	}
	if err := checkLeaderService(d); err != nil {
		return cfg, err
	}
	lease, err := annotationTiming(d, AnnotationLeaseDuration, "lease duration", o.LeaseDuration)
	if err != nil {
		return cfg, err
	}
	renew, err := annotationTiming(d, AnnotationRenewDeadline, "renew deadline", o.RenewDeadline)
	if err != nil {
		return cfg, err
	}
	retry, err := annotationTiming(d, AnnotationRetryPeriod, "retry period", o.RetryPeriod)
	if err != nil {
		return cfg, err
	}
	if err := checkTimings(lease, renew, retry); err != nil {
		return cfg, err
	}
	cfg.leaseDuration, cfg.renewDeadline, cfg.retryPeriod = lease.value, renew.value, retry.value
	cfg.port = ElectorPort
	if d.Spec.Template.Spec.HostNetwork {
		cfg.port = HostNetworkPort(cfg.leaseName)
	}
	return cfg, nil
}

// Ports of the sidecar in Pods with hostNetwork: true.
const (
	// HostNetworkPortBase is the first port HostNetworkPort returns.
	HostNetworkPortBase = 18910
	// HostNetworkPorts is how many ports HostNetworkPort spreads over.
	HostNetworkPorts = 1000
)

// HostNetworkPort is the sidecar's port in a Pod with hostNetwork: true,
// whose 127.0.0.1 is the node's: derived from the Lease name, so the
// sidecars of different Deployments on one node rarely ask for the same
// port, in 18910-19909, above the usual ports of node agents and below the
// NodePort and ephemeral ranges. The sidecar declares it as a host port,
// so the scheduler never places two Pods that use it on one node: two
// replicas of a Deployment never share a node, and a rare collision with
// another Deployment only keeps their Pods apart.
func HostNetworkPort(leaseName string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(leaseName))
	return HostNetworkPortBase + int(h.Sum32()%HostNetworkPorts)
}

// LeaderServiceWanted reports whether a Deployment's annotations ask for a
// leader Service. Only "true" does; the webhook refuses values other than
// "true" and "false".
func LeaderServiceWanted(annotations map[string]string) bool {
	return annotations[AnnotationLeaderService] == "true"
}

// checkLeaderService validates AnnotationLeaderService, and that the
// Service it asks for can be named after the Deployment.
func checkLeaderService(d *appsv1.Deployment) error {
	v, ok := d.Annotations[AnnotationLeaderService]
	if !ok || v == "false" {
		return nil
	}
	if v != "true" {
		return &AnnotationError{Key: AnnotationLeaderService, Value: v,
			Reason: `is not accepted; use "true" for a Service that selects only the leader, or "false"`}
	}
	if d.Name == "" {
		return nil
	}
	name := d.Name + LeaderServiceSuffix
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return &AnnotationError{Key: AnnotationLeaderService, Value: v,
			Reason: fmt.Sprintf("cannot be honoured: the Service would be named %q, which is not a valid Service name: %s",
				name, strings.Join(errs, "; "))}
	}
	return nil
}

// timingSource says where a timing's value came from, for the messages.
type timingSource int

const (
	fromValue      timingSource = iota // a plain value: flags, options
	fromAnnotation                     // the Deployment's annotation
	fromPolicy                         // the policy default, no annotation
)

// timing is one election timing and where it came from.
type timing struct {
	key    string // annotation key
	what   string // "lease duration"
	raw    string // the annotation's value, as written
	value  time.Duration
	source timingSource
}

// annotationTiming reads one duration annotation; def applies when absent.
func annotationTiming(d *appsv1.Deployment, key, what string, def time.Duration) (timing, error) {
	raw, ok := d.Annotations[key]
	if !ok {
		return timing{key: key, what: what, value: def, source: fromPolicy}, nil
	}
	v, err := time.ParseDuration(raw)
	if err != nil {
		return timing{}, &AnnotationError{Key: key, Value: raw,
			Reason: `is not a duration; write a Go duration such as "15s" or "1m30s"`}
	}
	return timing{key: key, what: what, raw: raw, value: v, source: fromAnnotation}, nil
}

// fault is the error blaming t.
func (t timing) fault(reason string) error {
	if t.source == fromAnnotation {
		return &AnnotationError{Key: t.key, Value: t.raw, Reason: reason}
	}
	return fmt.Errorf("%s %s %s", t.what, t.value, reason)
}

// ValidateTimings checks the election timings with the rule of
// sidecar.Timings, which the sidecar enforces too.
func ValidateTimings(leaseDuration, renewDeadline, retryPeriod time.Duration) error {
	return checkTimings(
		timing{what: "lease duration", value: leaseDuration},
		timing{what: "renew deadline", value: renewDeadline},
		timing{what: "retry period", value: retryPeriod})
}

// checkTimings applies the rule of sidecar.Timings. When a relation fails,
// it blames the side the user wrote: a policy default is never at fault
// when an annotation is.
func checkTimings(lease, renew, retry timing) error {
	err := sidecar.Timings{LeaseDuration: lease.value, RenewDeadline: renew.value, RetryPeriod: retry.value}.Validate()
	var te *sidecar.TimingError
	if !errors.As(err, &te) {
		return err
	}
	byField := map[sidecar.Field]timing{
		sidecar.FieldLeaseDuration: lease, sidecar.FieldRenewDeadline: renew, sidecar.FieldRetryPeriod: retry}
	at, reason := byField[te.Field], te.Reason
	if te.Other != "" {
		other := byField[te.Other]
		if at.source == fromPolicy && other.source != fromPolicy {
			at, reason, other = other, te.OtherReason, at
		}
		if at.source == fromAnnotation && other.source == fromPolicy {
			reason += fmt.Sprintf("; %s is the default %s, set %s to change it", other.what, other.value, other.key)
		}
	}
	return at.fault(reason)
}
