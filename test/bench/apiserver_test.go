//go:build bench

package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
	"k8s.io/client-go/rest"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/singleton-webhook/singleton-webhook/internal/app"
	"github.com/singleton-webhook/singleton-webhook/internal/benchdata"
	"github.com/singleton-webhook/singleton-webhook/internal/testenv"
	"github.com/singleton-webhook/singleton-webhook/internal/testutil"
	"github.com/singleton-webhook/singleton-webhook/webhook"
)

// Shape of the API server benchmark: CREATEs per configuration. Every
// configuration's webhook is installed at once, each selecting the objects
// that carry its own label value, and the CREATEs go round the
// configurations, one each in a fresh random order per round, so whatever
// the shared machine does at any moment weighs on all of them alike.
const (
	apiCreates     = 3000
	benchNamespace = "bench"
	benchLabel     = "bench.singleton.dev/webhook"
)

// counting counts the requests an HTTP handler serves; the benchmark uses it
// to know that the API server calls the webhook of a configuration.
type counting struct {
	n    atomic.Int64
	next http.Handler
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.next.ServeHTTP(w, r)
}

// countingServer counts, in deployments, the requests of the product's
// Deployment handler registered on it.
type countingServer struct {
	ctrlwebhook.Server
	deployments *counting
}

func (s countingServer) Register(path string, h http.Handler) {
	if path == webhook.DeploymentPath {
		s.deployments.next = h
		h = s.deployments
	}
	s.Server.Register(path, h)
}

// warningCounter counts the warnings the client receives instead of
// printing them: the client is the benchmark's, and what it does with a
// warning is not the API server's latency.
type warningCounter struct{ n atomic.Int64 }

func (w *warningCounter) HandleWarningHeader(int, string, string) { w.n.Add(1) }

// benchConfig is one configuration of the benchmark: the webhook its
// objects go through, if any.
type benchConfig struct {
	name, slug string
	url        string
	hits       *counting
	warnings   int // per CREATE
}

