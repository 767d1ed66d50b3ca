package patches_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/singleton-webhook/singleton-webhook/patches"
)

// FuzzApplyElection feeds arbitrary election annotations, and a template
// that may already hold our names, to Apply: it must never panic, a refusal
// must leave the Deployment as it was, and a success must be a fixed point.
func FuzzApplyElection(f *testing.F) {
	f.Add("worker", "15s", "10s", "2s", "true", false, false, uint8(3))
	f.Add("", "1m", "59s", "49s", "false", true, true, uint8(1))
	f.Add("Bad_Name", "1500ms", "-1s", "0", "yes", false, true, uint8(0))
	f.Fuzz(func(t *testing.T, leaseName, lease, renew, retry, service string, injected, plain bool, clash uint8) {
		d := electionDeployment(map[string]string{
			patches.AnnotationLeaseName: leaseName, patches.AnnotationLeaseDuration: lease,
			patches.AnnotationRenewDeadline: renew, patches.AnnotationRetryPeriod: retry,
			patches.AnnotationLeaderService: service,
		})
		if injected {
			d.Spec.Template.Annotations = map[string]string{patches.AnnotationInjected: "v0"}
		}
		s := &d.Spec.Template.Spec
		switch clash % 4 {
		case 1:
			s.InitContainers = append(s.InitContainers, s.Containers[0])
			s.InitContainers[0].Name = patches.ElectorContainerName
		case 2:
			s.Containers = append(s.Containers, s.Containers[0])
			s.Containers[1].Name = patches.ElectorContainerName
		}
		p := patches.Policy{Elector: patches.ElectorOptions{PlainContainer: plain}}
		before := d.DeepCopy()
		if _, err := patches.Apply(d, p); err != nil {
			if !equality.Semantic.DeepEqual(before, d) {
				t.Fatalf("a refused Apply changed the Deployment: %v", err)
			}
			return
		}
		again := d.DeepCopy()
		res, err := patches.Apply(again, p)
		if err != nil || len(res.Warnings) != 0 || !equality.Semantic.DeepEqual(d, again) {
			t.Fatalf("second Apply: err %v, warnings %q, changed %t", err, res.Warnings, !equality.Semantic.DeepEqual(d, again))
		}
	})
}
