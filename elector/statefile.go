package elector

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateFile is the leader file on the volume shared with the application.
// It is written atomically, so a reader never sees a partial file: the
// content goes to a temporary file in the same directory, which is then
// renamed over the final name.
type stateFile struct {
	// path is the leader file; empty disables it.
	path string
}

func newStateFile(dir string) stateFile {
	if dir == "" {
		return stateFile{}
	}
	return stateFile{path: filepath.Join(dir, LeaderFileName)}
}

// write creates the leader file holding the identity and the time it
// became leader.
func (f stateFile) write(identity string, since time.Time) error {
	if f.path == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+LeaderFileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("write leader file: %w", err)
	}
	content := fmt.Sprintf("%s\n%s\n", identity, since.UTC().Format(time.RFC3339Nano))
	_, werr := tmp.WriteString(content)
	if err := errors.Join(werr, tmp.Chmod(0o644), tmp.Close()); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write leader file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write leader file: %w", err)
	}
	return nil
}

// remove deletes the leader file; a missing file is not an error.
func (f stateFile) remove() error {
	if f.path == "" {
		return nil
	}
	if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove leader file: %w", err)
	}
	return nil
}
