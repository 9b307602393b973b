package misp

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The MISP event format's JSON Schemas and attribute types, from PyMISP
// (schema/README.md says which commit; BSD-2-Clause, schema/LICENSE).
var (
	//go:embed schema/schema.json
	strictSchemaJSON []byte
	//go:embed schema/schema-lax.json
	laxSchemaJSON []byte
	//go:embed schema/describeTypes.json
	describeTypesJSON []byte
)

// ErrInvalid is the class of errors about an event that does not validate.
var ErrInvalid = errors.New("misp: event does not validate")

// TypeTable is MISP's describeTypes: the attribute types and the
// categories each may have. It is immutable and safe for concurrent use.
type TypeTable struct {
	types      []string
	categories map[string][]string // category → its types
}

// Check returns an error unless typ is a MISP attribute type and category
// one of the categories it may have.
func (t *TypeTable) Check(typ, category string) error {
	if !slices.Contains(t.types, typ) {
		return fmt.Errorf("attribute type %q is not one of MISP's (describeTypes.json)", typ)
	}
	types, ok := t.categories[category]
	if !ok {
		return fmt.Errorf("category %q is not one of MISP's (describeTypes.json)", category)
	}
	if !slices.Contains(types, typ) {
		return fmt.Errorf("type %q is not allowed in category %q (describeTypes.json)", typ, category)
	}
	return nil
}

// Types returns the embedded describeTypes table.
var Types = sync.OnceValue(func() *TypeTable {
	var d struct {
		Result struct {
			Types    []string            `json:"types"`
			Mappings map[string][]string `json:"category_type_mappings"`
		} `json:"result"`
	}
	if err := json.Unmarshal(describeTypesJSON, &d); err != nil || len(d.Result.Types) == 0 {
		panic(fmt.Sprintf("misp: embedded describeTypes.json: %v", err))
	}
	return &TypeTable{types: d.Result.Types, categories: d.Result.Mappings}
})

// validator holds the compiled schemas.
type validator struct {
	strict, lax, attribute *jsonschema.Schema
	// known: for each definition of the strict schema, the properties it
	// names.
	defs map[string]map[string]any
}

var schemas = sync.OnceValue(func() *validator {
	v, err := compileSchemas()
	if err != nil {
		panic(fmt.Sprintf("misp: embedded schemas: %v", err))
	}
	return v
})

func compileSchemas() (*validator, error) {
	c := jsonschema.NewCompiler()
	for name, b := range map[string][]byte{"strict.json": strictSchemaJSON, "lax.json": laxSchemaJSON} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		repair(doc)
		if err := c.AddResource(name, doc); err != nil {
			return nil, err
		}
	}
	var v validator
	var err error
	if v.strict, err = c.Compile("strict.json"); err != nil {
		return nil, err
	}
	if v.lax, err = c.Compile("lax.json"); err != nil {
		return nil, err
	}
	if v.attribute, err = c.Compile("strict.json#/defs/attribute"); err != nil {
		return nil, err
	}
	var raw struct {
		Defs map[string]map[string]any `json:"defs"`
	}
	if err := json.Unmarshal(strictSchemaJSON, &raw); err != nil {
		return nil, err
	}
	v.defs = raw.Defs
	return &v, nil
}

// repair removes, in place, every entry of a "properties" map that is not
// a schema. PyMISP's schema.json has one: defs.sharing_group.properties
// holds a stray copy of its "required" keyword (an array), which the
// draft-04 metaschema refuses (PyMISP's validator does not check its schema
// against the metaschema, ours does). Removed, the schema accepts the same
// events but for one whose sharing group has a field named "required".
func repair(v any) {
	switch v := v.(type) {
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok {
			for k, p := range props {
				if _, ok := p.(map[string]any); !ok {
					delete(props, k)
				}
			}
		}
		for _, x := range v {
			repair(x)
		}
	case []any:
		for _, x := range v {
			repair(x)
		}
	}
}

// Validation is what Validate found about a valid event.
type Validation struct {
	// Unknown lists the JSON paths of fields the 2.4 strict schema does
	// not define (Object, Sighting, first_seen, a tag's user_id, …): they
	// were set aside for the strict check and checked by the lax schema.
	Unknown []string
}

