package install

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// TestDockerfileBuildsLikeMake checks that the Dockerfile's binary and the
// binaries of `make image` are built exactly as `make build` builds
// bin/singleton-webhook, the binary the integration tier runs (testutil.Product
// uses the same flags), for the target platform, and that the Dockerfile's
// final stage is the distroless non-root base. The Dockerfile cannot be
// built here, so its recipe is compared instead.
func TestDockerfileBuildsLikeMake(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	makefile := readFile(t, filepath.Join(root, "Makefile"))
	dockerfile := readFile(t, filepath.Join(root, "Dockerfile"))

	ldflags := match(t, makefile, `(?m)^LDFLAGS := (.+)$`)
	makeBuild := match(t, makefile, `(?m)^\t(CGO_ENABLED=0 go build .*) -o \$\(BIN\)/singleton-webhook \.$`)
	makeBuild = strings.ReplaceAll(makeBuild, "'$(LDFLAGS)'", `"`+ldflags+`"`)
	makeBuild = strings.ReplaceAll(makeBuild, "$(VERSION)", "${VERSION}")
	dockerBuild := match(t, dockerfile, `(?m)^RUN (CGO_ENABLED=0 GOOS=\$\{TARGETOS\} GOARCH=\$\{TARGETARCH\} go build .*) \\$`)
	dockerBuild = strings.Replace(dockerBuild, " GOOS=${TARGETOS} GOARCH=${TARGETARCH}", "", 1)
	if dockerBuild != makeBuild {
		t.Errorf("the Dockerfile builds with\n\t%s\nmake build with\n\t%s", dockerBuild, makeBuild)
	}
	imageBuild := match(t, makefile, `(?m)^\tfor arch in amd64 arm64; do (CGO_ENABLED=0 GOOS=linux GOARCH=\$\$arch go build .*) -o \$\(IMAGE_OUT\)\.bin/linux_\$\$arch/singleton-webhook \. \|\| exit 1; done$`)
	imageBuild = strings.Replace(imageBuild, " GOOS=linux GOARCH=$$arch", "", 1)
	imageBuild = strings.ReplaceAll(imageBuild, "'$(LDFLAGS)'", `"`+ldflags+`"`)
	imageBuild = strings.ReplaceAll(imageBuild, "$(VERSION)", "${VERSION}")
	if imageBuild != makeBuild {
		t.Errorf("make image builds with\n\t%s\nmake build with\n\t%s", imageBuild, makeBuild)
	}
	for _, want := range []string{
		"FROM gcr.io/distroless/static:nonroot",
		"USER 65532:65532",
		`ENTRYPOINT ["/singleton-webhook"]`,
	} {
		if !strings.Contains(dockerfile, "\n"+want+"\n") {
			t.Errorf("the Dockerfile lacks the line %q", want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func match(t *testing.T, s, expr string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no line matches %s", expr)
	}
	return m[1]
}