// TestAPIServerLatency measures what the webhook adds to Deployment CREATEs
// through a real kube-apiserver: no webhook, a no-op controller-runtime
// webhook registered with the project's own configuration (the floor every
// webhook pays), a patching no-op (the floor of a mutating webhook), a
// stand-in answering with a constant copy of our answer (what the API server
// spends on our mutation), the same without its warnings and the patching
// no-op with them (which of the two costs what), and singleton-webhook.
// Every CREATE is of the realistic singleton Deployment, so the CEL match
// conditions let each call through.
func TestAPIServerLatency(t *testing.T) {
	env := testenv.Start(t, testenv.Options{SkipWebhookConfiguration: true})
	ours := &counting{}
	env.StartWebhook(t, testenv.WebhookOptions{
		// Every controller but drift: the other configurations admit their
		// singletons un-mutated, and drift would re-pin them at its client's
		// rate limit, through the webhook of their configuration, during
		// the measurement.
		Controllers: slices.DeleteFunc(app.ControllerNames(), func(n string) bool { return n == "drift" }),
		WrapServer:  func(srv ctrlwebhook.Server) ctrlwebhook.Server { return countingServer{Server: srv, deployments: ours} },
	})
	copied := constantPatch(t)
	noop, noopURL := startNoop(t, env, allowAll{})
	patching, patchingURL := startNoop(t, env, patchOne{})
	fixed, fixedURL := startNoop(t, env, copied)
	silent, silentURL := startNoop(t, env, constant{copied.withoutWarnings()})
	warned, warnedURL := startNoop(t, env, constant{patchOne{}.Handle(context.Background(), admission.Request{}).WithWarnings(copied.resp.Warnings...)})
	configs := []benchConfig{
		{name: "no webhook", slug: "none"},
		{name: "no-op webhook", slug: "noop", url: noopURL, hits: noop},
		{name: "patching no-op", slug: "patching", url: patchingURL, hits: patching},
		{name: ourPatch, slug: "constant", url: fixedURL, hits: fixed, warnings: len(copied.resp.Warnings)},
		{name: ourPatchSilent, slug: "silent", url: silentURL, hits: silent},
		{name: oneOpWarned, slug: "warned", url: warnedURL, hits: warned, warnings: len(copied.resp.Warnings)},
		{name: "singleton-webhook", slug: "ours", url: env.WebhookURL, hits: ours, warnings: len(copied.resp.Warnings)},
		// Its replicas and strategy warnings, of the warnings policy.
		{name: policyConfig, slug: "policy", warnings: policyWarnings},
		{name: policyMutating, slug: "policymut"},
		{name: policyAnchor, slug: "anchor"},
		{name: policyDenyFloor, slug: "denyfloor"},
		{name: policyFloors, slug: "floors", warnings: policyWarnings},
		{name: policyReadFloor, slug: "readfloor"},
		{name: policyOps, slug: "ops"},
		{name: policyOpsFloors, slug: "opsfloors", warnings: policyWarnings},
	}
	if _, err := env.Clientset.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	warnings := &warningCounter{}
	cfg.WarningHandler = warnings
	b := &apiBench{t: t, api: kubernetes.NewForConfigOrDie(cfg).AppsV1().Deployments(benchNamespace), warnings: warnings}
	installPolicyConfigs(t, env, policySlugs{policy: "policy", mutating: "policymut", anchor: "anchor", denyFloor: "denyfloor", floors: "floors", readFloor: "readfloor",
		ops: "ops", opsFloors: "opsfloors"})
	b.install(env, filepath.Join(env.Root, "manifests", "mutatingwebhook.yaml"), configs)

	lat := make([][]time.Duration, len(configs))
	order := make([]int, len(configs))
	for i := range order {
		order[i] = i
	}
	for range apiCreates {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			took, got := b.create(configs[i])
			if got != configs[i].warnings {
				t.Fatalf("a CREATE through %q got %d warnings, want %d", configs[i].name, got, configs[i].warnings)
			}
			lat[i] = append(lat[i], took)
		}
	}
	b.report(configs, lat)
}

// apiBench drives the API server benchmark.
type apiBench struct {
	t        *testing.T
	api      typedappsv1.DeploymentInterface
	warnings *warningCounter
	seq      int
}

// install installs, for every configuration with a webhook, the project's
// webhook configuration pointing at it and selecting the objects labelled
// with its slug, and waits until the API server calls each of them, and
// nothing for the configuration without one.
func (b *apiBench) install(env *testenv.Env, file string, configs []benchConfig) {
	ctx := context.Background()
	for _, c := range configs {
		if c.url == "" {
			continue
		}
		wc, err := testenv.LocalWebhookConfiguration(file, c.url, env.CABundle)
		if err != nil {
			b.t.Fatal(err)
		}
		wc.Name = "bench-" + c.slug
		for i := range wc.Webhooks {
			wc.Webhooks[i].ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{benchLabel: c.slug}}
		}
		if err := testenv.InstallWebhookConfiguration(ctx, env.Config, wc); err != nil {
			b.t.Fatal(err)
		}
	}
	hits := func() []int64 {
		var n []int64
		for _, c := range configs {
			if c.hits != nil {
				n = append(n, c.hits.n.Load())
			}
		}
		return n
	}
	for _, c := range configs {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.t.Fatalf("the API server does not call the webhook of %q", c.name)
			}
			all, own := hits(), int64(0)
			if c.hits != nil {
				own = c.hits.n.Load()
			}
			b.create(c)
			if c.hits == nil {
				if !slices.Equal(all, hits()) {
					b.t.Fatalf("a CREATE labelled %q reached a webhook", c.slug)
				}
				break
			}
			if c.hits.n.Load() > own {
				break
			}
		}
	}
}

