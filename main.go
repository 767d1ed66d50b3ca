// Command singleton-webhook makes Kubernetes Deployments singletons: one
// binary, one image, several subcommands.
//
//	singleton-webhook serve     the HTTPS mutating admission webhook
//	singleton-webhook elect     the leader-election sidecar (election mode)
//	singleton-webhook mutate    offline: mutate manifests as the webhook would
//	singleton-webhook review    offline: answer an AdmissionReview as the webhook would
//	singleton-webhook release   let go of the singletons before an uninstall or an opt-out
//	singleton-webhook version   print the version
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
  singleton-webhook release -n NS | -A   let go of the singletons before an uninstall or an opt-out
  singleton-webhook version              print the version

Run "singleton-webhook COMMAND -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
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
		fmt.Fprintln(os.Stderr, "singleton-webhook:", err)
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
