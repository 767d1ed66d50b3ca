package main

import (
	"flag"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// policyFlags are the cluster-wide defaults an administrator sets once. serve,
// mutate and review take the same ones, so offline results match the cluster.
type policyFlags struct {
	defaultMode string
}

func (p *policyFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&p.defaultMode, "default-mode", string(patches.ModeReplicas),
		`mode for singleton Deployments without a singleton.dev/mode annotation: "replicas" or "election"`)
}

// policy validates the flags and returns the policy they describe.
func (p *policyFlags) policy() (patches.Policy, error) {
	mode, err := patches.ParseMode(p.defaultMode, patches.ModeReplicas)
	if err != nil {
		return patches.Policy{}, usageError("--default-mode: %v", err)
	}
	return patches.Policy{DefaultMode: mode}, nil
}
