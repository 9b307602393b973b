package stix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Mapped lists the types whose meaning crisismesh reads (a text for
// people, the parent of relationships and sightings); objects of every
// other type are kept and exported back just the same.
var Mapped = []string{"identity", "report", "incident", "indicator", "observed-data", "note",
	"course-of-action", "relationship", "sighting", "marking-definition"}

// The official TLP marking definitions: TLP 2.0 (the extension
// definition's) and TLP 1.0 (STIX 2.1 section 7.2.1.4), by ID.
var (
	tlp2 = map[string]log.TLP{
		"marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": log.TLPClear,
		"marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": log.TLPGreen,
		"marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": log.TLPAmber,
		"marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": log.TLPAmberStrict,
		"marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": log.TLPRed,
	}
	tlp1 = map[string]log.TLP{
		"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": log.TLPClear, // white
		"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5a41da": log.TLPGreen,
		"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": log.TLPAmber,
		"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": log.TLPRed,
	}
)

// tlpID returns the official TLP 2.0 marking definition of label t.
func tlpID(t log.TLP) string {
	for id, l := range tlp2 {
		if l == t {
			return id
		}
	}
	return ""
}

// wellKnown reports whether a reference to id needs no object in the
// bundle: the official TLP marking definitions and extension definitions.
func wellKnown(id string) bool {
	_, t2 := tlp2[id]
	_, t1 := tlp1[id]
	return t2 || t1 || strings.HasPrefix(id, "extension-definition--")
}

// Item is one entry to write: one STIX object.
type Item struct {
	// Path is the JSON path of the object in its bundle.
	Path  string
	Intel log.Intel
	// Body is the entry's body: kind intel, its TLP, a text for people
	// and the encoded Intel as payload.
	Body log.Body
}

// Plan is what an import would write.
type Plan struct {
	Items   []Item         // the valid objects, in bundle order
	Refused []misp.Problem // every refusal, with its JSON path
	Notes   []misp.Problem // what was read differently from what was written
}

// Options set how Map reads.
type Options struct {
	// TLP is assumed for an object without a TLP marking; empty refuses it.
	TLP log.TLP
}

type collector struct{ refused, notes []misp.Problem }

func (c *collector) refuse(p, r string) {
	c.refused = append(c.refused, misp.Problem{Path: p, Reason: r})
}
func (c *collector) note(p, r string) { c.notes = append(c.notes, misp.Problem{Path: p, Reason: r}) }

// Map reads a bundle into the entries an import writes, one per object.
// It is pure: what is already stored is for Fresh to filter.
func Map(b *Bundle, opts Options) Plan {
	var p Plan
	ids := map[string]string{} // id → path of its first use
	var c collector
	for _, o := range b.Objects {
		id, _ := o.Fields["id"].(string)
		if first, ok := ids[id]; ok && id != "" {
			c.refuse(o.Path+".id", fmt.Sprintf("duplicate id %s (first at %s)", id, first))
			continue
		}
		ids[id] = o.Path
	}
	p.Refused = c.refused
	dup := map[string]bool{}
	for _, r := range c.refused {
		dup[strings.TrimSuffix(r.Path, ".id")] = true
	}
	for _, o := range b.Objects {
		if dup[o.Path] {
			continue
		}
		var oc collector
		it := mapObject(&oc, o, ids, opts)
		p.Refused = append(p.Refused, oc.refused...)
		p.Notes = append(p.Notes, oc.notes...)
		if len(oc.refused) == 0 {
			p.Items = append(p.Items, it)
		}
	}
	return p
}

func mapObject(c *collector, o Object, ids map[string]string, opts Options) Item {
	p, f := o.Path, o.Fields
	if f == nil {
		c.refuse(p, "not a JSON object")
		return Item{}
	}
	typ, _ := f["type"].(string)
	id, _ := f["id"].(string)
	if !validType(typ) {
		c.refuse(p+".type", fmt.Sprintf("malformed type %q", typ))
		return Item{}
	}
	if t, ok := idType(id); !ok || t != typ {
		c.refuse(p+".id", fmt.Sprintf("malformed id %q: want %s--UUID", id, typ))
		return Item{}
	}
	walk(c, p, f, ids, typ == "observed-data")
	tlp := readTLP(c, p, f)
	if _, official := tlp2[id]; official {
		tlp = log.TLPClear // the definition of a TLP label is public
	} else if _, official := tlp1[id]; official {
		tlp = log.TLPClear
	}
	if tlp == "" {
		if opts.TLP == "" {
			c.refuse(p+".object_marking_refs", "no TLP marking: add one (the TLP 2.0 marking definitions) or say which to assume (--tlp LEVEL)")
		} else {
			tlp = opts.TLP
			c.note(p+".object_marking_refs", fmt.Sprintf("no TLP marking: assumed TLP:%s (--tlp)", strings.ToUpper(string(tlp))))
		}
	}
	if tlp == log.TLPRed {
		c.refuse(p+".object_marking_refs", "TLP:RED goes to named recipients only, and a STIX bundle names none")
	}
	if err := Validate(f); err != nil {
		c.refuse(p, err.Error())
	}
	raw, err := misp.CanonicalJSON(f)
	if err != nil {
		c.refuse(p, err.Error())
	} else if len(raw) > misp.MaxItem {
		c.refuse(p, fmt.Sprintf("%d bytes of JSON, over the limit of %d for one entry", len(raw), misp.MaxItem))
	}
	if len(c.refused) > 0 {
		return Item{}
	}
	parent := ""
	switch typ {
	case "relationship":
		parent, _ = f["source_ref"].(string)
	case "sighting":
		parent, _ = f["sighting_of_ref"].(string)
	}
	in := log.Intel{Format: log.IntelSTIX, Type: typ, ID: id, Parent: parent, Version: version(f), Data: raw}
	body, err := misp.WithPayload(log.Body{Kind: log.KindIntel, TLP: tlp, Text: text(typ, f)}, &in)
	if err != nil {
		c.refuse(p, err.Error())
		return Item{}
	}
	return Item{Path: p, Intel: in, Body: body}
}

// readTLP reads an object's TLP: its object markings, its granular
// markings (the object is as narrow as its narrowest part) and legacy
// "tlp:…" labels. Two different labels at object level are refused.
func readTLP(c *collector, p string, f map[string]any) log.TLP {
	var t log.TLP
	at := ""
	set := func(q string, l log.TLP) {
		if t != "" && t != l {
			c.refuse(q, fmt.Sprintf("TLP:%s and TLP:%s exclude each other (first at %s)", strings.ToUpper(string(t)), strings.ToUpper(string(l)), at))
			return
		}
		t, at = l, q
	}
	official := func(q, id string) (log.TLP, bool) {
		if l, ok := tlp2[id]; ok {
			return l, true
		}
		if l, ok := tlp1[id]; ok {
			c.note(q, fmt.Sprintf("%s is a TLP 1.0 marking: read as TLP:%s (TLP 2.0)", id, strings.ToUpper(string(l))))
			return l, true
		}
		return "", false
	}
	refs, _ := f["object_marking_refs"].([]any)
	for i, r := range refs {
		q := fmt.Sprintf("%s.object_marking_refs[%d]", p, i)
		if l, ok := official(q, fmt.Sprint(r)); ok {
			set(q, l)
		}
	}
	labels, _ := f["labels"].([]any)
	for i, v := range labels {
		q := fmt.Sprintf("%s.labels[%d]", p, i)
		s, _ := v.(string)
		if name, ok := strings.CutPrefix(strings.ToLower(s), "tlp:"); ok {
			if name == "white" {
				c.note(q, "TLP:WHITE is TLP 1.0: read as TLP:CLEAR (TLP 2.0)")
				name = string(log.TLPClear)
			}
			l, err := misp.ParseTLP(name)
			if err != nil {
				c.refuse(q, fmt.Sprintf("%q is not a TLP 2.0 label", s))
				continue
			}
			set(q, l)
		}
	}
	granular, _ := f["granular_markings"].([]any)
	for i, g := range granular {
		q := fmt.Sprintf("%s.granular_markings[%d].marking_ref", p, i)
		gm, _ := g.(map[string]any)
		if l, ok := official(q, fmt.Sprint(gm["marking_ref"])); ok && t != "" && misp.TLPRank(l) > misp.TLPRank(t) {
			c.note(q, fmt.Sprintf("a part is TLP:%s: the whole object is read as TLP:%s", strings.ToUpper(string(l)), strings.ToUpper(string(l))))
			t = l
		} else if ok && t == "" {
			t = l
		}
	}
	return t
}

// timestampKeys are the properties of STIX 2.1 objects that hold a
// timestamp (besides every property ending in _time).
var timestampKeys = []string{"created", "modified", "valid_from", "valid_until", "first_seen", "last_seen",
	"published", "first_observed", "last_observed", "start", "end", "stop", "date"}

// walk checks, in every value of v: timestamps (RFC 3339 with a zone,
// which STIX wants to be Z) and references (properties ending in _ref or
// _refs: well formed and to an object in the bundle or well known). In
// observed-data, the deprecated objects dictionary uses local keys as
// references and is not walked.
func walk(c *collector, p string, v any, ids map[string]string, observed bool) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			x, q := v[k], p+"."+k
			if observed && k == "objects" {
				continue
			}
			if s, ok := x.(string); ok && (slices.Contains(timestampKeys, k) || strings.HasSuffix(k, "_time")) {
				checkTime(c, q, s)
			}
			switch {
			case strings.HasSuffix(k, "_ref"):
				checkRef(c, q, x, ids)
			case strings.HasSuffix(k, "_refs"):
				list, ok := x.([]any)
				if !ok {
					c.refuse(q, "not an array of references")
				}
				for i, r := range list {
					checkRef(c, fmt.Sprintf("%s[%d]", q, i), r, ids)
				}
			default:
				walk(c, q, x, ids, false)
			}
		}
	case []any:
		for i, x := range v {
			walk(c, fmt.Sprintf("%s[%d]", p, i), x, ids, false)
		}
	}
}

