// Command image builds and pushes the singleton-webhook image without a
// container engine (make image, make image-push), with go-containerregistry:
//
//	go run ./hack/image build -binaries DIR -out bin/image -name IMG -version V ...
//	go run ./hack/image push -layout bin/image IMG
//
// build assembles the linux/amd64 + linux/arm64 index from binaries the
// Makefile cross-compiled (DIR/linux_amd64/singleton-webhook, ...) on an
// empty base, writes it as an OCI image layout, and next to it one
// `docker load`-able archive per platform (OUT.linux-amd64.tar, ...) and,
// with -sbom, an SPDX SBOM of the Go modules compiled in. Every
// time in the image is -created, so the same binaries give the same digest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const usage = `usage:
  image build -binaries DIR -out DIR -name IMAGE -version V [-revision SHA] [-created UNIX] [-source URL] [-licenses SPDX] [-sbom FILE]
  image push -layout DIR IMAGE`

// errUsage marks a command line that names no known command.
var errUsage = errors.New("usage")

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		// One line: make prints it as the reason the target failed.
		fmt.Fprintln(os.Stderr, "image:", strings.ReplaceAll(err.Error(), "\n", " "))
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, usage)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command given: %w", errUsage)
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:], stdout)
	case "push":
		return runPush(args[1:], stdout)
	default:
		return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
	}
}

func runBuild(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	binaries := fs.String("binaries", "", "directory holding linux_<arch>/singleton-webhook")
	out := fs.String("out", "", "OCI image layout to write (replaced)")
	ref := fs.String("name", "", "image reference the archives and the layout name it by")
	var m Meta
	fs.StringVar(&m.Version, "version", "", "version the binaries were stamped with")
	fs.StringVar(&m.Revision, "revision", "", "source commit")
	fs.StringVar(&m.Source, "source", "https://github.com/singleton-webhook/singleton-webhook", "source repository")
	fs.StringVar(&m.Licenses, "licenses", "Apache-2.0", "SPDX licence expression")
	created := fs.Int64("created", 0, "build time as Unix seconds (the commit time)")
	sbom := fs.String("sbom", "", "also write an SPDX JSON SBOM of the binaries' Go modules to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *binaries == "" || *out == "" || *ref == "" || m.Version == "" {
		return errors.New("build needs -binaries, -out, -name and -version")
	}
	tag, err := name.ParseReference(*ref)
	if err != nil {
		return fmt.Errorf("-name %q: %w", *ref, err)
	}
	m.Created = time.Unix(*created, 0).UTC()
	idx, err := BuildIndex(*binaries, m)
	if err != nil {
		return err
	}
	if err := writeLayout(*out, idx, tag.Name(), m.Version); err != nil {
		return err
	}
	if err := writeArchives(*out, idx, tag); err != nil {
		return err
	}
	if *sbom != "" {
		// The platforms' binaries are built from the same modules.
		if err := WriteSBOM(*sbom, BinaryPath(*binaries, Platforms[0]), m); err != nil {
			return err
		}
	}
	d, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: %s@%s (%d platforms)\n", *out, tag.Name(), d, len(Platforms))
	return nil
}

// writeLayout writes idx as the one entry of a fresh OCI image layout,
// annotated with its name so containerd (ctr import, kind) tags it.
func writeLayout(dir string, idx v1.ImageIndex, ref, version string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": version,
		"io.containerd.image.name":          ref,
	}))
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	return nil
}

// writeArchives writes one `docker load` archive per platform, the format
// `kind load image-archive` takes.
func writeArchives(out string, idx v1.ImageIndex, tag name.Reference) error {
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return fmt.Errorf("image %s: %w", desc.Digest, err)
		}
		path := fmt.Sprintf("%s.%s-%s.tar", out, desc.Platform.OS, desc.Platform.Architecture)
		if err := tarball.WriteToFile(path, tag, img); err != nil {
			return fmt.Errorf("archive %s: %w", path, err)
		}
	}
	return nil
}

func runPush(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	dir := fs.String("layout", "", "OCI image layout written by build")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 1 {
		return errors.New("push needs -layout DIR and one IMAGE")
	}
	ref, err := name.ParseReference(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("image %q: %w", fs.Arg(0), err)
	}
	idx, err := builtIndex(*dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	err = remote.WriteIndex(ref, idx,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		// An unreachable registry fails after a few seconds, not minutes.
		remote.WithRetryBackoff(remote.Backoff{Duration: time.Second, Factor: 2, Steps: 2}))
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	fmt.Fprintf(stdout, "pushed %s@%s\n", ref.Context().Name(), d)
	return nil
}

// builtIndex opens the index build wrote into the layout at dir.
func builtIndex(dir string) (v1.ImageIndex, error) {
	outer, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("no image layout at %s (run make image first): %w", dir, err)
	}
	im, err := outer.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("layout %s holds %d entries, want the one index make image writes", dir, len(im.Manifests))
	}
	idx, err := outer.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("layout %s: %w", dir, err)
	}
	return idx, nil
}
