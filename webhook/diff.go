package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// diff is the handler's patch: the general JSON patch between the typed
// object before and after the mutation, as every injector computes it. It
// returns the JSON patch that turns raw, the object as the API server
// sent it (read only if needed), into after. before is raw decoded into the typed struct. Both typed
// sides are encoded by the same marshaller, so fields the typed struct drops
// (unknown fields, nulls) never show up as spurious operations. The typed
// encoding also writes struct fields raw may lack (`"strategy":{}`), so the
// operations are then anchored on raw, and put in a stable order so the same
// request always gets the same bytes.
//
// before and after, when pointers to structs of one type, are pruned first
// (pruneEqual): diff owns them.
func diff(raw func() ([]byte, error), before, after any) ([]jsonpatch.Operation, error) {
	seen := presence{}
	pa, pb := reflect.ValueOf(before), reflect.ValueOf(after)
	if pa.Kind() == reflect.Pointer && pb.Type() == pa.Type() && pa.Elem().Kind() == reflect.Struct && !pa.IsNil() && !pb.IsNil() {
		pruneEqual(pa.Elem(), pb.Elem(), "", seen)
	}
	a, err := json.Marshal(before)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(after)
	if err != nil {
		return nil, err
	}
	ops, err := jsonpatch.CreatePatch(a, b)
	if err != nil || len(ops) == 0 {
		return ops, err
	}
	if ops, err = anchor(seen, &rawNode{load: raw}, b, ops); err != nil {
		return nil, err
	}
	sort.SliceStable(ops, func(i, j int) bool { return opLess(ops[i], ops[j]) })
	return ops, nil
}

// jsonMarshaler is the interface of types with their own JSON encoding.
var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// presence records, for each JSON path pruneEqual entered, whether the
// object before the mutation has a value there: true when its typed value
// is not zero (the decoder set it, so the raw object has it), false when it
// is zero (the raw object may lack it: the typed encoding writes some zero
// values anyway, such as "strategy":{}).
type presence map[string]bool

// pruneEqual zeroes, in a and b (structs of one type), every field equal in
// both, entering struct fields (and pointers to structs) to compare their
// fields, and records in seen the presence of what it enters and keeps. What
// remains differs, so the JSON diff of the two has the operations of the
// diff of the whole objects, computed from documents a fraction of their
// size: a Deployment's containers are left out unless the mutation changed
// them. Slices, maps and types with their own JSON encoding are compared
// whole, never entered: an array diff needs the whole array.
func pruneEqual(a, b reflect.Value, path string, seen presence) {
	for i := range a.NumField() {
		fa, fb := a.Field(i), b.Field(i)
		if !fa.CanSet() {
			continue
		}
		t := fa.Type()
		k := t.Kind()
		custom := (k == reflect.Struct || k == reflect.Pointer) &&
			(t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler))
		switch {
		case !custom && k == reflect.Struct:
			p := jsonPath(path, a.Type().Field(i))
			if p != path {
				seen[p] = !fa.IsZero()
			}
			pruneEqual(fa, fb, p, seen)
		case !custom && k == reflect.Pointer && t.Elem().Kind() == reflect.Struct && !fa.IsNil() && !fb.IsNil():
			p := jsonPath(path, a.Type().Field(i))
			seen[p] = true
			pruneEqual(fa.Elem(), fb.Elem(), p, seen)
		case equal(fa, fb):
			fa.SetZero()
			fb.SetZero()
		default:
			seen[jsonPath(path, a.Type().Field(i))] = !fa.IsZero()
		}
	}
}

// equal reports whether two values of one type are deeply equal. It walks
// them as reflect.DeepEqual does, minus what API objects never need: the
// record of visited pointers (they hold no cycles) and the copies to the
// heap that DeepEqual's interface arguments cost. It may answer false where
// DeepEqual answers true (two functions, two channels): the field is then
// kept, and the JSON diff finds it unchanged.
func equal(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Kind() == reflect.Interface && a.Elem().Type() != b.Elem().Type() {
			return false
		}
		return equal(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := range a.NumField() {
			if !equal(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		if a.Type().Elem().Kind() == reflect.Uint8 {
			return bytes.Equal(a.Bytes(), b.Bytes())
		}
		fallthrough
	case reflect.Array:
		for i := range a.Len() {
			if !equal(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return false
		}
		it := a.MapRange()
		for it.Next() {
			v := b.MapIndex(it.Key())
			if !v.IsValid() || !equal(it.Value(), v) {
				return false
			}
		}
		return true
	}
	return false
}

// jsonPath is the JSON pointer of struct field f under path: its JSON name
// appended, or path itself for an embedded struct encoded inline.
func jsonPath(path string, f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" && f.Anonymous {
		return path
	}
	if name == "" {
		name = f.Name
	}
	return path + "/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
}

// anchor rewrites ops so that each applies to rawDoc. An operation below a
// path rawDoc lacks becomes one add of the highest missing path, its value
// taken from after; a replace of a missing path becomes an add, a remove of
// one is dropped.
func anchor(seen presence, rawDoc *rawNode, after []byte, ops []jsonpatch.Operation) ([]jsonpatch.Operation, error) {
	out := make([]jsonpatch.Operation, 0, len(ops))
	added := map[string]bool{}
	var afterDoc any
	for _, op := range ops {
		missing := ""
		var err error
		if !seen.has(op) {
			missing, err = firstMissing(rawDoc, op.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("read raw object: %w", err)
		}
		switch {
		case missing == "":
			out = append(out, op)
		case missing == op.Path && op.Operation == "remove":
		case missing == op.Path:
			out = append(out, jsonpatch.NewOperation("add", op.Path, op.Value))
		case !added[missing]:
			if afterDoc == nil {
				if err := json.Unmarshal(after, &afterDoc); err != nil {
					return nil, fmt.Errorf("read mutated object: %w", err)
				}
			}
			if v, ok := lookup(afterDoc, missing); ok {
				added[missing] = true
				out = append(out, jsonpatch.NewOperation("add", missing, v))
			}
		}
	}
	return out, nil
}

// has reports whether the raw object certainly has the parents of op's path
// and, unless op adds it, the path itself, as far as seen tells: below what
// pruneEqual entered (inside a map or an array, which hold only what the raw
// object had) it does. false: the raw object must be read to know.
func (seen presence) has(op jsonpatch.Operation) bool {
	for i := 1; i < len(op.Path); i++ {
		if op.Path[i] != '/' {
			continue
		}
		present, known := seen[op.Path[:i]]
		if !known {
			return true
		}
		if !present {
			return false
		}
	}
	present, known := seen[op.Path]
	return !known || present || op.Operation == "add"
}

// opLess orders operations by path, array indices numerically. CreatePatch
// emits them in map order; only the removes of an array's tail depend on
// their order (last index first), and they keep it.
func opLess(a, b jsonpatch.Operation) bool {
	as, bs := strings.Split(a.Path, "/"), strings.Split(b.Path, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		an, aErr := strconv.Atoi(as[i])
		bn, bErr := strconv.Atoi(bs[i])
		if aErr != nil || bErr != nil {
			return as[i] < bs[i]
		}
		if a.Operation == "remove" && b.Operation == "remove" && i == len(as)-1 && i == len(bs)-1 {
			return an > bn
		}
		return an < bn
	}
	return len(as) < len(bs)
}
