package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/singleton-webhook/singleton-webhook/patches"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

const mutateHelp = `Usage: singleton-webhook mutate -f FILE|- [flags]

Reads Kubernetes objects (YAML or JSON; several documents, kind: List) and
writes them to stdout as YAML, each apps/v1 Deployment mutated exactly as the
webhook would mutate its CREATE. Warnings go to stderr.

If any object would be denied, every denial is printed to stderr, nothing is
written to stdout and the exit status is 1: piping the output to
"kubectl apply -f -" never applies half of a set.

--fix (the default) writes the mutated objects. --check rewrites nothing: it
applies singleton.dev/enforcement: deny to every singleton, so a manifest
that is not a singleton as written is refused with the message the webhook
would give in deny mode (exit 1), and a clean run writes nothing to stdout.
Use it in CI on the manifests GitOps applies.

Flags:
`

const reviewHelp = `Usage: singleton-webhook review -f FILE|- [flags]

Reads an admission.k8s.io/v1 AdmissionReview and writes the AdmissionReview
the webhook server would answer (uid, allowed, patchType, patch, warnings,
status). A Scale request is answered without looking its parent up (there is
no cluster), with a warning. Input that is not an AdmissionReview: exit 1.

Flags:
`

// offlineFlags are the flags of mutate and review.
type offlineFlags struct {
	file   string
	check  bool
	policy policyFlags
}

// offlineConfig is the resolved configuration of mutate and review: the
// input, and the policy as serve would apply it.
type offlineConfig struct {
	file   string
	policy patches.Policy
}

// parseOffline parses and checks the flags of mutate or review into one
// configuration.
func parseOffline(name, help, version string, args []string, stderr io.Writer) (*offlineConfig, error) {
	f := &offlineFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.file, "f", "", `file to read; "-" reads stdin`)
	fix := true
	if name == "mutate" {
		fs.BoolVar(&fix, "fix", true, "write the mutated objects (the default)")
		fs.BoolVar(&f.check, "check", false, "rewrite nothing; refuse every singleton that is not one as written (deny mode), exit 1 if any")
	}
	f.policy.bind(fs, version)
	fs.Usage = func() {
		fmt.Fprint(stderr, help)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError("unexpected argument %q (use -f FILE)", fs.Arg(0))
	}
	if f.file == "" {
		return nil, usageError("-f FILE or -f - is required")
	}
	fixSet := false
	fs.Visit(func(fl *flag.Flag) { fixSet = fixSet || fl.Name == "fix" })
	switch {
	case f.check && fixSet && fix:
		return nil, usageError("--check and --fix exclude each other: --check only reports, --fix writes the mutated objects")
	case !f.check && !fix:
		return nil, usageError("--fix=false without --check does nothing: use --check to only report")
	}
	p, err := f.policy.policy()
	if err != nil {
		return nil, err
	}
	p.CheckOnly = f.check
	return &offlineConfig{file: f.file, policy: p}, nil
}

// startOffline parses the flags of mutate or review and opens the input.
func startOffline(name, help, version string, args []string, stdin io.Reader, stderr io.Writer) (*offlineConfig, io.ReadCloser, error) {
	f, err := parseOffline(name, help, version, args, stderr)
	if err != nil {
		return nil, nil, err
	}
	in, err := f.open(stdin)
	if err != nil {
		return nil, nil, err
	}
	return f, in, nil
}

func (f *offlineConfig) open(stdin io.Reader) (io.ReadCloser, error) {
	if f.file == "-" {
		return io.NopCloser(stdin), nil
	}
	r, err := os.Open(f.file)
	if err != nil {
		return nil, fmt.Errorf("open input: %w", err)
	}
	return r, nil
}

// Mutate runs `singleton-webhook mutate`: the webhook's mutation of the
// Deployments of a file, offline.
func Mutate(ctx context.Context, version string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f, in, err := startOffline("mutate", mutateHelp, version, args, stdin, stderr)
	if err != nil {
		return err
	}
	defer in.Close()
	res, err := webhook.Mutate(ctx, webhook.NewHandlers(f.policy, nil).Deployments, in)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "Warning:", w)
	}
	if len(res.Denials) > 0 {
		for _, d := range res.Denials {
			fmt.Fprintln(stderr, "Error: denied:", d)
		}
		return &ExitError{Code: 1, Err: ErrReported}
	}
	if f.policy.CheckOnly {
		fmt.Fprintln(stderr, "check: every singleton Deployment is a singleton as written")
		return nil
	}
	for i, o := range res.Objects {
		if i > 0 {
			fmt.Fprintln(stdout, "---")
		}
		if _, err := stdout.Write(o); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// Review runs `singleton-webhook review`: the webhook's answer to an
// AdmissionReview, offline.
func Review(ctx context.Context, version string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f, in, err := startOffline("review", reviewHelp, version, args, stdin, stderr)
	if err != nil {
		return err
	}
	defer in.Close()
	b, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("read input: %w", err)
	}
	out, err := webhook.Review(ctx, webhook.NewHandlers(f.policy, nil), b)
	if err != nil {
		return err
	}
	if _, err := stdout.Write(out); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
