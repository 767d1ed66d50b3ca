package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// fakeBinaries writes a stand-in binary per platform under a new directory.
func fakeBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range Platforms {
		path := BinaryPath(dir, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("binary for "+p.Architecture), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var testMeta = Meta{Version: "v1.2.3", Revision: "abc", Source: "https://example.test/src", Licenses: "Apache-2.0", Created: time.Unix(1700000000, 0).UTC()}

func TestBuildIsReproducible(t *testing.T) {
	dir := fakeBinaries(t)
	var digests []string
	for range 2 {
		out := filepath.Join(t.TempDir(), "image")
		var stdout bytes.Buffer
		err := run([]string{"build", "-binaries", dir, "-out", out, "-name", "registry.test/sw:v1.2.3",
			"-version", "v1.2.3", "-created", "1700000000"}, &stdout)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := builtIndex(out)
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), d.String()) {
			t.Errorf("build printed %q, not the digest %s", stdout.String(), d)
		}
		for _, p := range Platforms {
			if _, err := os.Stat(out + ".linux-" + p.Architecture + ".tar"); err != nil {
				t.Errorf("no docker archive for %s: %v", p.Architecture, err)
			}
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same binaries differ: %s and %s", digests[0], digests[1])
	}
}

func TestImageConfig(t *testing.T) {
	idx, err := BuildIndex(fakeBinaries(t), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(Platforms) {
		t.Fatalf("index has %d manifests, want %d", len(im.Manifests), len(Platforms))
	}
	for i, desc := range im.Manifests {
		if desc.Platform == nil || desc.Platform.Architecture != Platforms[i].Architecture {
			t.Errorf("manifest %d has platform %v, want %v", i, desc.Platform, Platforms[i])
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != Platforms[i].Architecture || cf.OS != "linux" {
			t.Errorf("config says %s/%s, want linux/%s", cf.OS, cf.Architecture, Platforms[i].Architecture)
		}
		if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/singleton-webhook" {
			t.Errorf("config runs %v as %q", cf.Config.Entrypoint, cf.Config.User)
		}
		if got := cf.Config.Labels["org.opencontainers.image.version"]; got != "v1.2.3" {
			t.Errorf("version label %q, want v1.2.3", got)
		}
		if !cf.Created.Time.Equal(testMeta.Created) {
			t.Errorf("created %v, want %v", cf.Created.Time, testMeta.Created)
		}
	}
}

func TestBadInput(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"a build without binaries names the missing file and how to build it": {
			args: []string{"build", "-binaries", t.TempDir(), "-out", filepath.Join(t.TempDir(), "x"), "-name", "r.test/x:v1", "-version", "v1"},
			want: "build it first",
		},
		"a build without its flags lists them": {
			args: []string{"build", "-out", "x"},
			want: "build needs -binaries, -out, -name and -version",
		},
		"a push without a layout says to run make image": {
			args: []string{"push", "-layout", filepath.Join(t.TempDir(), "none"), "r.test/x:v1"},
			want: "run make image first",
		},
		"an unknown command is named": {
			args: []string{"publish"},
			want: `unknown command "publish"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := run(tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestPushUnreachableRegistryFails(t *testing.T) {
	out := filepath.Join(t.TempDir(), "image")
	if err := run([]string{"build", "-binaries", fakeBinaries(t), "-out", out, "-name", "r.test/x:v1", "-version", "v1"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := layout.ImageIndexFromPath(out); err != nil {
		t.Fatal(err)
	}
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	err := run([]string{"push", "-layout", out, "127.0.0.1:1/singleton-webhook:v1"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "push 127.0.0.1:1/singleton-webhook:v1") {
		t.Errorf("got %v, want a push error naming the image", err)
	}
}

// TestSBOMListsTheModulesCompiledIn reads the build information of this
// test binary, which has some, as build does of the image's binary.
func TestSBOMListsTheModulesCompiledIn(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sbom.spdx.json")
	if err := WriteSBOM(path, self, testMeta); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc spdxDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || len(doc.Relationships) != len(doc.Packages) {
		t.Errorf("document %s with %d packages and %d relationships", doc.SPDXVersion, len(doc.Packages), len(doc.Relationships))
	}
	found := false
	for _, p := range doc.Packages {
		if p.Name == "github.com/google/go-containerregistry" {
			found = p.VersionInfo == "v0.22.1" && p.ExternalRefs[0].Locator == "pkg:golang/github.com/google/go-containerregistry@v0.22.1"
		}
	}
	if !found {
		t.Errorf("the SBOM lacks go-containerregistry v0.22.1 with its purl:\n%s", b)
	}
	if err := WriteSBOM(path, BinaryPath(fakeBinaries(t), Platforms[0]), testMeta); err == nil || !strings.Contains(err.Error(), "build information") {
		t.Errorf("a file that is no Go binary: got %v, want an error about its build information", err)
	}
}
