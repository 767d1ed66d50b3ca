package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The Deployment handler reads a handful of fields out of objects of up to
// megabytes. Decoding them with encoding/json would scan the whole object
// twice more (validation, then decoding), on top of the scan that decoded
// the AdmissionReview, and the handler would cost twice the floor. Skimming
// finds the members it needs by their boundaries only, and decodes just
// those members with encoding/json, which validates what it decodes. What
// is skimmed over is not validated here: on the server, the AdmissionReview
// decoder has validated the whole body, the object included.
//
// Member names are matched case-sensitively, as the API server's decoder
// does, and when a name appears twice the last one wins, as in encoding/json.

// errTruncated reports an object that ends too early.
var errTruncated = errors.New("unexpected end of JSON input")

// skimObject calls fn with the name and the raw value of every member of
// the JSON object b (surrounded by optional white space). A JSON null has no
// members. Anything else is an error that says what b is.
func skimObject(b []byte, fn func(name string, value []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) {
		return errTruncated
	}
	switch b[i] {
	case '{':
	case 'n':
		if bytes.Equal(bytes.TrimSpace(b[i:]), []byte("null")) {
			return nil
		}
		return fmt.Errorf("invalid character %q looking for an object", b[i])
	default:
		return fmt.Errorf("got %s, want an object", describeJSON(b[i]))
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("invalid object: want a member name at offset %d", i)
		}
		end, err := skipString(b, i)
		if err != nil {
			return err
		}
		name, err := memberName(b[i:end])
		if err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("invalid object: want ':' after member %q", name)
		}
		start := skipSpace(b, i+1)
		end, err = skipValue(b, start)
		if err != nil {
			return err
		}
		if err := fn(name, b[start:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return errTruncated
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return nil
		default:
			return fmt.Errorf("invalid object: want ',' or '}' after member %q", name)
		}
	}
}

// memberName returns the name of a quoted member, unescaping it if needed.
func memberName(quoted []byte) (string, error) {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1 : len(quoted)-1]), nil
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return "", fmt.Errorf("invalid member name: %w", err)
	}
	return s, nil
}

// skipValue returns the offset just past the JSON value starting at b[i].
// Strings are skipped honouring escapes; objects and arrays by counting
// brackets outside strings, without recursion, so any depth is fine.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errTruncated
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
	default:
		j := i
		for j < len(b) && !isDelimiter(b[j]) {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("invalid character %q looking for a value", b[i])
		}
		return j, nil
	}
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			end, err := skipString(b, j)
			if err != nil {
				return 0, err
			}
			j = end - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, errTruncated
}

// skipString returns the offset just past the string starting at b[i]. It
// jumps from quote to quote (bytes.IndexByte is vectorised); a quote preceded
// by an odd number of backslashes is escaped.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errTruncated
		}
		q := j + k
		backslashes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ':', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// describeJSON names the kind of JSON value that starts with c.
func describeJSON(c byte) string {
	switch {
	case c == '"':
		return "a string"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return fmt.Sprintf("invalid character %q", c)
}
