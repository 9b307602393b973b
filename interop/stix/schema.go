package stix

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"strings"
	"sync"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The official STIX 2.1 JSON Schemas (schema/README.md says from where;
// BSD-3-Clause, schema/LICENSE). They name each other by URL under
// schemaBase; the loader serves those URLs from this embedded copy.
//
//go:embed schema/common schema/sdos schema/sros schema/observables
var schemaFS embed.FS

const schemaBase = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"

// ErrInvalid is the class of errors about an object that does not
// validate against the STIX 2.1 schemas.
var ErrInvalid = errors.New("stix: object does not validate")

// embeddedLoader serves the schemas' URLs from schemaFS and refuses every
// other URL: validation never touches the network.
type embeddedLoader struct{}

func (embeddedLoader) Load(url string) (any, error) {
	name, ok := strings.CutPrefix(strings.Replace(url, "https://", "http://", 1), schemaBase)
	if !ok {
		return nil, fmt.Errorf("stix: schema %s is not embedded", url)
	}
	b, err := fs.ReadFile(schemaFS, "schema/"+name)
	if err != nil {
		return nil, fmt.Errorf("stix: schema %s: %w", url, err)
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

type validator struct {
	mu      sync.Mutex
	c       *jsonschema.Compiler
	schemas map[string]*jsonschema.Schema // file → compiled
}

var schemas = sync.OnceValue(func() *validator {
	c := jsonschema.NewCompiler()
	c.UseLoader(embeddedLoader{})
	return &validator{c: c, schemas: map[string]*jsonschema.Schema{}}
})

// schemaFile returns the schema file for an object of type typ: its own
// if the STIX 2.1 schemas define it, else the common core of an SDO or
// SRO (an object with created) or of a cyber-observable.
func schemaFile(typ string, o map[string]any) string {
	switch typ {
	case "marking-definition", "extension-definition", "language-content":
		return "common/" + typ + ".json"
	}
	for _, dir := range []string{"sdos", "sros", "observables"} {
		if _, err := fs.Stat(schemaFS, "schema/"+dir+"/"+typ+".json"); err == nil {
			return dir + "/" + typ + ".json"
		}
	}
	if _, ok := o["created"]; ok {
		return "common/core.json"
	}
	return "common/cyber-observable-core.json"
}

func (v *validator) get(file string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.schemas[file]; ok {
		return s, nil
	}
	s, err := v.c.Compile(schemaBase + file)
	if err != nil {
		return nil, fmt.Errorf("stix: embedded schema %s: %w", file, err)
	}
	v.schemas[file] = s
	return s, nil
}

// Validate checks one STIX object (as Decode or encoding/json reads it)
// against the official STIX 2.1 JSON Schema of its type; an object of a
// type the schemas do not define is checked against the common core.
//
// An object of a type an extension definition adds (its extensions name
// one with extension_type "new-sdo", like Incident Core's impact) may
// carry extension properties of that definition's own design under
// extensions (impact's "availability", "monetary"), which the core's
// naming rule (an extension-definition id or a name ending in -ext)
// refuses: those are checked by the extension's definition, which
// crisismesh keeps verbatim, so the core is checked without them.
func Validate(o map[string]any) error {
	typ, _ := o["type"].(string)
	file := schemaFile(typ, o)
	if file == "common/core.json" {
		o = withoutNewSDOProperties(o)
	}
	s, err := schemas().get(file)
	if err != nil {
		return err
	}
	b, err := misp.CanonicalJSON(o)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, file, err)
	}
	return nil
}

// withoutNewSDOProperties returns o without the entries of its extensions
// that follow neither of the core's naming rules, if o is of a type an
// extension definition adds; else o itself.
func withoutNewSDOProperties(o map[string]any) map[string]any {
	exts, _ := o["extensions"].(map[string]any)
	newSDO := false
	for k, v := range exts {
		e, _ := v.(map[string]any)
		if strings.HasPrefix(k, "extension-definition--") && e["extension_type"] == "new-sdo" {
			newSDO = true
		}
	}
	if !newSDO {
		return o
	}
	kept := map[string]any{}
	for k, v := range exts {
		if strings.HasPrefix(k, "extension-definition--") || strings.HasSuffix(k, "-ext") {
			kept[k] = v
		}
	}
	c := maps.Clone(o)
	c["extensions"] = kept
	return c
}
