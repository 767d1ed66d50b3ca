package ops

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// assertDocumented fails for every JSON field of v's type (and of the
// structs it holds) that the section of docs/status-check.md headed by
// version does not name as `field`.
func assertDocumented(t *testing.T, version string, v any) {
	t.Helper()
	b, err := os.ReadFile("../../docs/status-check.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "### "+version)
	if i < 0 {
		t.Fatalf("docs/status-check.md has no section \"### %s\"", version)
	}
	section := doc[i+4:]
	if j := strings.Index(section, "\n### "); j >= 0 {
		section = section[:j]
	}
	for _, f := range jsonFields(reflect.TypeOf(v), map[reflect.Type]bool{}) {
		if !strings.Contains(section, "`"+f+"`") {
			t.Errorf("field %q of %s is not documented in docs/status-check.md", f, version)
		}
	}
}

// jsonFields lists the JSON names of t's exported fields, recursively.
func jsonFields(t reflect.Type, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t == reflect.TypeOf(time.Time{}) {
		return nil
	}
	seen[t] = true
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		out = append(out, name)
		out = append(out, jsonFields(f.Type, seen)...)
	}
	return out
}
