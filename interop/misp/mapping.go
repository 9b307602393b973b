package misp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Limits of the mapping.
const (
	// MaxInfo bounds an event's info: MISP keeps it in a TEXT column of
	// 65,535 bytes.
	MaxInfo = 65535
	// MaxItem bounds one item's JSON, so that its entry stays well under
	// log.MaxEntrySize with its text and sealing.
	MaxItem = 512 << 10
	// maxText bounds the value quoted in an attribute entry's text.
	maxText = 1000
)

// Item types, as log.Intel.Type.
const (
	TypeEvent     = "event"
	TypeAttribute = "attribute"
	TypeObject    = "object"
)

// A Problem is an item refused, or read differently from what was written,
// with the JSON path of what caused it.
type Problem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// Scope says whom an item is sealed to, read from MISP's distribution and
// sharing group. The zero Scope is the whole network.
type Scope struct {
	// Self: MISP distribution 0 ("your organisation only"): this member
	// only.
	Self bool `json:"self,omitempty"`
	// SharingGroup names the MISP sharing group of distribution 4, and
	// Orgs the names of its organisations: the members of those names
	// (and this member). A name no member has is left out, which narrows,
	// never widens.
	SharingGroup string   `json:"sharing_group,omitempty"`
	Orgs         []string `json:"orgs,omitempty"`
}

// Network reports whether s is the whole network.
func (s Scope) Network() bool { return !s.Self && s.Orgs == nil }

// narrow returns the narrower of a and b: an item never reaches anyone its
// event does not.
func narrow(a, b Scope) Scope {
	switch {
	case a.Self || b.Self:
		return Scope{Self: true}
	case a.Network():
		return b
	case b.Network():
		return a
	}
	s := Scope{Orgs: []string{}}
	if a.SharingGroup == b.SharingGroup {
		s.SharingGroup = a.SharingGroup
	}
	for _, o := range a.Orgs {
		if slices.Contains(b.Orgs, o) {
			s.Orgs = append(s.Orgs, o)
		}
	}
	return s
}

// Item is one entry to write: an event's own fields, one attribute or one
// object.
type Item struct {
	// Path is the JSON path of the item in its input.
	Path  string
	Intel log.Intel
	// Body is the entry's body: kind intel, its TLP, a text for people,
	// the RSIT and NIS2 fields of its tags and the encoded Intel as
	// payload.
	Body  log.Body
	Scope Scope
}

// Plan is what an import would write.
type Plan struct {
	// Items are the valid items in input order: each event's own part,
	// then its attributes, then its objects.
	Items []Item
	// Refused lists every refusal; an event refused takes its attributes
	// and objects with it.
	Refused []Problem
	// Notes say what was read differently from what was written.
	Notes []Problem
}

// Options set how Map reads.
type Options struct {
	// TLP is assumed for an event without a tlp tag; empty refuses it.
	TLP log.TLP
}

// collector gathers the refusals and notes of one item.
type collector struct {
	refused []Problem
	notes   []Problem
}

func (c *collector) refuse(path, reason string) { c.refused = append(c.refused, Problem{path, reason}) }
func (c *collector) note(path, reason string)   { c.notes = append(c.notes, Problem{path, reason}) }

// Map reads events into the entries an import writes. It is pure: what is
// already stored is for Fresh to filter.
func Map(events []Event, opts Options) Plan {
	var p Plan
	seen := map[string]string{} // UUID → path of its first use
	for _, ev := range events {
		items, refused, notes := mapEvent(ev, opts, seen)
		p.Items = append(p.Items, items...)
		p.Refused = append(p.Refused, refused...)
		p.Notes = append(p.Notes, notes...)
	}
	return p
}

// checkUUID refuses a missing, malformed or repeated UUID.
func checkUUID(c *collector, p string, v any, seen map[string]string) string {
	u, _ := v.(string)
	switch {
	case u == "":
		c.refuse(p+".uuid", "missing uuid")
	case !ValidUUID(u):
		c.refuse(p+".uuid", fmt.Sprintf("malformed UUID %q", u))
	case seen[strings.ToLower(u)] != "":
		c.refuse(p+".uuid", fmt.Sprintf("duplicate ID %s (first at %s)", u, seen[strings.ToLower(u)]))
	default:
		seen[strings.ToLower(u)] = p
	}
	return u
}