func checkTime(c *collector, p, s string) {
	t, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		c.refuse(p, fmt.Sprintf("timestamp %q is not RFC 3339 with a zone (STIX: YYYY-MM-DDTHH:MM:SS[.s+]Z)", s))
	case !strings.HasSuffix(s, "Z"):
		c.refuse(p, fmt.Sprintf("timestamp %q is not in UTC (STIX wants the zone Z)", s))
	case t.Year() < 1 || t.Year() > 9999:
		c.refuse(p, fmt.Sprintf("timestamp %q out of range", s))
	}
}

func checkRef(c *collector, p string, v any, ids map[string]string) {
	s, _ := v.(string)
	if _, ok := idType(s); !ok {
		c.refuse(p, fmt.Sprintf("malformed reference %q", s))
		return
	}
	if _, ok := ids[s]; !ok && !wellKnown(s) {
		c.refuse(p, fmt.Sprintf("reference to %s, which is neither in the bundle nor well known", s))
	}
}

// version orders versions of an object: its modified (else created)
// timestamp in Unix nanoseconds; 0 for an object with neither (a
// cyber-observable).
func version(f map[string]any) int64 {
	for _, k := range []string{"modified", "created"} {
		if s, ok := f[k].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.UnixNano() > 0 {
				return t.UnixNano()
			}
		}
	}
	return 0
}

