//go:build integration

package install

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// imageVersion is the version the test has `make image` stamp.
const imageVersion = "v0.0.0-imagetest"

// TestImage builds the image with `make image`, as a release would, and
// opens it with go-containerregistry, no daemon: an index of linux/amd64
// and linux/arm64, each running the binary as 65532:65532 with no shell in
// it, labelled with its source, version and licence; and the binary taken
// out of the layer of this machine's platform runs and prints the version
// the Makefile stamped, and is byte for byte the binary of `make build`; an
// SPDX SBOM lists the modules compiled in.
func TestImage(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image")
	ref := "registry.example.test/singleton-webhook:" + imageVersion
	cmd := exec.Command("make", "--no-print-directory", "image", "VERSION="+imageVersion, "IMG="+ref, "IMAGE_OUT="+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, b)
	}
	idx := openBuiltIndex(t, out, ref)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, desc := range im.Manifests {
		p := desc.Platform.OS + "/" + desc.Platform.Architecture
		platforms = append(platforms, p)
		t.Run(p, func(t *testing.T) {
			img, err := idx.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImageConfig(t, img, desc.Platform)
			bin := checkImageFiles(t, img)
			if desc.Platform.Architecture == runtime.GOARCH {
				checkBinaryRuns(t, bin)
				checkSameAsMakeBuild(t, root, bin)
			}
			if _, err := os.Stat(out + ".linux-" + desc.Platform.Architecture + ".tar"); err != nil {
				t.Errorf("no archive to load into kind or docker: %v", err)
			}
		})
	}
	sbom, err := os.ReadFile(out + ".spdx.json")
	if err != nil {
		t.Errorf("no SBOM: %v", err)
	}
	for _, want := range []string{`"SPDX-2.3"`, `"name": "github.com/singleton-webhook/singleton-webhook"`, `"versionInfo": "` + imageVersion + `"`, "pkg:golang/k8s.io/client-go@"} {
		if !strings.Contains(string(sbom), want) {
			t.Errorf("the SBOM lacks %s", want)
		}
	}
	if strings.Join(platforms, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("the image is built for %v, want linux/amd64 and linux/arm64", platforms)
	}
}

// openBuiltIndex opens the one index of the layout, checking the name it is
// tagged with for containerd.
func openBuiltIndex(t *testing.T, dir, ref string) v1.ImageIndex {
	t.Helper()
	outer, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("open the image layout: %v", err)
	}
	im, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("the layout holds %d entries, want 1", len(im.Manifests))
	}
	if got := im.Manifests[0].Annotations["io.containerd.image.name"]; got != ref {
		t.Errorf("the layout names the image %q, want %q", got, ref)
	}
	idx, err := outer.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func checkImageConfig(t *testing.T, img v1.Image, p *v1.Platform) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("config is for %s/%s, the index says %s/%s", cf.OS, cf.Architecture, p.OS, p.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != "/singleton-webhook" || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q, cmd %q; want /singleton-webhook alone", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	labels := cf.Config.Labels
	if labels["org.opencontainers.image.version"] != imageVersion {
		t.Errorf("version label %q, want %q", labels["org.opencontainers.image.version"], imageVersion)
	}
	for _, l := range []string{"source", "licenses", "revision", "created"} {
		if labels["org.opencontainers.image."+l] == "" {
			t.Errorf("no org.opencontainers.image.%s label", l)
		}
	}
}

// checkImageFiles walks the image's filesystem: the entrypoint is an
// executable file owned by root, and there is no shell or other program. It
// returns the binary.
func checkImageFiles(t *testing.T, img v1.Image) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var bin []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := path.Clean("/" + h.Name)
		switch {
		case name == "/singleton-webhook":
			if h.Mode&0o111 == 0 || h.Uid != 0 {
				t.Errorf("the entrypoint has mode %o, owner %d; want executable, owned by root", h.Mode, h.Uid)
			}
			if bin, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		case h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0:
			t.Errorf("the image holds another program: %s", name)
		case h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink:
			t.Errorf("the image holds a link: %s -> %s", name, h.Linkname)
		}
		if base := path.Base(name); base == "sh" || base == "bash" || base == "busybox" {
			t.Errorf("the image holds a shell: %s", name)
		}
	}
	if bin == nil {
		t.Fatal("the image has no /singleton-webhook")
	}
	return bin
}

func checkBinaryRuns(t *testing.T, bin []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "singleton-webhook")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("the image's binary: version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), imageVersion) {
		t.Errorf("the image's binary prints %q, want the version make stamped, %s", out, imageVersion)
	}
}

// checkSameAsMakeBuild checks that the image's binary is, byte for byte,
// the one `make build` builds for the same version: the binary the tests
// run is the binary the image ships.
func checkSameAsMakeBuild(t *testing.T, root string, bin []byte) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build", "VERSION="+imageVersion, "BIN="+dir)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, b)
	}
	built, err := os.ReadFile(filepath.Join(dir, "singleton-webhook"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built, bin) {
		t.Errorf("the image's binary (%d bytes) differs from make build's (%d bytes)", len(bin), len(built))
	}
}
