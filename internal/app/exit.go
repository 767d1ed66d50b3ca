package app

import (
	"errors"
	"flag"
	"fmt"
)

// ExitError is a command's failure with the exit status the process should
// end with: 1 for a refusal (mutate on a denied object), 2 for bad usage.
type ExitError struct {
	// Code is the exit status.
	Code int
	// Err is the failure; ErrReported when the command already printed it.
	Err error
}

// Error returns the message of the failure.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the failure.
func (e *ExitError) Unwrap() error { return e.Err }

// ErrReported marks a failure whose details the command already printed:
// the caller only sets the exit status.
var ErrReported = errors.New("failed")

// usageError is a bad command line: exit status 2.
func usageError(format string, a ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, a...)}
}

// parseFlags parses args; -h and --help print the usage and succeed, as
// `singleton-webhook help` does, and a bad flag is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return &ExitError{Code: 0, Err: ErrReported}
	}
	if err != nil {
		return &ExitError{Code: 2, Err: ErrReported}
	}
	return nil
}
