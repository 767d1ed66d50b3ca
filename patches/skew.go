package patches

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The version-skew policy of election mode's sidecar.
//
// An upgrade of the webhook must roll nothing its owners did not change:
// what version N wrote into a pod template is a fixed point of N+1 (and of
// N−1, for a rollback). A pod template carries the version that injected its
// sidecar (AnnotationInjected) and that version's image; a later version
// keeps that sidecar as it is, image and marker included, as long as it
// still runs the election the Deployment's annotations ask for (Lease name,
// timings, port) and the rest of the injection is in place. It is renewed
// to the current version only when the pod template changes anyway, so the
// rollout that change causes carries the new sidecar too (the webhook sets
// Policy.RenewSidecar for an UPDATE whose pod template differs from the
// stored one; `kubectl rollout restart` is such a change, and the explicit
// way to renew one Deployment at a time), or when the annotations ask for
// another election. Never for the version alone: neither the drift
// controller's first pass after an upgrade nor a re-applied manifest
// changes a template whose only difference is the version.
//
// SkewMinorVersions is the window: webhook N supports sidecars injected by
// N−1 and N+1 (minor versions of the same major version). Deny mode accepts
// a sidecar of any version inside the window as written and refuses one
// outside it, saying how to renew it; mutate mode keeps one outside the
// window too (renewing it would restart the workload), and the version
// travels with it for `singleton-webhook check` to report.
const SkewMinorVersions = 1

// InjectedVersion returns the version that injected the sidecar of a pod
// template, and whether it carries one.
func InjectedVersion(t *corev1.PodTemplateSpec) (string, bool) {
	v, ok := t.Annotations[AnnotationInjected]
	return v, ok
}

// InSkewWindow reports whether a sidecar injected by version injected is
// inside the skew window of webhook version current: both semantic versions
// (v1.4.2, 1.4.2, v1.5.0-rc.1) of one major version at most
// SkewMinorVersions minor versions apart, or equal strings. A stamp that is
// not a semantic version ("dev", a commit) is a development build, which
// makes no promise and is refused none: it is inside every window.
func InSkewWindow(injected, current string) bool {
	if injected == current {
		return true
	}
	im, in, iok := majorMinor(injected)
	cm, cn, cok := majorMinor(current)
	if !iok || !cok {
		return true
	}
	d := in - cn
	return im == cm && d >= -SkewMinorVersions && d <= SkewMinorVersions
}

// majorMinor reads the major and minor numbers of a semantic version.
func majorMinor(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 || p == "" || (len(p) > 1 && p[0] == '0') {
			return 0, 0, false
		}
		n[i] = x
	}
	return n[0], n[1], true
}

// checkSkew is deny mode's problem with a sidecar injected by a version
// outside the skew window of the policy's.
func checkSkew(t *corev1.PodTemplateSpec, o ElectorOptions) []string {
	o = o.withDefaults()
	v, ok := InjectedVersion(t)
	if !ok || InSkewWindow(v, o.Version) {
		return nil
	}
	return []string{fmt.Sprintf("the leader-election sidecar was injected by version %s, outside the skew window of this webhook, %s (%d minor version either way): "+
		"remove the sidecar %s, the volume %s, %s/%s and the annotation %s from the manifest and write the pod template that `singleton-webhook mutate -f <manifest>` prints for it",
		v, o.Version, SkewMinorVersions, ElectorContainerName, StateVolumeName, EnvLeaderURL, EnvLeaderFile, AnnotationInjected)}
}