func mapEvent(ev Event, opts Options, seen map[string]string) (items []Item, refused, notes []Problem) {
	f, p := ev.Fields, ev.Path
	var c collector
	uuid := checkUUID(&c, p, f["uuid"], seen)
	info, ok := f["info"].(string)
	switch {
	case !ok:
		c.refuse(p+".info", "missing info")
	case len(info) > MaxInfo:
		c.refuse(p+".info", fmt.Sprintf("info has %d bytes, over the limit of %d", len(info), MaxInfo))
	}
	l := readLabels(&c, p+".Tag", f["Tag"])
	if l.tlp == "" {
		if opts.TLP == "" {
			c.refuse(p+".Tag", "no TLP tag: add one (tlp:amber, …) or say which to assume (--tlp LEVEL)")
		} else {
			l.tlp = opts.TLP
			c.note(p+".Tag", fmt.Sprintf("no TLP tag: assumed TLP:%s (--tlp)", strings.ToUpper(string(opts.TLP))))
		}
	}
	scope := readScope(&c, p, f, false)
	checkRed(&c, p, l.tlp, scope)
	own := maps.Clone(f)
	for _, k := range []string{"Attribute", "Object"} {
		// The items are entries of their own; an empty list stays in the
		// event's part, so that export gives it back.
		if a, ok := own[k].([]any); !ok || len(a) > 0 {
			delete(own, k)
		}
	}
	text := fmt.Sprintf("MISP event %q (threat level %s, analysis %s)", info, threatLevels[str(f["threat_level_id"])], analyses[str(f["analysis"])])
	evItem := makeItem(&c, p, TypeEvent, uuid, "", own, l, text, scope)

	// Children are read even when the event is refused, so that every
	// problem of the file is listed at once.
	var children []Item
	var childRefused []Problem
	for _, kind := range []struct {
		name string
		read func(c *collector, p string, v any, event string, el labels, es Scope, seen map[string]string) (Item, bool)
	}{{"Attribute", mapAttribute}, {"Object", mapObject}} {
		for i, v := range arrayAt(&c, p+"."+kind.name, f[kind.name]) {
			var cc collector
			it, ok := kind.read(&cc, fmt.Sprintf("%s.%s[%d]", p, kind.name, i), v, uuid, l, scope, seen)
			notes = append(notes, cc.notes...)
			childRefused = append(childRefused, cc.refused...)
			if ok && len(cc.refused) == 0 {
				children = append(children, it)
			}
		}
	}
	notes = append(c.notes, notes...)
	if len(c.refused) > 0 {
		return nil, append(c.refused, childRefused...), notes
	}
	return append([]Item{evItem}, children...), childRefused, notes
}

var threatLevels = map[string]string{"1": "high", "2": "medium", "3": "low", "4": "undefined", "": "undefined"}
var analyses = map[string]string{"0": "initial", "1": "ongoing", "2": "completed", "": "unknown"}

// asObject returns v as a JSON object, refusing anything else.
func asObject(c *collector, p string, v any, what string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.refuse(p, what+" is not a JSON object")
	}
	return m, ok
}

func arrayAt(c *collector, p string, v any) []any {
	if v == nil {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		c.refuse(p, "not an array")
	}
	return a
}

// readScope reads an item's distribution and sharing group. An attribute
// or object may inherit ("5", or none).
func readScope(c *collector, p string, f map[string]any, child bool) (s Scope) {
	d := str(f["distribution"])
	switch d {
	case "":
		// A feed's events carry no distribution: a feed is published to
		// its community, the network here.
	case "5":
		if !child {
			c.refuse(p+".distribution", `distribution "5" (inherit) is for attributes and objects, not events`)
		}
	case "0":
		return Scope{Self: true}
	case "1", "2", "3":
		// This community, connected communities, all: the network is
		// the community, so this never widens.
	case "4":
		sg := str(f["sharing_group_id"])
		if sg == "" || sg == "0" {
			c.refuse(p+".sharing_group_id", `distribution "4" (sharing group) with sharing group "0": whom to share with is not said`)
			return Scope{Self: true}
		}
		return readSharingGroup(c, p, sg, f["SharingGroup"])
	default:
		c.refuse(p+".distribution", fmt.Sprintf("unknown distribution %q (0-5)", d))
	}
	return Scope{}
}

