package webhook

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// patchFor returns the JSON patch that turns raw, the object as the API
// server sent it, into mutated, the JSON encoding of the mutated typed
// object. It is controller-runtime's defaulter answer:
// admission.PatchResponseFromRaw(raw, mutated) (a jsonpatch.CreatePatch),
// without the operations that the patch from raw to original, the JSON
// encoding of raw decoded, also has.
//
// Those operations say how the Go type reads raw, not what the mutation
// changed: a remove is a field the type cannot hold (an unknown field, a
// null), which must survive (controller-runtime drops these only); an add
// or a replace is a value the type writes where raw has none or another
// spelling of it (`"resources":{}`, `"status":{}`, `null` for `{}`). raw
// without them decodes as original does, so the patch still yields exactly
// mutated once decoded, and `singleton-webhook mutate` does not write the
// type's empty values into a user's manifest. An object from the API server
// is in the type's encoding: when byte for byte (as the Go encoder writes
// it, the benchmark's reviews), CreatePatch answers from a bytes.Equal.
//
// The operations come in a stable order, so one request always gets the
// same bytes: by path, array indices numerically.
func patchFor(raw, original, mutated []byte) ([]jsonpatch.Operation, error) {
	ops, err := jsonpatch.CreatePatch(raw, mutated)
	if err != nil || len(ops) == 0 {
		return ops, err
	}
	decoding, err := jsonpatch.CreatePatch(raw, original)
	if err != nil {
		return nil, err
	}
	if len(decoding) > 0 {
		byPath := make(map[string]jsonpatch.Operation, len(decoding))
		for _, op := range decoding {
			byPath[op.Path] = op
		}
		ops = slices.DeleteFunc(ops, func(op jsonpatch.Operation) bool {
			d, ok := byPath[op.Path]
			return ok && d.Operation == op.Operation && reflect.DeepEqual(d.Value, op.Value)
		})
	}
	slices.SortStableFunc(ops, compareOps)
	return ops, nil
}

// compareOps orders operations by path, array indices numerically.
// CreatePatch emits them in map order; only the operations on an array's
// tail depend on their order, removes last index first, adds first index
// first, and they keep it. It compares the paths segment by segment in
// place: the handler sorts every patch with it.
func compareOps(a, b jsonpatch.Operation) int {
	ap, bp := a.Path, b.Path
	for {
		as, arest, aMore := strings.Cut(ap, "/")
		bs, brest, bMore := strings.Cut(bp, "/")
		if as != bs {
			an, aNum := arrayIndex(as)
			bn, bNum := arrayIndex(bs)
			switch {
			case !aNum || !bNum:
				return strings.Compare(as, bs)
			case a.Operation == "remove" && b.Operation == "remove" && !aMore && !bMore:
				return bn - an
			}
			return an - bn
		}
		if !aMore || !bMore {
			switch {
			case aMore:
				return 1
			case bMore:
				return -1
			}
			return 0
		}
		ap, bp = arest, brest
	}
}

// arrayIndex reads a path segment made of digits only as an array index.
func arrayIndex(s string) (int, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
