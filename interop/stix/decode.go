package stix

import (
	"errors"
	"fmt"

	"github.com/crisismesh/crisismesh/interop/misp"
)

// ErrFormat is the class of errors about input that is not a STIX 2.1
// bundle at all (as opposed to an object refused by the mapping).
var ErrFormat = errors.New("stix: not a STIX 2.1 bundle")

// Object is one STIX object as read: its JSON path in the bundle
// ($.objects[3]) and its fields, as JSON values (objects are
// map[string]any, numbers json.Number).
type Object struct {
	Path   string
	Fields map[string]any
}

// Bundle is a STIX bundle as read.
type Bundle struct {
	ID      string
	Objects []Object
}

// Decode reads a STIX 2.1 bundle ({"type": "bundle", "id": …, "objects":
// […]}), with the limits of misp.ParseJSON (size, nesting). Objects that
// are not JSON objects are kept for Map to refuse with their path.
func Decode(data []byte) (*Bundle, error) {
	if len(data) > misp.MaxFile {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrFormat, len(data), misp.MaxFile)
	}
	v, err := misp.ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf(`%w: $ is not an object (a bundle, or one STIX object)`, ErrFormat)
	}
	if typ, _ := m["type"].(string); typ != "bundle" && typ != "" {
		// One STIX object on its own (as OASIS's interop examples are):
		// read as a bundle of that object, at path $.
		return &Bundle{Objects: []Object{{Path: "$", Fields: m}}}, nil
	}
	if m["type"] != "bundle" {
		return nil, fmt.Errorf(`%w: $ is not an object of type "bundle"`, ErrFormat)
	}
	id, _ := m["id"].(string)
	if typ, ok := idType(id); !ok || typ != "bundle" {
		return nil, fmt.Errorf("%w: $.id: malformed bundle id %q", ErrFormat, id)
	}
	list, ok := m["objects"].([]any)
	if m["objects"] != nil && !ok {
		return nil, fmt.Errorf("%w: $.objects is not an array", ErrFormat)
	}
	b := &Bundle{ID: id}
	for i, o := range list {
		f, _ := o.(map[string]any)
		b.Objects = append(b.Objects, Object{Path: fmt.Sprintf("$.objects[%d]", i), Fields: f})
	}
	return b, nil
}

// idType splits a STIX identifier TYPE--UUID and returns its type, if the
// identifier is well formed: a type of lower-case letters, digits and
// hyphens and an RFC 4122 UUID. Upper-case hex digits are accepted, as
// the official schema's identifier pattern accepts them (OASIS's own
// infrastructure example has one); an ID is kept and compared as written.
func idType(id string) (string, bool) {
	const uuidLen = 36
	if len(id) < uuidLen+5 || id[len(id)-uuidLen-2:len(id)-uuidLen] != "--" {
		return "", false
	}
	typ, u := id[:len(id)-uuidLen-2], id[len(id)-uuidLen:]
	if !misp.ValidUUID(u) || !validType(typ) {
		return "", false
	}
	return typ, true
}

// validType reports whether s is a STIX type name: 3 to 250 characters,
// lower-case ASCII letters, digits and single hyphens, not starting or
// ending with a hyphen.
func validType(s string) bool {
	if len(s) < 3 || len(s) > 250 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && s[i-1] != '-':
		default:
			return false
		}
	}
	return true
}
