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
// renamed over the final name. Its modification time is the start of the
// last successful renewal, so a reader that cannot rely on the sidecar being
// alive (a killed sidecar cannot remove the file) can treat a file older
// than the renew deadline as stale.
type stateFile struct {
	// path is the leader file; empty disables it.
	path string
}

// checkDir fails unless dir is empty (no file) or an existing directory.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %s is not a directory", dir)
	}
	return nil
}

func newStateFile(dir string) stateFile {
	if dir == "" {
		return stateFile{}
	}
	return stateFile{path: filepath.Join(dir, LeaderFileName)}
}

// write creates the leader file holding the identity and the time it
// became leader, with renewed as its modification time.
func (f stateFile) write(identity string, since, renewed time.Time) error {
	if f.path == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+LeaderFileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("write leader file: %w", err)
	}
	content := fmt.Sprintf("%s\n%s\n", identity, since.UTC().Format(time.RFC3339Nano))
	_, werr := tmp.WriteString(content)
	err = errors.Join(werr, tmp.Chmod(0o644), tmp.Close(), os.Chtimes(tmp.Name(), renewed, renewed))
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write leader file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write leader file: %w", err)
	}
	return nil
}

// touch sets the modification time of an existing leader file to the last
// successful renewal; it never creates the file.
func (f stateFile) touch(renewed time.Time) error {
	if f.path == "" {
		return nil
	}
	if err := os.Chtimes(f.path, renewed, renewed); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("touch leader file: %w", err)
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
