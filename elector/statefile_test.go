package elector

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	f := newStateFile(dir)
	since := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	until := since.Add(10 * time.Second)
	st := Status{Leader: "app-0", Self: "app-0", IsLeader: true, Since: since, Epoch: 7 << 20, ValidUntil: &until}

	renewed := since.Add(time.Second)
	if err := f.write(st, renewed); err != nil {
		t.Fatalf("write: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, LeaderFileName)); err != nil || !fi.ModTime().Equal(renewed) {
		t.Errorf("leader file modification time %v (err %v), want the renewal %v", modTime(fi), err, renewed)
	}
	got, err := os.ReadFile(filepath.Join(dir, LeaderFileName))
	if err != nil {
		t.Fatalf("read leader file: %v", err)
	}
	want := `{"leader":"app-0","self":"app-0","isLeader":true,"since":"2030-01-02T03:04:05Z","epoch":7340032,"validUntil":"2030-01-02T03:04:15Z"}` + "\n"
	if string(got) != want {
		t.Errorf("leader file = %q, want %q", got, want)
	}
	if err := f.write(st, since); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != LeaderFileName {
		t.Errorf("state dir holds %v, want only %q (no temporary files left)", names(entries), LeaderFileName)
	}

	if err := f.remove(); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LeaderFileName)); !os.IsNotExist(err) {
		t.Errorf("leader file still there after remove: %v", err)
	}
	if err := f.remove(); err != nil {
		t.Errorf("removing a missing file: %v, want no error", err)
	}
}

func TestStateFileFailsInAMissingDirectory(t *testing.T) {
	f := newStateFile(filepath.Join(t.TempDir(), "missing"))
	if err := f.write(Status{Self: "app-0"}, time.Now()); err == nil {
		t.Error("write into a missing directory succeeded, want an error")
	}
}

func TestStateFileDisabled(t *testing.T) {
	f := newStateFile("")
	if err := f.write(Status{Self: "app-0"}, time.Now()); err != nil {
		t.Errorf("write without a directory: %v, want a no-op", err)
	}
	if err := f.remove(); err != nil {
		t.Errorf("remove without a directory: %v, want a no-op", err)
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func modTime(fi os.FileInfo) time.Time {
	if fi == nil {
		return time.Time{}
	}
	return fi.ModTime()
}

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		dir     string
		wantErr bool
	}{
		"an existing directory passes":        {dir, false},
		"no directory (file disabled) passes": {"", false},
		"a missing directory fails":           {filepath.Join(dir, "missing"), true},
		"a regular file fails":                {file, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := checkDir(tc.dir); (err != nil) != tc.wantErr {
				t.Errorf("checkDir(%q) = %v, want error %v", tc.dir, err, tc.wantErr)
			}
		})
	}
}