// create creates one singleton Deployment labelled for configuration c and
// returns the CREATE's latency as the client sees it, and the number of
// warnings the client received with the answer.
func (b *apiBench) create(c benchConfig) (time.Duration, int) {
	b.seq++
	d := benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs)
	d.Namespace = benchNamespace
	d.Name = fmt.Sprintf("%s-%d", c.slug, b.seq)
	d.Labels[benchLabel] = c.slug
	before := b.warnings.n.Load()
	t0 := time.Now()
	if _, err := b.api.Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		b.t.Fatalf("create %s: %v", d.Name, err)
	}
	return time.Since(t0), int(b.warnings.n.Load() - before)
}

// report writes the latency table and the added-latency ratios.
func (b *apiBench) report(configs []benchConfig, lat [][]time.Duration) {
	idx := map[string]int{}
	for i, c := range configs {
		idx[c.name] = i
	}
	p := func(name string, q float64, part [2]int) time.Duration {
		l := slices.Clone(lat[idx[name]][part[0]:part[1]])
		slices.Sort(l)
		return percentile(l, q)
	}
	n := len(lat[0])
	whole, first, second := [2]int{0, n}, [2]int{0, n / 2}, [2]int{n / 2, n}
	added := func(name string, q float64, part [2]int) time.Duration {
		return p(name, q, part) - p("no webhook", q, part)
	}
	// rv is the ratio of the latency two configurations add.
	rv := func(name, floor string, q float64, part [2]int) float64 {
		return float64(added(name, q, part)) / float64(added(floor, q, part))
	}
	// The ratio over the whole run, with the interval it falls in when
	// the run's rounds are drawn again (roundsInterval); at p50 also over
	// each half of the run.
	interval := func(name, floor string, q float64) (lo, hi float64) {
		return roundsInterval(lat[idx[name]], lat[idx[floor]], lat[idx["no webhook"]], q)
	}
	ratio := func(name, floor string, q float64) string {
		r := func(part [2]int) float64 { return rv(name, floor, q, part) }
		lo, hi := interval(name, floor, q)
		if q != 50 {
			return fmt.Sprintf("%.2f× (90 %% interval %.2f–%.2f×)", r(whole), lo, hi)
		}
		return fmt.Sprintf("%.2f× (halves %.2f×, %.2f×; 90 %% interval %.2f–%.2f×)", r(whole), r(first), r(second), lo, hi)
	}
	// msDiff is the latency name adds on top of floor, over the whole run.
	msDiff := func(name, floor string, q float64) string {
		return fmt.Sprintf("%+.3f ms", float64(added(name, q, whole)-added(floor, q, whole))/float64(time.Millisecond))
	}
	lines := []string{
		"## 3. Latency added to Deployment CREATEs through the real API server",
		"",
		fmt.Sprintf("kube-apiserver v1.37.2 + etcd on loopback, one client creating realistic singleton Deployments one at a time, %d per configuration. Every configuration's webhook is installed at once, the project's own MutatingWebhookConfiguration with an object selector on a label each configuration's Deployments carry; the CREATEs go round the configurations, one each per round in a fresh random order, so the load of the shared machine weighs on all of them alike. The no-op webhooks are controller-runtime webhook servers behind the same HTTP layer. singleton-webhook runs as `serve` does (app.NewManager and app.Setup), with its controllers but drift, which would re-pin the singletons the other configurations admit un-mutated. The client counts the warnings it receives (each CREATE through ours gets its %d) instead of printing them.",
			apiCreates, configs[idx[ourPatch]].warnings),
		"",
		"| configuration | CREATEs | p50 | p99 | added at p50 | added at p99 |",
		"|---|---|---|---|---|---|",
	}
	for _, c := range configs {
		lines = append(lines, fmt.Sprintf("| %s | %d | %s | %s | %s | %s |", c.name, len(lat[idx[c.name]]),
			ms(p(c.name, 50, whole)), ms(p(c.name, 99, whole)), ms(added(c.name, 50, whole)), ms(added(c.name, 99, whole))))
	}
	lines = append(lines, "",
		fmt.Sprintf("**Added latency, ours / %s: %s at p50, %s at p99** (targets ≤ 1.20× at p50, ≤ 1.10× at p99). *%s* answers every review with the patch and warnings singleton-webhook gives the benchmark's Deployment, computed once: it pays what the API server spends on this very answer (the pod template's gate and label included) and nothing of the webhook's own work, so the ratio is the cost of decoding, mutating and diffing each object.",
			ourPatch, ratio("singleton-webhook", ourPatch, 50), ratio("singleton-webhook", ourPatch, 99), ourPatch),
		"",
		fmt.Sprintf("What our answer costs the API server: *%s* adds %s the latency of the patching no-op at p50, %s at p99. The patching no-op answers every review with one constant JSON patch operation (an annotation) and does nothing else: what the API server spends on applying any mutation, the floor of a mutating webhook. Ours / the patching no-op: %s at p50, %s at p99; ours / the no-op webhook that allows without a patch: %s at p50, %s at p99.",
			ourPatch, ratio(ourPatch, "patching no-op", 50), ratio(ourPatch, "patching no-op", 99),
			ratio("singleton-webhook", "patching no-op", 50), ratio("singleton-webhook", "patching no-op", 99),
			ratio("singleton-webhook", "no-op webhook", 50), ratio("singleton-webhook", "no-op webhook", 99)),
		"",
		fmt.Sprintf("Of what the constant answer adds: *%s* (its patch alone) adds %s the patching no-op's latency at p50, and *%s* (the patching no-op's operation with our %d warnings) %s.",
			ourPatchSilent, ratio(ourPatchSilent, "patching no-op", 50),
			oneOpWarned, configs[idx[oneOpWarned]].warnings, ratio(oneOpWarned, "patching no-op", 50)))
	opsLo, opsHi := interval(policyOpsFloors, policyAnchor, 50)
	lines = append(lines, "",
		fmt.Sprintf("**Added latency, %s / %s: %s at p50, %s at p99** (target ≤ 1.10×): the product's MutatingAdmissionPolicy and two ValidatingAdmissionPolicies against one MutatingAdmissionPolicy that only pins replicas and strategy, both inside the API server (no webhook).",
			policyConfig, policyAnchor, ratio(policyConfig, policyAnchor, 50), ratio(policyConfig, policyAnchor, 99)),
		"",
		fmt.Sprintf("Of that: *%s* (all its operations, no validation) adds %s the anchor's latency at p50, %s at p99; the two ValidatingAdmissionPolicies (deny, and warn: the action is per binding, so two policies) add %s on top of it at p50, %s at p99 (%s at p50).",
			policyMutating, ratio(policyMutating, policyAnchor, 50), ratio(policyMutating, policyAnchor, 99),
			ratio(policyConfig, policyMutating, 50), ratio(policyConfig, policyMutating, 99), msDiff(policyConfig, policyMutating, 50)),
		"",
		fmt.Sprintf("The floor of that validation: *%s* adds %s the anchor's latency at p50, %s at p99 (%s at p50); *%s*, which refuses nothing and gives the CREATE as many warnings as ours, %s at p50, %s at p99 (%s at p50); *%s* (`has(object.spec.template)`, the least a validation of the object evaluates) %s at p50, %s at p99 (%s at p50). %s",
			policyDenyFloor, ratio(policyDenyFloor, policyAnchor, 50), ratio(policyDenyFloor, policyAnchor, 99), msDiff(policyDenyFloor, policyAnchor, 50),
			policyFloors, ratio(policyFloors, policyAnchor, 50), ratio(policyFloors, policyAnchor, 99), msDiff(policyFloors, policyAnchor, 50),
			policyReadFloor, ratio(policyReadFloor, policyAnchor, 50), ratio(policyReadFloor, policyAnchor, 99), msDiff(policyReadFloor, policyAnchor, 50),
			floorVerdict(rv(policyFloors, policyAnchor, 50, whole), rv(policyFloors, policyAnchor, 99, whole),
				rv(policyConfig, policyAnchor, 50, whole), rv(policyMutating, policyAnchor, 50, whole), rv(policyConfig, policyMutating, 50, whole),
				rv(policyReadFloor, policyAnchor, 50, whole))),
		"",
		fmt.Sprintf("What writing a singleton costs the API server: *%s* (the JSON Patch the product's MutatingAdmissionPolicy gives this Deployment, as constants behind its condition: the pod template's gate and label, the original-* annotations, the Deployment's label, besides replicas and strategy) adds %s the anchor's latency at p50, %s at p99 (%s at p50); *%s*, the least a policy-mode install that makes this object, refuses and warns pays, %s at p50, %s at p99 (%s at p50).",
			policyOps, ratio(policyOps, policyAnchor, 50), ratio(policyOps, policyAnchor, 99), msDiff(policyOps, policyAnchor, 50),
			policyOpsFloors, ratio(policyOpsFloors, policyAnchor, 50), ratio(policyOpsFloors, policyAnchor, 99), msDiff(policyOpsFloors, policyAnchor, 50)),
		"",
		fmt.Sprintf("**Added latency, %s / %s: %s at p50, %s at p99**: what the product's CEL (its conditions, the decisions of its operations, its refusals and warnings) adds to that least, as *%s* is for the webhook; of it, *%s* / *%s* %s at p50 (%s at p50). %s",
			policyConfig, policyOpsFloors, ratio(policyConfig, policyOpsFloors, 50), ratio(policyConfig, policyOpsFloors, 99), ourPatch,
			policyMutating, policyOps, ratio(policyMutating, policyOps, 50), msDiff(policyMutating, policyOps, 50),
			opsVerdict(rv(policyOpsFloors, policyAnchor, 50, whole), rv(policyConfig, policyOpsFloors, 50, whole),
				opsLo, opsHi)))
	writeFragment(b.t, "3-apiserver", lines...)
}

