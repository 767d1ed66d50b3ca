package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
)

// CLI tests: run is called as main calls it, with the fixtures of testdata/.

// cli is the outcome of one run.
type cli struct {
	err            error
	stdout, stderr string
}

func runCLI(t *testing.T, stdin string, args ...string) cli {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return cli{err: err, stdout: stdout.String(), stderr: stderr.String()}
}

// status is the exit status main gives err: 0, the code of an *exitCode,
// or 1 for any other error.
func (c cli) status() int {
	if c.err == nil {
		return 0
	}
	var ec *app.ExitError
	if errors.As(c.err, &ec) {
		return ec.Code
	}
	return 1
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return string(b)
}

// docs splits a YAML or JSON stream into its documents, as JSON values.
func docs(t *testing.T, stream string) []any {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stream), 4096)
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode stream: %v\n%s", err, stream)
		}
		if v != nil {
			out = append(out, normalize(t, v))
		}
	}
}

// normalize round-trips v through JSON so numbers compare alike.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var n any
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return n
}

func assertSameDocs(t *testing.T, got, want string) {
	t.Helper()
	g, w := docs(t, got), docs(t, want)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("output differs\n--- got:\n%s\n--- want:\n%s", got, want)
	}
}

const (
	consumerWarnings = "Warning: Deployment shop/queue-consumer: singleton: spec.replicas forced from 3 to 1 (the request is kept in singleton.dev/original-replicas)\n" +
		"Warning: Deployment shop/queue-consumer: singleton: spec.strategy forced from RollingUpdate(maxSurge=1,maxUnavailable=0) to Recreate (a rolling update runs the old and the new pod at once)\n" +
		"Warning: Deployment shop/queue-consumer: " + gateWarning + "\n" +
		"Warning: Deployment shop/queue-consumer: " + labelWarningPrefix + "queue-consumer" + labelWarningSuffix + "\n" +
		"Warning: Deployment shop/queue-consumer: " + modeWarning + "\n"
	reporterWarnings = "Warning: Deployment shop/reporter: singleton: spec.replicas forced from 2 to 1 (the request is kept in singleton.dev/original-replicas)\n" +
		"Warning: Deployment shop/reporter: singleton: spec.strategy forced from RollingUpdate to Recreate (a rolling update runs the old and the new pod at once)\n" +
		"Warning: Deployment shop/reporter: " + gateWarning + "\n" +
		"Warning: Deployment shop/reporter: " + labelWarningPrefix + "reporter" + labelWarningSuffix + "\n" +
		"Warning: Deployment shop/reporter: " + modeWarning + "\n"
	// labelWarningPrefix and labelWarningSuffix surround the Deployment's
	// name in the warning of the Deployment label on a pod template.
	labelWarningPrefix = "singleton: pod template labelled singleton.dev/deployment="
	labelWarningSuffix = " (the webhook's controllers find the Pods of this singleton by it)"
	// modeWarning is the warning of the label on a singleton Deployment.
	modeWarning = "singleton: labelled the Deployment singleton.dev/mode=replicas (the webhook's controllers watch singletons by it)"
	// gateWarning is the warning of the scheduling gate on a pod template.
	gateWarning = "singleton: pod template gains the scheduling gate singleton.dev/one-at-a-time (a new Pod starts only once the previous one is gone, also on delete, eviction and drain)"
)

func TestMutate(t *testing.T) {
	tests := map[string]struct {
		args       []string
		stdin      string
		want       string
		wantStderr string
	}{
		"several documents from a file": {
			args: []string{"mutate", "-f", "testdata/multi.yaml"}, want: "multi.want.yaml", wantStderr: consumerWarnings,
		},
		"several documents from stdin": {
			args: []string{"mutate", "-f", "-"}, stdin: readFixture(t, "multi.yaml"),
			want: "multi.want.yaml", wantStderr: consumerWarnings,
		},
		"a kind: List": {
			args: []string{"mutate", "-f", "testdata/list.yaml"}, want: "list.want.yaml", wantStderr: consumerWarnings,
		},
		"JSON": {
			args: []string{"mutate", "-f", "testdata/deployment.json"}, want: "deployment.want.yaml", wantStderr: reporterWarnings,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			first := runCLI(t, tc.stdin, tc.args...)
			if first.err != nil {
				t.Fatalf("mutate: %v\n%s", first.err, first.stderr)
			}
			assertSameDocs(t, first.stdout, readFixture(t, tc.want))
			if first.stderr != tc.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", first.stderr, tc.wantStderr)
			}

			second := runCLI(t, first.stdout, "mutate", "-f", "-")
			if second.err != nil {
				t.Fatalf("mutate of mutate's output: %v\n%s", second.err, second.stderr)
			}
			if second.stdout != first.stdout || second.stderr != "" {
				t.Errorf("mutate of its own output is not a no-op:\n--- first:\n%s\n--- second:\n%s\n--- stderr:\n%s",
					first.stdout, second.stdout, second.stderr)
			}
		})
	}
}