// readSharingGroup reads the organisations of sharing group id. Without
// them the group cannot be honoured, so it is refused.
func readSharingGroup(c *collector, p, id string, v any) Scope {
	sg, _ := v.(map[string]any)
	var orgs []string
	list, _ := sg["SharingGroupOrg"].([]any)
	for _, o := range list {
		om, _ := o.(map[string]any)
		org, _ := om["Organisation"].(map[string]any)
		if name, _ := org["name"].(string); name != "" && !slices.Contains(orgs, name) {
			orgs = append(orgs, name)
		}
	}
	if sg == nil || len(orgs) == 0 {
		c.refuse(p+".SharingGroup", fmt.Sprintf("sharing group %s: its organisations are not in the file, so it cannot be honoured", id))
		return Scope{Self: true}
	}
	name, _ := sg["name"].(string)
	return Scope{SharingGroup: name, Orgs: orgs}
}

func checkRed(c *collector, p string, t log.TLP, s Scope) {
	if t == log.TLPRed && s.Network() {
		c.refuse(p+".distribution", "TLP:RED goes to named recipients only, but the distribution shares with the community: use distribution 0 or a sharing group")
	}
}

// mergeLabels returns a child's labels: its own TLP if narrower than its
// event's (never wider), its own taxonomy fields or else the event's.
func mergeLabels(c *collector, p string, own, event labels) labels {
	l := own
	switch {
	case own.tlp == "":
		l.tlp = event.tlp
	case TLPRank(own.tlp) < TLPRank(event.tlp):
		c.note(p, fmt.Sprintf("TLP:%s is wider than its event's TLP:%s: kept at the event's", strings.ToUpper(string(own.tlp)), strings.ToUpper(string(event.tlp))))
		l.tlp = event.tlp
	}
	if l.rsitClass == "" {
		l.rsitClass, l.rsitType = event.rsitClass, event.rsitType
	}
	if l.sectors == nil {
		l.sectors = event.sectors
	}
	if l.impact == "" {
		l.impact = event.impact
	}
	if l.outlook == "" {
		l.outlook = event.outlook
	}
	return l
}

func mapAttribute(c *collector, p string, v any, event string, el labels, es Scope, seen map[string]string) (Item, bool) {
	a, ok := asObject(c, p, v, "an attribute")
	if !ok {
		return Item{}, false
	}
	uuid := checkUUID(c, p, a["uuid"], seen)
	checkType(c, p, a)
	l := mergeLabels(c, p+".Tag", readLabels(c, p+".Tag", a["Tag"]), el)
	scope := narrow(es, readScope(c, p, a, true))
	checkRed(c, p, l.tlp, scope)
	text := fmt.Sprintf("%s %s: %s", str(a["category"]), str(a["type"]), clip(str(a["value"])))
	return makeItem(c, p, TypeAttribute, uuid, event, a, l, text, scope), true
}

func mapObject(c *collector, p string, v any, event string, el labels, es Scope, seen map[string]string) (Item, bool) {
	o, ok := asObject(c, p, v, "an object")
	if !ok {
		return Item{}, false
	}
	uuid := checkUUID(c, p, o["uuid"], seen)
	scope := narrow(es, readScope(c, p, o, true))
	l := el
	attrs := arrayAt(c, p+".Attribute", o["Attribute"])
	for i, a := range attrs {
		ap := fmt.Sprintf("%s.Attribute[%d]", p, i)
		am, ok := asObject(c, ap, a, "an attribute")
		if !ok {
			continue
		}
		checkUUID(c, ap, am["uuid"], seen)
		checkType(c, ap, am)
		// The object is as narrow as its narrowest attribute.
		al := mergeLabels(c, ap+".Tag", readLabels(c, ap+".Tag", am["Tag"]), el)
		l.tlp = narrower(l.tlp, al.tlp)
		scope = narrow(scope, readScope(c, ap, am, true))
	}
	checkRed(c, p, l.tlp, scope)
	text := fmt.Sprintf("MISP object %s (%d attributes)", str(o["name"]), len(attrs))
	if cm := str(o["comment"]); cm != "" {
		text += ": " + clip(cm)
	}
	return makeItem(c, p, TypeObject, uuid, event, o, l, text, scope), true
}

