package patches

import (
	"flag"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/singleton-webhook/singleton-webhook/internal/sidecar"
)

// keptInjection returns the pod template with the sidecar that another
// version of the webhook injected kept as it is (container, image and
// marker) and the rest of the injection (volumes, the app containers'
// mount and environment) written as this version writes it, and whether
// that sidecar may be kept at all: it sits where the policy puts it (init
// container or plain container) and runs the election cfg asks for. The
// caller keeps the template when the result equals it; see skew.go.
//
// A sidecar of this very version is never kept as it is: it is rebuilt, so
// an edit of the injected container converges.
func keptInjection(t *corev1.PodTemplateSpec, cfg electionConfig, o ElectorOptions) (*corev1.PodTemplateSpec, bool) {
	v, ok := InjectedVersion(t)
	if !ok || v == o.Version {
		return nil, false
	}
	list := t.Spec.InitContainers
	if o.PlainContainer {
		list = t.Spec.Containers
	}
	i := slices.IndexFunc(list, func(c corev1.Container) bool { return c.Name == ElectorContainerName })
	if i < 0 || !runsElection(list[i], cfg) {
		return nil, false
	}
	out := t.DeepCopy()
	injectContainer(out, cfg, o, v, *list[i].DeepCopy())
	return out, true
}

// runsElection reports whether a sidecar container runs the election cfg
// describes: its arguments, read with elect's own flags, name the same
// Lease, timings, port and state directory. Flags this version does not
// know (a newer sidecar's) are passed over; an argument of another form
// means the container is not one the contract can read.
func runsElection(c corev1.Container, cfg electionConfig) bool {
	if len(c.Args) == 0 || c.Args[0] != sidecar.Command {
		return false
	}
	fs := flag.NewFlagSet(sidecar.Command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// The identity and namespace come from the Pod's environment at run
	// time; any non-empty value lets Config validate the rest.
	f := sidecar.BindFlags(fs, func(string) (string, bool) { return "pod", true })
	var known []string
	for _, a := range c.Args[1:] {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || name == "" {
			return false
		}
		if fs.Lookup(name) != nil {
			known = append(known, a)
		}
	}
	if fs.Parse(known) != nil {
		return false
	}
	got, err := f.Config()
	if err != nil {
		return false
	}
	want := cfg.sidecarConfig()
	return got.LeaseName == want.LeaseName && got.Timings == want.Timings &&
		got.Port == want.Port && got.StateDir == StateDir
}
