package patches

import (
	"strings"
	"testing"
)

func TestCelTemplate(t *testing.T) {
	tests := map[string]struct {
		text string
		subs map[string]string
		want string
	}{
		"no placeholder": {text: "plain 'text'", want: `'plain \'text\''`},
		"placeholders inside and at the ends": {
			text: "@a@ is @b@, not @a@",
			subs: map[string]string{"@a@": "x", "@b@": "y"},
			want: `(x) + ' is ' + (y) + ', not ' + (x)`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := celTemplate(tc.text, tc.subs); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestAdmissionPoliciesFollowTheRules checks that what the policies say
// comes from the Go rules: a key added to the product reaches the policy's
// list of known keys, and the messages are the refusals' own.
func TestAdmissionPoliciesFollowTheRules(t *testing.T) {
	ps, err := NewAdmissionPolicies(Policy{})
	if err != nil {
		t.Fatal(err)
	}
	var validating strings.Builder
	for _, v := range ps.Validating.Spec.Variables {
		validating.WriteString(v.Expression + "\n")
	}
	for _, c := range ps.Validating.Spec.MatchConditions {
		validating.WriteString(c.Expression + "\n")
	}
	for _, v := range ps.Validating.Spec.Validations {
		validating.WriteString(v.Expression + "\n" + v.MessageExpression + "\n")
	}
	for _, k := range sortedKnownKeys() {
		if !strings.Contains(validating.String(), celString(k)) {
			t.Errorf("the refusing policy does not know the key %s", k)
		}
	}
	_, modeErr := ParseMode("-", ModeReplicas)
	for _, want := range []string{reasonOf(modeErr), GateOneAtATime, LabelDeployment} {
		if !strings.Contains(validating.String(), want) {
			t.Errorf("the refusing policy lacks %q", want)
		}
	}
	mutation := ps.Mutating.Spec.Mutations[0].JSONPatch.Expression
	for _, want := range []string{jsonPointer(AnnotationOriginalReplicas), jsonPointer(AnnotationOriginalStrategy), jsonPointer(LabelDeployment), celString(GateOneAtATime)} {
		if !strings.Contains(mutation, want) {
			t.Errorf("the mutation lacks %s", want)
		}
	}
}

func TestJSONPointer(t *testing.T) {
	if got := jsonPointer("singleton.dev/a~b"); got != "singleton.dev~1a~0b" {
		t.Errorf("got %s", got)
	}
}
