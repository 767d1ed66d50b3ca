package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entrypoint is where the binary lives in the image, and its entrypoint.
const Entrypoint = "/singleton-webhook"

// User is the numeric user and group the image runs as: distroless's
// "nonroot", which Pod Security "restricted" (runAsNonRoot) accepts without
// a name lookup.
const User = "65532:65532"

// Platforms are the platforms the image is built for, as GOOS/GOARCH.
var Platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

// Meta is what the image says about itself: the OCI annotations and labels.
type Meta struct {
	// Version is the version the binary was stamped with (make VERSION).
	Version string
	// Revision is the source commit.
	Revision string
	// Source is the repository URL.
	Source string
	// Licenses is an SPDX licence expression.
	Licenses string
	// Created is the build time written everywhere a time goes (the config,
	// the file times in the layer): the commit time, so a rebuild of the same
	// commit gives the same digest.
	Created time.Time
}

// labels returns the OCI image labels (image-spec annotations.md).
func (m Meta) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "singleton-webhook",
		"org.opencontainers.image.description": "Makes Kubernetes Deployments singletons: webhook and election sidecar",
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.licenses":    m.Licenses,
		"org.opencontainers.image.created":     m.Created.UTC().Format(time.RFC3339),
	}
}

// BinaryPath is where the build expects the binary of a platform under the
// binaries directory: DIR/linux_amd64/singleton-webhook.
func BinaryPath(dir string, p v1.Platform) string {
	return filepath.Join(dir, p.OS+"_"+p.Architecture, filepath.Base(Entrypoint))
}

// BuildIndex assembles the multi-platform image from the binaries under dir
// (see BinaryPath): per platform, one layer on an empty base holding the
// binary and the passwd/group entries of its user, no shell, nothing else.
func BuildIndex(dir string, m Meta) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range Platforms {
		img, err := buildImage(BinaryPath(dir, p), p, m)
		if err != nil {
			return nil, fmt.Errorf("image for %s/%s: %w", p.OS, p.Architecture, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

func buildImage(binary string, p v1.Platform, m Meta) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no binary at %s: build it first (make image builds both platforms)", binary)
	}
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	layerTar, err := rootfs(bin, m.Created)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	cf.Created = v1.Time{Time: m.Created}
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{Entrypoint},
		WorkingDir: "/",
		Labels:     m.labels(),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// rootfs returns the layer as an uncompressed tar: the binary (0755, owned
// by root, so the process cannot rewrite it), /etc/passwd and /etc/group
// naming user 65532 "nonroot" as distroless does, and a world-writable /tmp.
// Every time in it is created, so the bytes depend only on the inputs.
func rootfs(bin []byte, created time.Time) ([]byte, error) {
	const passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	const group = "root:x:0:\nnonroot:x:65532:\n"
	entries := []struct {
		name string
		mode int64
		body []byte
		dir  bool
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true},
		{name: Entrypoint[1:], mode: 0o755, body: bin},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			ModTime: created,
			Format:  tar.FormatPAX,
		}
		if e.name == "home/nonroot/" {
			h.Uid, h.Gid = 65532, 65532
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar: %w", err)
	}
	return buf.Bytes(), nil
}
