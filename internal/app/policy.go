package app

import (
	"flag"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// policyFlags are the cluster-wide defaults an administrator sets once. serve,
// mutate and review take the same ones, so offline results match the cluster.
type policyFlags struct {
	defaultMode        string
	defaultEnforcement string
	elector            patches.ElectorOptions
	nativeSidecar      bool
	version            string
}

func (p *policyFlags) bind(fs *flag.FlagSet, version string) {
	p.version = version
	fs.StringVar(&p.defaultMode, "default-mode", string(patches.ModeReplicas),
		`mode for singleton Deployments without a singleton.dev/mode annotation: "replicas" or "election"`)
	fs.StringVar(&p.defaultEnforcement, "default-enforcement", string(patches.EnforcementMutate),
		`enforcement for singleton Deployments without a singleton.dev/enforcement annotation: "mutate" (rewrite and warn) or "deny" (refuse what is not a singleton as written; for GitOps)`)
	fs.StringVar(&p.elector.Image, "elector-image", patches.DefaultImage(version),
		"image of the leader-election sidecar injected in election mode; its entrypoint must be the singleton-webhook binary")
	fs.BoolVar(&p.nativeSidecar, "elector-native-sidecar", true,
		"inject the sidecar as a native sidecar (init container with restartPolicy Always, Kubernetes 1.29+); false: a plain container, for older clusters")
	fs.DurationVar(&p.elector.LeaseDuration, "default-lease-duration", patches.DefaultLeaseDuration,
		"election lease duration when a Deployment has no singleton.dev/lease-duration annotation (whole seconds)")
	fs.DurationVar(&p.elector.RenewDeadline, "default-renew-deadline", patches.DefaultRenewDeadline,
		"election renew deadline when a Deployment has no singleton.dev/renew-deadline annotation")
	fs.DurationVar(&p.elector.RetryPeriod, "default-retry-period", patches.DefaultRetryPeriod,
		"election retry period when a Deployment has no singleton.dev/retry-period annotation; lease duration > renew deadline > 1.2 × retry period")
}

// policy validates the flags and returns the policy they describe.
func (p *policyFlags) policy() (patches.Policy, error) {
	mode, err := patches.ParseMode(p.defaultMode, patches.ModeReplicas)
	if err != nil {
		return patches.Policy{}, usageError("--default-mode: %v", err)
	}
	enforcement, err := patches.ParseEnforcement(p.defaultEnforcement, patches.EnforcementMutate)
	if err != nil {
		return patches.Policy{}, usageError("--default-enforcement: %v", err)
	}
	if p.elector.Image == "" {
		return patches.Policy{}, usageError("--elector-image must not be empty")
	}
	e := p.elector
	e.Version = p.version
	e.PlainContainer = !p.nativeSidecar
	// Checked as given: a zero flag is an error, not the default.
	if err := patches.ValidateTimings(e.LeaseDuration, e.RenewDeadline, e.RetryPeriod); err != nil {
		return patches.Policy{}, usageError("--default-lease-duration, --default-renew-deadline, --default-retry-period: %v", err)
	}
	return patches.Policy{DefaultMode: mode, DefaultEnforcement: enforcement, Elector: e}, nil
}
