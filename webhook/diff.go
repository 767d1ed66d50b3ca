package webhook

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// diff is the handler's patch: the general JSON patch between the typed
// object before and after the mutation, as every injector computes it. It
// returns the JSON patch that turns raw, the object as the API server
// sent it, into after. before is raw decoded into the typed struct. Both typed
// sides are encoded by the same marshaller, so fields the typed struct drops
// (unknown fields, nulls) never show up as spurious operations. The typed
// encoding also writes struct fields raw may lack (`"strategy":{}`), so the
// operations are then anchored on raw, and put in a stable order so the same
// request always gets the same bytes.
func diff(raw []byte, before, after any) ([]jsonpatch.Operation, error) {
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
	var rawDoc any
	if err := json.Unmarshal(raw, &rawDoc); err != nil {
		return nil, fmt.Errorf("read raw object: %w", err)
	}
	if ops, err = anchor(rawDoc, b, ops); err != nil {
		return nil, err
	}
	sort.SliceStable(ops, func(i, j int) bool { return opLess(ops[i], ops[j]) })
	return ops, nil
}

// anchor rewrites ops so that each applies to rawDoc. An operation below a
// path rawDoc lacks becomes one add of the highest missing path, its value
// taken from after; a replace of a missing path becomes an add, a remove of
// one is dropped.
func anchor(rawDoc any, after []byte, ops []jsonpatch.Operation) ([]jsonpatch.Operation, error) {
	out := make([]jsonpatch.Operation, 0, len(ops))
	added := map[string]bool{}
	var afterDoc any
	for _, op := range ops {
		missing := firstMissing(rawDoc, op.Path)
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

// firstMissing returns the shortest prefix of the JSON pointer path that doc
// does not have (or holds as a scalar, such as null, where the path needs an
// object), or "" when doc has all of it or an array index makes it
// undecidable: array operations are left as computed.
func firstMissing(doc any, path string) string {
	segs := strings.Split(path, "/")[1:]
	cur := doc
	for i, s := range segs {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[unescape(s)]
			if !ok {
				return "/" + strings.Join(segs[:i+1], "/")
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n >= len(v) {
				return ""
			}
			cur = v[n]
		default:
			// A scalar or null where the path goes on: the parent is rewritten.
			if i == 0 {
				return ""
			}
			return "/" + strings.Join(segs[:i], "/")
		}
	}
	return ""
}

// lookup returns the value at a JSON pointer path of doc.
func lookup(doc any, path string) (any, bool) {
	cur := doc
	for _, s := range strings.Split(path, "/")[1:] {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[unescape(s)]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n >= len(v) {
				return nil, false
			}
			cur = v[n]
		default:
			return nil, false
		}
	}
	return cur, true
}

func unescape(s string) string {
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
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