// roundsInterval returns the 5th and 95th percentiles of the ratio of the
// latency that a and floor add to none's at quantile q, over bootstrap
// resamples of the run's rounds: each resample draws as many rounds as the
// run had, with replacement, and keeps a round's CREATEs together, as the
// machine's load at that moment weighed on all of them. A figure whose
// interval straddles its target is not measured precisely enough to say.
func roundsInterval(a, floor, none []time.Duration, q float64) (lo, hi float64) {
	const resamples = 400
	rng := rand.New(rand.NewPCG(1, 2))
	n := len(none)
	ra, rf, rn := make([]time.Duration, n), make([]time.Duration, n), make([]time.Duration, n)
	ratios := make([]float64, 0, resamples)
	for range resamples {
		for i := range n {
			k := rng.IntN(n)
			ra[i], rf[i], rn[i] = a[k], floor[k], none[k]
		}
		slices.Sort(ra)
		slices.Sort(rf)
		slices.Sort(rn)
		base := percentile(rn, q)
		ratios = append(ratios, float64(percentile(ra, q)-base)/float64(percentile(rf, q)-base))
	}
	slices.Sort(ratios)
	return ratios[resamples*5/100], ratios[resamples*95/100]
}

// floorVerdict says what the validation floors, the least a policy-mode
// install that refuses and warns adds to the anchor (ratios at p50 and
// p99), leave of the policy target, beside what the product's policies
// add to the anchor, its mutating policy alone, its validation to that, and
// a validation that reads one field of the object (ratios at p50).
func floorVerdict(floor50, floor99, policy50, mutating50, validation50, read50 float64) string {
	if floor50 > 1.10 {
		return fmt.Sprintf("The floors alone exceed the 1.10× target at p50 (%.2f×, %.2f× at p99): no policy-mode install that pins replicas and strategy, refuses and warns reaches it, however little its policies evaluate.", floor50, floor99)
	}
	if policy50 <= 1.10 {
		return fmt.Sprintf("The floors stay within the 1.10× target (%.2f× at p50, %.2f× at p99), and so do the product's policies.", floor50, floor99)
	}
	return fmt.Sprintf("The floors stay within the 1.10× target (%.2f× at p50, %.2f× at p99): refusing and warning through policies costs next to nothing by itself, and neither does a validation reading the object (%.2f×). What misses the target is the product's own work: its MutatingAdmissionPolicy's operations and conditions (%.2f× the anchor alone) and its validations' evaluation (%.2f× on top of that).",
		floor50, floor99, read50, mutating50, validation50)
}

