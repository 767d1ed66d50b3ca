package elector

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateFile is the leader file on the volume shared with the application:
// the JSON of GET /leader, validUntil included. It is written atomically,
// so a reader never sees a partial file: the content goes to a temporary
// file in the same directory, which is then renamed over the final name.
// It is rewritten whenever a renewal moves validUntil, so a reader that
// cannot rely on the sidecar being alive (a killed or stopped sidecar
// cannot remove the file) treats a file whose validUntil has passed as
// absent.
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

// write replaces the leader file with st as JSON, the body of GET
// /leader; its modification time is renewed, the first write of the record
// last renewed.
func (f stateFile) write(st Status, renewed time.Time) error {
	if f.path == "" {
		return nil
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("write leader file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+LeaderFileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("write leader file: %w", err)
	}
	_, werr := tmp.Write(append(body, '\n'))
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
