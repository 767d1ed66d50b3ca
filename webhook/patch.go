package webhook

import (
	"encoding/json"

	"gomodules.xyz/jsonpatch/v2"
)

// diff returns the JSON patch that turns before into after. Both sides are
// encoded by the same typed marshaller, so fields the typed struct drops
// (unknown fields, nulls) never show up as spurious operations; every path it
// touches exists in the request's raw object because the typed object was
// decoded from it.
func diff(before, after any) ([]jsonpatch.Operation, error) {
	a, err := json.Marshal(before)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(after)
	if err != nil {
		return nil, err
	}
	return jsonpatch.CreatePatch(a, b)
}