// Validate checks one event ({"Event": …}, as encoding/json or Decode
// reads it) against MISP's JSON Schema:
//   - the strict schema (schema.json), on the event with every field that
//     schema does not define set aside: the 2.4 schema predates objects,
//     sightings and others that MISP writes today, and refuses any field
//     it does not name;
//   - the lax schema (schema-lax.json), on the whole event;
//   - each object's attributes against the strict schema's attribute;
//   - every attribute's type and category against describeTypes.json.
func Validate(event map[string]any) (Validation, error) {
	v := schemas()
	inst, err := toSchemaValue(event)
	if err != nil {
		return Validation{}, err
	}
	var val Validation
	if err := v.lax.Validate(inst); err != nil {
		return val, fmt.Errorf("%w: schema-lax.json: %w", ErrInvalid, err)
	}
	known := v.setAside(inst.(map[string]any), "event", "$.Event", &val.Unknown, true)
	if err := v.strict.Validate(known); err != nil {
		return val, fmt.Errorf("%w: schema.json: %w", ErrInvalid, err)
	}
	ev, _ := inst.(map[string]any)["Event"].(map[string]any)
	check := func(p string, a any) error {
		am, _ := a.(map[string]any)
		if err := Types().Check(str(am["type"]), str(am["category"])); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, p, err)
		}
		return nil
	}
	attrs, _ := ev["Attribute"].([]any)
	for i, a := range attrs {
		if err := check(fmt.Sprintf("$.Event.Attribute[%d]", i), a); err != nil {
			return val, err
		}
	}
	objs, _ := ev["Object"].([]any)
	for i, o := range objs {
		om, _ := o.(map[string]any)
		oattrs, _ := om["Attribute"].([]any)
		for j, a := range oattrs {
			p := fmt.Sprintf("$.Event.Object[%d].Attribute[%d]", i, j)
			if err := check(p, a); err != nil {
				return val, err
			}
			if err := v.attribute.Validate(v.setAside(a, "attribute", p, &val.Unknown, false)); err != nil {
				return val, fmt.Errorf("%w: %s: schema.json attribute: %w", ErrInvalid, p, err)
			}
		}
	}
	sort.Strings(val.Unknown)
	return val, nil
}

// toSchemaValue turns v into the values the schema library walks
// (json.Number numbers), through JSON.
func toSchemaValue(v any) (any, error) {
	b, err := CanonicalJSON(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// setAside returns a copy of v without the fields the strict schema's
// definition def does not name, recursively, adding their paths to
// unknown. At the top (root), v is {"Event": …}.
func (v *validator) setAside(x any, def, p string, unknown *[]string, root bool) any {
	if root {
		m, _ := x.(map[string]any)
		out := map[string]any{}
		for k, val := range m {
			if k != "Event" {
				*unknown = append(*unknown, "$."+k)
				continue
			}
			out[k] = v.setAside(val, "event", p, unknown, false)
		}
		return out
	}
	m, ok := x.(map[string]any)
	d := v.defs[def]
	if !ok || d == nil {
		return x
	}
	props, _ := d["properties"].(map[string]any)
	out := make(map[string]any, len(m))
	for k, val := range m {
		ps, ok := props[k].(map[string]any)
		if !ok {
			*unknown = append(*unknown, p+"."+k)
			continue
		}
		out[k] = val
		ref, _ := ps["$ref"].(string)
		if items, ok := ps["items"].(map[string]any); ok {
			ref, _ = items["$ref"].(string)
		}
		sub := refDef(ref)
		if sub == "" {
			continue
		}
		if arr, ok := val.([]any); ok {
			na := make([]any, len(arr))
			for i, e := range arr {
				na[i] = v.setAside(e, sub, fmt.Sprintf("%s.%s[%d]", p, k, i), unknown, false)
			}
			out[k] = na
		} else {
			out[k] = v.setAside(val, sub, p+"."+k, unknown, false)
		}
	}
	return out
}

// refDef returns the definition a "#/defs/NAME" reference names.
func refDef(ref string) string {
	const prefix = "#/defs/"
	if len(ref) > len(prefix) && ref[:len(prefix)] == prefix {
		return ref[len(prefix):]
	}
	return ""
}
