package install

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
)

// TestDockerfileBuildsLikeMake checks that the image's binary is built
// exactly as `make build` builds bin/singleton-webhook, the binary the
// integration tier runs (buildProduct uses the same flags), and that the
// final stage is the distroless non-root base. The image cannot be built
// here, so its recipe is compared instead.
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
	dockerBuild := match(t, dockerfile, `(?m)^RUN (CGO_ENABLED=0 go build .*) \\$`)
	if dockerBuild != makeBuild {
		t.Errorf("the Dockerfile builds with\n\t%s\nmake build with\n\t%s", dockerBuild, makeBuild)
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