// opsVerdict says what the least a policy-mode install that makes the
// product's object, refuses and warns adds to the anchor (ratio at p50,
// and its 90 % interval lo–hi) leaves of the 1.10× policy target, beside
// what the product's CEL adds to that least (ratio at p50).
func opsVerdict(opsFloors50, overOps50, lo, hi float64) string {
	switch {
	case lo > 1.10:
		return fmt.Sprintf("That least alone is %.2f× the anchor at p50 (90 %% interval %.2f–%.2f×), beyond the 1.10× target: no policies that write what the gate controller needs (the gate and label in the pod template), refuse and warn reach it, however little they evaluate; the product's evaluation adds %.2f× to it.", opsFloors50, lo, hi, overOps50)
	case hi > 1.10:
		return fmt.Sprintf("That least alone is %.2f× the anchor at p50 (90 %% interval %.2f–%.2f×): at the 1.10× target, so that policies doing the product's job meet it only if they evaluate next to nothing; the product's evaluation adds %.2f× to it.", opsFloors50, lo, hi, overOps50)
	}
	return fmt.Sprintf("That least is %.2f× the anchor at p50 (90 %% interval %.2f–%.2f×), within the 1.10× target; the product's evaluation adds %.2f× to it.", opsFloors50, lo, hi, overOps50)
}