// IncidentCore is the extension definition of OASIS's Incident Core
// extension (cti-stix-common-objects, extension-definition-specifications/
// incident-core): the determination, investigation status, criticality
// and types of an incident.
const IncidentCore = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"

// incidentCore says what an incident's Incident Core extension tells
// people ("" without one): " (confirmed, investigation closed,
// criticality 70, ransomware)".
func incidentCore(f map[string]any) string {
	exts, _ := f["extensions"].(map[string]any)
	ic, _ := exts[IncidentCore].(map[string]any)
	if ic == nil {
		return ""
	}
	var parts []string
	if d, ok := ic["determination"].(string); ok && d != "" {
		parts = append(parts, d)
	}
	if st, ok := ic["investigation_status"].(string); ok && st != "" {
		parts = append(parts, "investigation "+st)
	}
	if c, ok := ic["criticality"].(json.Number); ok {
		parts = append(parts, "criticality "+c.String())
	}
	if ts, ok := ic["incident_types"].([]any); ok {
		for _, t := range ts {
			if s, ok := t.(string); ok {
				parts = append(parts, s)
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// text is a line for people about an object.
func text(typ string, f map[string]any) string {
	s := "STIX " + typ
	if n, ok := f["name"].(string); ok && n != "" {
		s += fmt.Sprintf(" %q", n)
	}
	switch typ {
	case "indicator":
		s += ": " + fmt.Sprint(f["pattern"])
	case "relationship":
		s += fmt.Sprintf(": %v %v %v", f["source_ref"], f["relationship_type"], f["target_ref"])
	case "sighting":
		s += fmt.Sprintf(" of %v", f["sighting_of_ref"])
	case "note":
		s += ": " + fmt.Sprint(f["content"])
	case "incident":
		s += incidentCore(f)
	}
	const maxText = 1000
	if len(s) > maxText {
		cut := maxText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Fresh returns the items that add something to what is stored (known:
// ID → the newest stored version) and how many it left out: an unknown
// ID, a newer version, or an object without a timestamp whose data
// changed.
func Fresh(items []Item, known map[string]*log.Intel) (fresh []Item, unchanged int) {
	for _, it := range items {
		k, ok := known[it.Intel.ID]
		v := it.Intel.Version
		if !ok || v > k.Version || (v == 0 && !bytes.Equal(k.Data, it.Intel.Data)) {
			fresh = append(fresh, it)
			continue
		}
		unchanged++
	}
	return fresh, unchanged
}
