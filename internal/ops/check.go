package ops

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/kubernetes"
)

// CheckAPIVersion and CheckKind identify the JSON and YAML form of
// `check`, documented in docs/status-check.md.
const (
	CheckAPIVersion = "check.singleton.dev/v1"
	CheckKind       = "CheckResult"
)

// Severities of findings: an error breaks the guarantee or the install;
// a warning is a risk to look at. Both make check exit non-zero.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// CheckResult is `check -o json|yaml`.
type CheckResult struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// OK is true when there is no finding and everything was read.
	OK bool `json:"ok"`
	// Partial and Errors: what could not be read, as in StatusList.
	Partial bool     `json:"partial"`
	Errors  []string `json:"errors"`
	// Notes say what was not checked and why (e.g. the served certificate
	// of a Service that is not reachable from where check runs).
	Notes    []string  `json:"notes"`
	Findings []Finding `json:"findings"`
}

// Finding is one thing wrong.
type Finding struct {
	// Code is stable (codes.go); Name is its readable form.
	Code     string `json:"code"`
	Name     string `json:"name"`
	Severity string `json:"severity"`
	// Object is what is wrong: "deployment/NAMESPACE/NAME",
	// "mutatingwebhookconfiguration/NAME", ...
	Object string `json:"object"`
	// Cause says in one line what is wrong.
	Cause string `json:"cause"`
	// Fix is the command that fixes it, or what to run to see more.
	Fix string `json:"fix"`
}

// Install names the parts of the install check looks at.
type Install struct {
	// Namespace is the webhook's namespace.
	Namespace string
	// WebhookConfiguration is the MutatingWebhookConfiguration's name.
	WebhookConfiguration string
	// Deployment is the webhook's Deployment (in Namespace); its image tag
	// is the webhook's version, its --leader-elect flag says whether the
	// controllers' Lease must exist.
	Deployment string
	// LeaderLease is the controllers' leader-election Lease (in Namespace).
	LeaderLease string
	// ProbeNamespace is where the dry-run probe Deployment is created.
	ProbeNamespace string
	// CertMinRemaining: a served certificate ending sooner, or within the
	// last third of its lifetime if that is shorter, is a finding.
	CertMinRemaining time.Duration
}

// Check reads the cluster in scope and the install, and returns every
// finding. Like Read, it fails only when nothing could be read.
func Check(ctx context.Context, cs kubernetes.Interface, scope Scope, in Install) (*CheckResult, error) {
	return checkAt(ctx, cs, scope, in, time.Now())
}

// checkAt is Check with the time the cluster's state is judged at given;
// the served certificate is always verified at the current time.
func checkAt(ctx context.Context, cs kubernetes.Interface, scope Scope, in Install, now time.Time) (*CheckResult, error) {
	snap, err := readAt(ctx, cs, scope, now)
	if err != nil {
		return nil, err
	}
	r := &CheckResult{APIVersion: CheckAPIVersion, Kind: CheckKind, Errors: []string{}, Notes: []string{}, Findings: []Finding{}}
	for _, e := range snap.Unread {
		r.Errors = append(r.Errors, e.Error())
	}
	ic := &installCheck{cs: cs, in: in, now: snap.Now, result: r}
	ic.run(ctx)
	sc := &singletonCheck{snap: snap, install: in, webhookVersion: ic.webhookVersion, result: r}
	sc.excluded = ic.excludedNamespaces(ctx, snap)
	sc.run()
	sort.SliceStable(r.Findings, func(i, j int) bool {
		if r.Findings[i].Code != r.Findings[j].Code {
			return r.Findings[i].Code < r.Findings[j].Code
		}
		return r.Findings[i].Object < r.Findings[j].Object
	})
	r.Partial = len(r.Errors) > 0
	r.OK = len(r.Findings) == 0 && !r.Partial
	return r, nil
}

// add records a finding.
func (r *CheckResult) add(code, severity, object, fix, cause string, args ...any) {
	r.Findings = append(r.Findings, Finding{Code: code, Name: codeNames[code], Severity: severity, Object: object,
		Cause: fmt.Sprintf(cause, args...), Fix: fix})
}

// unread records something check could not read.
func (r *CheckResult) unread(what string, err error) {
	r.Errors = append(r.Errors, fmt.Sprintf("cannot read %s: %s", what, shortErr(err)))
}

// WriteCheck writes r in format: the table lists one finding per line,
// its fix on the next.
func WriteCheck(w io.Writer, r *CheckResult, format string) error {
	switch format {
	case OutputJSON, OutputYAML:
		return writeObject(w, r, format)
	case OutputTable, OutputWide:
	default:
		return fmt.Errorf("unknown output format %q: want wide, json or yaml", format)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Code, strings.ToUpper(f.Severity), f.Object, f.Cause)
		fmt.Fprintf(tw, "\t\t\tfix: %s\n", f.Fix)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	switch {
	case r.OK:
		fmt.Fprintln(w, "OK: the install works and every singleton is sound")
	case len(r.Findings) > 0:
		fmt.Fprintf(w, "%d finding(s); docs/status-check.md explains each code\n", len(r.Findings))
	}
	return nil
}
