package misp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Limits of what Decode reads.
const (
	// MaxFile bounds one MISP file (an event, a list or a manifest).
	MaxFile = 256 << 20
	// MaxDepth bounds the nesting of JSON values, so a hostile file cannot
	// exhaust the stack of whoever walks it.
	MaxDepth = 64
)

// ErrFormat is the class of errors about input that is not a MISP event,
// list or feed at all (as opposed to an item refused by the mapping, a
// [Problem]).
var ErrFormat = errors.New("misp: not a MISP event, list or feed")

// Event is one MISP event as read: where it was in its input and its
// fields, as JSON values (objects are map[string]any, numbers json.Number).
// The fields are the decoder's own; callers may keep them.
type Event struct {
	// Path is the JSON path of the event object in its input, e.g.
	// "$.response[2].Event" or "feed/<uuid>.json$.Event".
	Path string
	// Fields are the event's fields, Attribute and Object included.
	Fields map[string]any
}

// Decode reads a MISP event ({"Event": …}, or the event object alone, as
// PyMISP writes it), a list of them ({"response": [{"Event": …}, …]}, as
// MISP's search API answers) or a JSON array of events.
func Decode(data []byte) ([]Event, error) {
	return decode(data, "$")
}

func decode(data []byte, root string) ([]Event, error) {
	if len(data) > MaxFile {
		return nil, fmt.Errorf("%w: %s: %d bytes, more than %d", ErrFormat, root, len(data), MaxFile)
	}
	v, err := ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFormat, root, err)
	}
	var list []any
	base := root
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["response"]; ok {
			l, ok := r.([]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s.response is not an array", ErrFormat, root)
			}
			list, base = l, root+".response"
		} else {
			list, base = []any{v}, ""
		}
	case []any:
		list = v
	default:
		return nil, fmt.Errorf("%w: %s is neither an object nor an array", ErrFormat, root)
	}
	events := make([]Event, 0, len(list))
	for i, item := range list {
		p := root
		if base != "" {
			p = fmt.Sprintf("%s[%d]", base, i)
		}
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not an object", ErrFormat, p)
		}
		if ev, ok := obj["Event"]; ok {
			f, ok := ev.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s.Event is not an object", ErrFormat, p)
			}
			events = append(events, Event{Path: p + ".Event", Fields: f})
			continue
		}
		if _, ok := obj["info"]; !ok {
			if _, ok := obj["uuid"]; !ok {
				return nil, fmt.Errorf("%w: %s has neither Event nor the fields of one (info, uuid)", ErrFormat, p)
			}
		}
		events = append(events, Event{Path: p, Fields: obj})
	}
	return events, nil
}

// ParseJSON decodes one JSON value with numbers kept as written, refusing
// trailing data and nesting deeper than MaxDepth.
func ParseJSON(data []byte) (any, error) {
	if err := checkDepth(data); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// checkDepth refuses JSON nested deeper than MaxDepth, counting brackets
// outside strings.
func checkDepth(data []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return fmt.Errorf("nested deeper than %d", MaxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// Manifest is the name of a MISP feed's index file.
const Manifest = "manifest.json"

// ReadFeed reads a MISP feed from fsys: manifest.json, whose keys are the
// events' UUIDs, and one <uuid>.json per event (each {"Event": …}), as
// MISP's feed generator writes them and MISP reads them. Every event the
// manifest names must be there and carry that UUID.
func ReadFeed(fsys fs.FS) ([]Event, error) {
	raw, err := readLimited(fsys, Manifest)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	v, err := ParseJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFormat, Manifest, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an object of event UUIDs", ErrFormat, Manifest)
	}
	uuids := make([]string, 0, len(m))
	for u := range m {
		if !ValidUUID(u) {
			return nil, fmt.Errorf("%w: %s: key %q is not a UUID", ErrFormat, Manifest, u)
		}
		uuids = append(uuids, u)
	}
	slices.Sort(uuids)
	var events []Event
	for _, u := range uuids {
		name := u + ".json"
		b, err := readLimited(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("%w: %s names event %s: %w", ErrFormat, Manifest, u, err)
		}
		es, err := decode(b, name+"$")
		if err != nil {
			return nil, err
		}
		if len(es) != 1 || str(es[0].Fields["uuid"]) != u {
			return nil, fmt.Errorf("%w: %s does not hold exactly event %s", ErrFormat, name, u)
		}
		events = append(events, es...)
	}
	return events, nil
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	st, err := fs.Stat(fsys, path.Clean(name))
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFile {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", name, st.Size(), MaxFile)
	}
	return fs.ReadFile(fsys, name)
}

// ValidUUID reports whether s is a UUID in its canonical text form
// (8-4-4-4-12 hexadecimal digits), as MISP writes them.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", rune(c)) {
				return false
			}
		}
	}
	return true
}

// str returns a JSON string or number as text, "" for anything else.
func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}
