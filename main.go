// Command singleton-webhook makes Kubernetes Deployments singletons: one
// binary, one image, several subcommands.
//
//	singleton-webhook serve     the HTTPS mutating admission webhook
//	singleton-webhook elect     the leader-election sidecar (election mode)
//	singleton-webhook mutate    offline: mutate manifests as the webhook would
//	singleton-webhook review    offline: answer an AdmissionReview as the webhook would
//	singleton-webhook status    every singleton: mode, active Pod, who waits for what
//	singleton-webhook check     what is wrong with the install and the singletons
//	singleton-webhook release   let go of the singletons before an uninstall or an opt-out
//	singleton-webhook version   print the version
//
// Installed as kubectl-singleton (a symlink, or Krew), the binary is the
// kubectl plugin `kubectl singleton status|check|version`.
//
// This file holds the dispatch; each subcommand's flags and wiring live in
// package internal/app.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `singleton-webhook makes Kubernetes Deployments singletons.

Usage:
  singleton-webhook serve   [flags]      run the HTTPS mutating admission webhook
  singleton-webhook elect   [flags]      run the leader-election sidecar
  singleton-webhook mutate  -f FILE|-    mutate manifests offline, as the webhook would
  singleton-webhook review  -f FILE|-    answer an AdmissionReview offline, as the webhook would
  singleton-webhook status  [NAME]       every singleton: mode, active Pod, who waits for what
  singleton-webhook check                what is wrong with the install and the singletons
  singleton-webhook release -n NS | -A   let go of the singletons before an uninstall or an opt-out
  singleton-webhook version              print the version

Run "singleton-webhook COMMAND -h" for the flags of a command.
`

func init() {
	// No subcommand serves profiles: with the rate at 0 the runtime records
	// no more allocation samples, whose stacks a long-running serve or
	// elector would otherwise keep and spread over a 1.4 MB hash table.
	// Set before any subcommand runs; the packages' own initialization has
	// taken its few samples by then.
	runtime.MemProfileRate = 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	dispatch, name := run, "singleton-webhook"
	if app.IsPluginName(os.Args[0]) {
		dispatch, name = runPlugin, "kubectl singleton"
	}
	err := dispatch(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	code := 1
	var ec *app.ExitError
	if errors.As(err, &ec) {
		code = ec.Code
	}
	if !errors.Is(err, app.ErrReported) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &app.ExitError{Code: 2, Err: errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return app.Serve(ctx, version, rest, stderr)
	case "elect":
		return app.Elect(ctx, rest, stderr)
	case "mutate":
		return app.Mutate(ctx, version, rest, stdin, stdout, stderr)
	case "review":
		return app.Review(ctx, version, rest, stdin, stdout, stderr)
	case "status":
		return app.Status(ctx, rest, stdout, stderr, nil)
	case "check":
		return app.Check(ctx, rest, stdout, stderr, nil)
	case "release":
		return app.Release(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &app.ExitError{Code: 2, Err: fmt.Errorf("unknown command %q", cmd)}
}

const pluginUsage = `kubectl singleton: the state of singleton-webhook's singletons and install.

Usage:
  kubectl singleton status [NAME] [flags]   every singleton: mode, active Pod, who waits for what
  kubectl singleton check [flags]           what is wrong with the install and the singletons
  kubectl singleton version                 print the version

Run "kubectl singleton COMMAND -h" for the flags of a command.
`

// runPlugin dispatches the commands of the kubectl plugin: the read-only
// ones; serving and mutating stay with singleton-webhook.
func runPlugin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "status", "check", "version", "--version":
			return run(ctx, args, stdin, stdout, stderr)
		case "help", "-h", "--help":
			fmt.Fprint(stdout, pluginUsage)
			return nil
		}
	}
	fmt.Fprint(stderr, pluginUsage)
	if len(args) == 0 {
		return &app.ExitError{Code: 2, Err: errors.New("no command given")}
	}
	return &app.ExitError{Code: 2, Err: fmt.Errorf("unknown command %q", args[0])}
}