func TestMutateDenied(t *testing.T) {
	got := runCLI(t, "", "mutate", "-f", "testdata/denied.yaml")
	if got.status() != 1 {
		t.Fatalf("exit status %d (err %v), want 1", got.status(), got.err)
	}
	if got.stdout != "" {
		t.Errorf("a denied set wrote to stdout:\n%s", got.stdout)
	}
	want := `Error: denied: Deployment shop/cron: annotation singleton: "True" is not accepted; ` +
		`use "true" to enforce or "false" to opt out (exact, lower case)` + "\n"
	if got.stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got.stderr, want)
	}
}

// mutate --check applies deny mode to every singleton: the same message the
// webhook gives, nothing on stdout, and it accepts the manifest once fixed.
func TestMutateCheck(t *testing.T) {
	got := runCLI(t, "", "mutate", "--check", "-f", "patches/testdata/replicas-deny-3.yaml")
	if got.status() != 1 || got.stdout != "" {
		t.Fatalf("exit status %d, stdout %q; want 1 and nothing", got.status(), got.stdout)
	}
	golden, err := os.ReadFile("patches/testdata/replicas-deny-3.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := "Error: denied: Deployment default/queue-consumer: " + strings.TrimSpace(strings.TrimPrefix(string(golden), "# error: ")) + "\n"
	if got.stderr != want {
		t.Errorf("stderr:\n%s\nwant the webhook's deny-mode message:\n%s", got.stderr, want)
	}
	got = runCLI(t, "", "mutate", "--check", "-f", "patches/testdata/replicas-deny-fixed.yaml")
	if got.status() != 0 || got.stdout != "" {
		t.Errorf("fixed manifest: exit status %d (err %v), stdout %q; want 0 and nothing", got.status(), got.err, got.stdout)
	}
	// --check denies even a singleton that asks to be mutated.
	got = runCLI(t, "", "mutate", "--check", "-f", "examples/replicas.yaml")
	if got.status() != 1 || !strings.Contains(got.stderr, "spec.replicas is 3: write spec.replicas: 1") {
		t.Errorf("exit status %d, stderr %q; want 1 and the replicas problem", got.status(), got.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := map[string][]string{
		"no command":                    nil,
		"an unknown command":            {"frobnicate"},
		"mutate without -f":             {"mutate"},
		"review without -f":             {"review"},
		"mutate with a stray argument":  {"mutate", "-f", "-", "extra"},
		"an unknown flag":               {"mutate", "--no-such-flag"},
		"a bad default mode":            {"mutate", "-f", "-", "--default-mode", "leader"},
		"mutate with --check and --fix": {"mutate", "-f", "-", "--check", "--fix"},
		"mutate with neither":           {"mutate", "-f", "-", "--fix=false"},
		"review with --check":           {"review", "-f", "-", "--check"},
		"serve without a certificate":   {"serve", "--standalone"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			got := runCLI(t, "", args...)
			if got.status() != 2 {
				t.Errorf("exit status %d (err %v), want 2", got.status(), got.err)
			}
			if got.stdout != "" {
				t.Errorf("usage error wrote to stdout: %s", got.stdout)
			}
		})
	}
	if got := runCLI(t, ""); !strings.Contains(got.stderr, "Usage:") {
		t.Errorf("no command: stderr lacks the usage:\n%s", got.stderr)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for name, args := range map[string][]string{
		"help":          {"help"},
		"serve -h":      {"serve", "-h"},
		"mutate -h":     {"mutate", "-h"},
		"review --help": {"review", "--help"},
		"elect -h":      {"elect", "-h"},
	} {
		t.Run(name, func(t *testing.T) {
			got := runCLI(t, "", args...)
			if got.status() != 0 {
				t.Errorf("exit status %d (err %v), want 0", got.status(), got.err)
			}
			if !strings.Contains(got.stdout+got.stderr, "Usage") {
				t.Errorf("no usage printed:\n%s%s", got.stdout, got.stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		got := runCLI(t, "", arg)
		if got.err != nil || got.stdout != version+"\n" || version == "" {
			t.Errorf("%s: err %v, stdout %q; want %q", arg, got.err, got.stdout, version+"\n")
		}
	}
}

func TestReview(t *testing.T) {
	in := readFixture(t, "review-deployment.json")
	got := runCLI(t, in, "review", "-f", "-")
	if got.err != nil {
		t.Fatalf("review: %v\n%s", got.err, got.stderr)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal([]byte(got.stdout), &ar); err != nil {
		t.Fatalf("review wrote %q: %v", got.stdout, err)
	}
	resp := ar.Response
	if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" || resp == nil {
		t.Fatalf("review wrote %s", got.stdout)
	}
	if resp.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" || !resp.Allowed {
		t.Errorf("uid %q allowed %t, want the request's uid and allowed", resp.UID, resp.Allowed)
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patchType %v, want JSONPatch", resp.PatchType)
	}
	// The patch is base64 in the JSON text; check its effect on the object.
	var raw struct {
		Response struct{ Patch string } `json:"response"`
		Request  struct {
			Object json.RawMessage `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal([]byte(got.stdout), &raw); err != nil || raw.Response.Patch == "" {
		t.Fatalf("no base64 patch in %s (%v)", got.stdout, err)
	}
	if err := json.Unmarshal([]byte(in), &raw); err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("decode patch: %v", err)
	}
	mutated, err := p.Apply(raw.Request.Object)
	if err != nil {
		t.Fatalf("apply patch: %v", err)
	}
	assertSameDocs(t, string(mutated), readFixture(t, "review-deployment.want.json"))
	wantWarnings := []string{
		"singleton: spec.replicas forced from 3 to 1 (the request is kept in singleton.dev/original-replicas)",
		"singleton: spec.strategy forced from RollingUpdate(maxSurge=25%,maxUnavailable=25%) to Recreate (a rolling update runs the old and the new pod at once)",
		gateWarning, labelWarningPrefix + "queue-consumer" + labelWarningSuffix, modeWarning,
	}
	if !reflect.DeepEqual(resp.Warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", resp.Warnings, wantWarnings)
	}
}

func TestReviewMalformed(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"not JSON":       {in: "request: {}\n", want: "read AdmissionReview: invalid character"},
		"the wrong kind": {in: readFixture(t, "deployment.json"), want: `read AdmissionReview: got apiVersion "apps/v1" kind "Deployment"`},
		"no request":     {in: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, want: "read AdmissionReview: it has no request"},
		"empty input":    {in: "", want: "read AdmissionReview: unexpected end of JSON input"},
		"keys in another case": {in: `{"apiversion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}`,
			want: `read AdmissionReview: got apiVersion "" kind "AdmissionReview"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := runCLI(t, tc.in, "review", "-f", "-")
			if got.status() == 0 {
				t.Fatal("exit status 0, want non-zero")
			}
			msg := got.err.Error()
			if !strings.HasPrefix(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line starting with %q", msg, tc.want)
			}
			if got.stdout != "" {
				t.Errorf("wrote to stdout: %s", got.stdout)
			}
		})
	}
	if got := runCLI(t, "", "review", "-f", "testdata/no-such-file.json"); got.status() == 0 ||
		!strings.HasPrefix(got.err.Error(), "open input: ") {
		t.Errorf("a missing file: status %d err %v", got.status(), got.err)
	}
}

// TestReviewMatchesServe posts the review fixtures to a live `serve` and
// checks it answers byte for byte what `review` prints.
func TestReviewMatchesServe(t *testing.T) {
	base, client := startServe(t)
	for fixture, path := range map[string]string{
		"review-deployment.json": "/mutate-apps-v1-deployment",
		"review-scale.json":      "/mutate-apps-v1-deployment-scale",
	} {
		t.Run(fixture, func(t *testing.T) {
			in := readFixture(t, fixture)
			offline := runCLI(t, in, "review", "-f", "-")
			if offline.err != nil {
				t.Fatalf("review: %v", offline.err)
			}
			resp, err := client.Post(base+path, "application/json", strings.NewReader(in))
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			defer resp.Body.Close()
			live, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("POST: HTTP %d, %v: %s", resp.StatusCode, err, live)
			}
			if string(live) != offline.stdout {
				t.Errorf("serve and review differ\n--- serve:\n%s--- review:\n%s", live, offline.stdout)
			}
		})
	}
}

// startServe runs `serve --standalone --self-signed` in-process on a free
// port and waits until it answers. The server is stopped, and its return
// checked, when the test ends.
func startServe(t *testing.T) (string, *http.Client) {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr testutil.SyncBuffer // the servers of serve log concurrently
	go func() {
		done <- run(ctx, []string{"serve", "--standalone", "--self-signed", "--self-signed-ca-out", caFile,
			"--webhook-port", strconv.Itoa(port), "--health-probe-bind-address", "127.0.0.1:0",
			"--metrics-bind-address", "0"},
			strings.NewReader(""), io.Discard, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s of its context being cancelled")
		}
	})
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve stopped before answering: %v\n%s", err, stderr.String())
		default:
		}
		if client := serveClient(caFile); client != nil {
			resp, err := client.Get(base + "/mutate-apps-v1-deployment")
			if err == nil {
				resp.Body.Close()
				return base, client
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not answer within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serveClient is an HTTPS client trusting only the CA in caFile; nil until
// the file is written.
func serveClient(caFile string) *http.Client {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestFixturesAreKubernetesObjects guards the fixtures themselves: a typo in
// one must not turn a test into a comparison of two broken files.
func TestFixturesAreKubernetesObjects(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("list testdata: %v", err)
	}
	for _, f := range files {
		for i, d := range docs(t, readFixture(t, filepath.Base(f))) {
			m, ok := d.(map[string]any)
			if !ok || m["apiVersion"] == nil || m["kind"] == nil {
				t.Errorf("%s document %d has no apiVersion and kind", f, i+1)
			}
		}
	}
}

func TestTheBinaryRecordsNoMemoryProfile(t *testing.T) {
	if runtime.MemProfileRate != 0 {
		t.Errorf("runtime.MemProfileRate = %d: the binary serves no profile, so it should sample nothing", runtime.MemProfileRate)
	}
}