// Names of the stand-ins that answer with a constant copy of ours, with and
// without its warnings, and with one operation but our warnings.
const (
	ourPatch       = "our patch, constant"
	ourPatchSilent = "our patch, no warnings"
	oneOpWarned    = "one operation, our warnings"
)

// constantPatch answers every review with the answer singleton-webhook gives
// the CREATE of the benchmark's Deployment, computed once.
func constantPatch(t *testing.T) constant {
	d := benchdata.Deployment(benchdata.RealisticContainers, benchdata.RealisticEnvs)
	d.Namespace = benchNamespace
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(benchdata.Review(d), &ar); err != nil {
		t.Fatal(err)
	}
	resp := (&webhook.Deployments{}).Handle(context.Background(), admission.Request{AdmissionRequest: *ar.Request})
	if !resp.Allowed || len(resp.Patches) == 0 {
		t.Fatalf("singleton-webhook answers the benchmark's Deployment with allowed %t, %d patch operations", resp.Allowed, len(resp.Patches))
	}
	return constant{resp}
}

// constant answers every review with the same response.
type constant struct{ resp admission.Response }

func (c constant) Handle(context.Context, admission.Request) admission.Response { return c.resp }

// withoutWarnings is c's answer without its warnings.
func (c constant) withoutWarnings() admission.Response {
	r := c.resp
	r.Warnings = nil
	return r
}

// patchOne answers every review with one constant patch operation.
type patchOne struct{}

func (patchOne) Handle(context.Context, admission.Request) admission.Response {
	return admission.Patched("", jsonpatch.NewOperation("add", "/metadata/annotations/bench.singleton.dev~1patched", "true"))
}

// startNoop serves h, a stand-in webhook, behind the product's HTTP layer,
// with the same server settings and certificate as the product's.
func startNoop(t *testing.T, env *testenv.Env, h admission.Handler) (*counting, string) {
	port := testutil.FreePort(t)
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: env.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.NextProtos = []string{"http/1.1"}
		}},
	})
	hits := &counting{next: webhook.NewHTTPHandler(webhook.ResourceDeployments, h, nil)}
	srv.Register(webhook.DeploymentPath, hits)
	srv.Register(webhook.ScalePath, webhook.NewHTTPHandler(webhook.ResourceScale, allowAll{}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return hits, fmt.Sprintf("https://127.0.0.1:%d", port)
}
