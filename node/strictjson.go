package node

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// decodeBody decodes a request's JSON body into v strictly, and answers
// the request itself when it cannot: 413 when the body is over its
// route's limit, 400 naming the field for an unknown field, a key given
// twice, a key that matches a field only when case is ignored (encoding/
// json would take "TLP" for "tlp"), or anything after the one JSON value.
// Every handler that takes a JSON body decodes it here.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	err := decodeStrict(r.Body, v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "too-large",
			fmt.Sprintf("request body over %d bytes, the limit of %s %s", tooBig.Limit, r.Method, r.URL.Path))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad-request", "request body: "+err.Error())
		return false
	}
	return true
}

// decodeStrict reads one JSON value from rd into v and refuses what
// decodeBody says.
func decodeStrict(rd io.Reader, v any) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	if err := checkKeys(b, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty; want a JSON object")
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("trailing data after the JSON value at byte %d", dec.InputOffset())
	}
	return nil
}

// checkKeys walks the JSON in b along the Go type t and refuses keys given
// twice in one object and keys that name no field of t exactly.
func checkKeys(b []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	err := walkKeys(dec, t, "")
	if errors.Is(err, io.EOF) {
		return nil // an empty body: Decode says so
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return nil // Decode names the syntax error
	}
	return err
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func walkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)) {
		t = nil // decodes itself: only duplicates are checked below
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		var elem reflect.Type
		if t != nil && t.Kind() == reflect.Map {
			elem = t.Elem()
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			name := path + key
			if seen[key] {
				return fmt.Errorf("field %q given twice", name)
			}
			seen[key] = true
			ft := elem
			if fields != nil {
				var ok bool
				if ft, ok = fields[key]; !ok {
					for f := range fields {
						if strings.EqualFold(f, key) {
							return fmt.Errorf("field %q: no such field (names are case-sensitive: did you mean %q?)", name, path+f)
						}
					}
					return fmt.Errorf("unknown field %q", name)
				}
			}
			if err := walkKeys(dec, ft, name+"."); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, elem, fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields (as encoding/json
// names them, embedded structs flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
