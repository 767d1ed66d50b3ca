package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
)

func TestPluginAnswersOnlyTheReadOnlyCommands(t *testing.T) {
	for name, tc := range map[string]struct {
		args   []string
		err    string
		stdout string
	}{
		"version":                       {[]string{"version"}, "", "dev\n"},
		"help lists status, check":      {[]string{"help"}, "", "kubectl singleton status [NAME]"},
		"serve is not a plugin command": {[]string{"serve"}, `unknown command "serve"`, ""},
		"no command":                    {nil, "no command given", ""},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runPlugin(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.stdout)
			}
		})
	}
}

// TestMain runs main when the test binary is run as the plugin (through
// the symlink of TestPluginSymlink): the binary's own dispatch on argv[0].
func TestMain(m *testing.M) {
	if app.IsPluginName(os.Args[0]) {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestPluginSymlink links the binary as make install-plugin does and runs
// it by that name.
func TestPluginSymlink(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), app.PluginName)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(link, "help").Output()
	if err != nil || !strings.HasPrefix(string(out), "kubectl singleton:") {
		t.Errorf("kubectl-singleton help: %v\n%s", err, out)
	}
	out, err = exec.Command(link, "serve").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown command "serve"`) {
		t.Errorf("kubectl-singleton serve: %v\n%s", err, out)
	}
}

// TestKrewManifest holds plugins/singleton.yaml to what krew needs: every
// platform installs the binary as the plugin's name.
func TestKrewManifest(t *testing.T) {
	b, err := os.ReadFile("plugins/singleton.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct{ Name string }
		Spec       struct {
			Version, Homepage, ShortDescription, Description, Caveats string
			Platforms                                                 []struct {
				Selector struct{ MatchLabels map[string]string } `json:"selector"`
				URI      string                                  `json:"uri"`
				Sha256   string                                  `json:"sha256"`
				Files    []struct{ From, To string }             `json:"files"`
				Bin      string                                  `json:"bin"`
			}
		}
	}
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || "kubectl-"+m.Metadata.Name != app.PluginName ||
		m.Spec.ShortDescription == "" || !strings.HasPrefix(m.Spec.Version, "v") {
		t.Errorf("manifest header: %+v", m)
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		key := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
		seen[key] = true
		if p.Bin != app.PluginName || len(p.Files) == 0 || p.Files[0].To != app.PluginName || len(p.Sha256) != 64 ||
			!strings.Contains(p.URI, strings.ReplaceAll(key, "/", "_")) {
			t.Errorf("platform %s: %+v", key, p)
		}
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		if !seen[want] {
			t.Errorf("no platform %s", want)
		}
	}
}
