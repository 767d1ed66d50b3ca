package main

import (
	"context"
	"errors"
	"io"
)

func runElect(context.Context, []string, io.Writer) error {
	return errors.New("elect: not built yet")
}