// checkType refuses an attribute whose type or category MISP does not
// define (describeTypes.json): it could not be exported back.
func checkType(c *collector, p string, a map[string]any) {
	if err := Types().Check(str(a["type"]), str(a["category"])); err != nil {
		c.refuse(p+".type", err.Error())
	}
}

func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	cut := maxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func makeItem(c *collector, p, typ, uuid, parent string, data map[string]any, l labels, text string, scope Scope) Item {
	raw, err := CanonicalJSON(data)
	if err != nil {
		c.refuse(p, err.Error())
		return Item{}
	}
	if len(raw) > MaxItem {
		c.refuse(p, fmt.Sprintf("%d bytes of JSON, over the limit of %d for one entry", len(raw), MaxItem))
		return Item{}
	}
	in := log.Intel{Format: log.IntelMISP, Type: typ, ID: strings.ToLower(uuid), Parent: strings.ToLower(parent), Version: version(data), Data: raw}
	body := log.Body{Kind: log.KindIntel, TLP: l.tlp, Text: text,
		RSITClass: l.rsitClass, RSITType: l.rsitType, Sectors: l.sectors, Impact: l.impact, Outlook: l.outlook}
	if len(c.refused) > 0 {
		return Item{}
	}
	body, err = WithPayload(body, &in)
	if err != nil {
		c.refuse(p, err.Error())
		return Item{}
	}
	return Item{Path: p, Intel: in, Body: body, Scope: scope}
}

// WithPayload returns body with in, encoded, as its payload, and checks
// the whole.
func WithPayload(body log.Body, in *log.Intel) (log.Body, error) {
	payload, err := in.Encode()
	if err != nil {
		return body, err
	}
	body.Payload = payload
	return body, body.Validate()
}

// version is an item's MISP timestamp (Unix seconds), 0 if it has none.
func version(f map[string]any) int64 {
	var n json.Number
	switch v := f["timestamp"].(type) {
	case string:
		n = json.Number(v)
	case json.Number:
		n = v
	}
	i, err := n.Int64()
	if err != nil || i < 0 {
		return 0
	}
	return i
}

// CanonicalJSON writes v compactly with object keys sorted, numbers as
// written and no HTML escaping, so equal data gives equal bytes.
func CanonicalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("misp: JSON: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Fresh returns the items of plan that add something to what is stored
// (known: item ID → the newest stored version of that item) and how many
// it left out. An item is fresh if its ID is unknown, if it is newer (a
// higher MISP timestamp: MISP bumps it on every change of the item), or if
// it carries no timestamp (an edit not yet saved by MISP, as PyMISP writes
// one) and its data differ from the stored version's beyond timestamps.
// An older or equally old version adds nothing.
func Fresh(items []Item, known map[string]*log.Intel) (fresh []Item, unchanged int) {
	for _, it := range items {
		k, ok := known[it.Intel.ID]
		v := it.Intel.Version
		if !ok || k.Type != it.Intel.Type || v > k.Version || (v == 0 && changed(k.Data, it.Intel.Data)) {
			fresh = append(fresh, it)
			continue
		}
		unchanged++
	}
	return fresh, unchanged
}

// timestampKeys change whenever anything in an event does; they alone do
// not make an item changed.
var timestampKeys = []string{"timestamp", "publish_timestamp", "attribute_count"}

func changed(old, new []byte) bool {
	strip := func(b []byte) []byte {
		v, err := ParseJSON(b)
		m, ok := v.(map[string]any)
		if err != nil || !ok {
			return b
		}
		stripKeys(m)
		out, err := CanonicalJSON(m)
		if err != nil {
			return b
		}
		return out
	}
	return !bytes.Equal(strip(old), strip(new))
}

// stripKeys removes timestampKeys from m and the objects in its arrays.
func stripKeys(m map[string]any) {
	for _, k := range timestampKeys {
		delete(m, k)
	}
	for _, v := range m {
		if a, ok := v.([]any); ok {
			for _, x := range a {
				if xm, ok := x.(map[string]any); ok {
					stripKeys(xm)
				}
			}
		}
	}
}
