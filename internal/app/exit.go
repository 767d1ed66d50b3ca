package app

import (
	"errors"
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
