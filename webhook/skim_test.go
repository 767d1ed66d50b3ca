package webhook

import (
	"reflect"
	"testing"

	sigsjson "sigs.k8s.io/json"
)

// skimSeeds are objects whose view the skimmer must read exactly as the API
// server's decoder reads it.
var skimSeeds = []string{
	`{"metadata":{"name":"a","annotations":{"singleton":"true"}},"spec":{"replicas":3,"template":{"spec":{}}}}`,
	`{"spec":null,"metadata":null}`,
	`{"metadata":{"annotations":{"a":"1"},"annotations":{"b":"2"}}}`,
	`{"spec":{"strategy":{"type":"Recreate"}},"spec":{"strategy":{"rollingUpdate":{"maxSurge":1}}}}`,
	`{"spec":{"replicas":2},"spec":null,"spec":{"template":[1,{"a":"}\"]"}]}}`,
	`{"meta\u0064ata":{"name":"escaped member name"},"Metadata":{"name":"other case"}}`,
	` { "metadata" : { "name" : "spaced" } , "status" : {"x":[[[[]]]]} } `,
	`{"kind":"Deployment","spec":{"template":"a string \\ with \" escapes"}}`,
	`{}`,
}

func TestSkimMatchesTheAPIServerDecoder(t *testing.T) {
	for _, s := range skimSeeds {
		checkSkim(t, []byte(s))
	}
}

// FuzzSkim checks, on any input the API server's decoder accepts, that the
// skimmer reads the same view; on any other input, that it does not panic.
func FuzzSkim(f *testing.F) {
	for _, s := range skimSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSkim(t, b)
	})
}

func checkSkim(t *testing.T, b []byte) {
	t.Helper()
	got, err := decodeView(b)
	want := &deploymentView{}
	if oracleErr := sigsjson.UnmarshalCaseSensitivePreserveInts(b, want); oracleErr != nil {
		return // the review decoder refuses it before the handler sees it
	}
	if err != nil {
		t.Fatalf("skim %q: %v; the API server's decoder reads it", b, err)
	}
	if !reflect.DeepEqual(normalizeView(got), normalizeView(want)) {
		t.Fatalf("skim %q:\n got %+v\nwant %+v", b, got, want)
	}
}

// normalizeView makes views comparable: an empty raw template is no template.
func normalizeView(v *deploymentView) deploymentView {
	out := *v
	if v.Spec != nil {
		s := *v.Spec
		if len(s.Template) == 0 {
			s.Template = nil
		}
		out.Spec = &s
	}
	return out
}
