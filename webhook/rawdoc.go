package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// firstMissing returns the shortest prefix of the JSON pointer path that doc
// does not have (or holds as a scalar, such as null, where the path needs an
// object), or "" when doc has all of it or an array index makes it
// undecidable: array operations are left as computed.
func firstMissing(doc *rawNode, path string) (string, error) {
	segs := strings.Split(path, "/")[1:]
	cur := doc
	for i, s := range segs {
		next, kind, err := cur.child(s)
		switch {
		case err != nil:
			return "", err
		case kind == '{' && next == nil:
			return "/" + strings.Join(segs[:i+1], "/"), nil
		case kind == '[' && next == nil:
			return "", nil
		case kind != '{' && kind != '[':
			// A scalar or null where the path goes on: the parent is rewritten.
			if i == 0 {
				return "", nil
			}
			return "/" + strings.Join(segs[:i], "/"), nil
		}
		cur = next
	}
	return "", nil
}

// rawNode is a value of the raw object, decoded one level at a time as
// paths go through it: finding whether the few paths of a patch exist reads
// the objects on those paths only, not the whole object into maps.
type rawNode struct {
	raw     json.RawMessage
	load    func() ([]byte, error) // if set, reads raw on first use
	decoded bool
	fields  map[string]*rawNode // an object's members
	items   []*rawNode          // an array's elements
}

// child returns the member (object) or element (array) that the JSON
// pointer segment seg names, nil if there is none, and the kind of n: '{',
// '[', or another byte for a scalar or null.
func (n *rawNode) child(seg string) (*rawNode, byte, error) {
	if n.load != nil {
		raw, err := n.load()
		if err != nil {
			return nil, 0, err
		}
		n.raw, n.load = raw, nil
	}
	t := bytes.TrimLeft(n.raw, " \t\r\n")
	if len(t) == 0 {
		return nil, 0, nil
	}
	kind := t[0]
	if !n.decoded && (kind == '{' || kind == '[') {
		if err := n.decode(kind); err != nil {
			return nil, kind, err
		}
	}
	switch kind {
	case '{':
		return n.fields[unescape(seg)], kind, nil
	case '[':
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(n.items) {
			return nil, kind, nil
		}
		return n.items[i], kind, nil
	}
	return nil, kind, nil
}

func (n *rawNode) decode(kind byte) error {
	n.decoded = true
	if kind == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(n.raw, &m); err != nil {
			return err
		}
		n.fields = make(map[string]*rawNode, len(m))
		for k, v := range m {
			n.fields[k] = &rawNode{raw: v}
		}
		return nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(n.raw, &a); err != nil {
		return err
	}
	n.items = make([]*rawNode, len(a))
	for i, v := range a {
		n.items[i] = &rawNode{raw: v}
	}
	return nil
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

// unescape decodes a JSON pointer segment: ~1 is /, ~0 is ~.
func unescape(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}
