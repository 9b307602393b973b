package misp

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Part is an item as a node holds it: the payload of an intel entry and
// the TLP label of that entry.
type Part struct {
	Intel *log.Intel
	TLP   log.TLP
}

// ExportOptions set what Export lets out.
type ExportOptions struct {
	// MaxTLP caps the labels exported; empty means amber. Red is never
	// exported.
	MaxTLP log.TLP
	// StrictOrg names the organisation an AMBER+STRICT export is for;
	// without it nothing AMBER+STRICT is exported.
	StrictOrg string
}

// ErrWiden is the class of export requests that would widen
// distribution.
var ErrWiden = errors.New("misp: export would widen distribution")

// Withheld is an item Export left out, and why.
type Withheld struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// Check validates o and returns the cap it sets.
func (o ExportOptions) Check() (log.TLP, error) {
	limit := o.MaxTLP
	if limit == "" {
		limit = log.TLPAmber
	}
	switch {
	case TLPRank(limit) < 0:
		return "", fmt.Errorf("misp: --max-tlp %q: want clear, green, amber or amber+strict", limit)
	case limit == log.TLPRed:
		return "", fmt.Errorf("%w: TLP:RED is never exported (--max-tlp amber+strict at most)", ErrWiden)
	case limit == log.TLPAmberStrict && strings.TrimSpace(o.StrictOrg) == "":
		return "", fmt.Errorf("%w: TLP:AMBER+STRICT is exported only for one organisation: name it (--amber-strict-org ORG)", ErrWiden)
	}
	return limit, nil
}

// Supersedes reports whether later, an item stored after earlier with the
// same ID, replaces it: unless it is older (a lower timestamp; an edit
// without a timestamp is not older).
func Supersedes(later, earlier *log.Intel) bool {
	return later.Version == 0 || later.Version >= earlier.Version
}

// Export assembles MISP events ({"Event": …}) from parts, given in log
// order; for an ID held in several versions, the one that supersedes the
// others counts and keeps the place of the first. It leaves out
// (and lists) whatever is above the cap, red, or whose event is not
// exported, and never widens:
//   - an event's tlp tags are replaced by one tag of its entry's label
//     (tlp:white comes back as tlp:clear), and an attribute's only if it
//     had one;
//   - an AMBER+STRICT event or item goes to StrictOrg's organisation only
//     (distribution "0");
//   - distribution and sharing groups are exported as they came in.
//
// Every event is checked with Validate; one that fails is an error (a bug
// of the mapping, not of the input).
func Export(parts []Part, opts ExportOptions) ([]map[string]any, []Withheld, error) {
	limit, err := opts.Check()
	if err != nil {
		return nil, nil, err
	}
	latest := map[string]int{}
	var order []Part
	for _, p := range parts {
		if p.Intel == nil || p.Intel.Format != log.IntelMISP {
			continue
		}
		if i, ok := latest[p.Intel.ID]; ok {
			if Supersedes(p.Intel, order[i].Intel) {
				order[i] = p
			}
			continue
		}
		latest[p.Intel.ID] = len(order)
		order = append(order, p)
	}
	var withheld []Withheld
	allowed := func(p Part) bool {
		reason := ""
		switch {
		case p.TLP == log.TLPRed:
			reason = "TLP:RED is never exported"
		case TLPRank(p.TLP) > TLPRank(limit):
			reason = fmt.Sprintf("TLP:%s is above --max-tlp %s", strings.ToUpper(string(p.TLP)), limit)
		}
		if reason != "" {
			withheld = append(withheld, Withheld{ID: p.Intel.ID, Type: p.Intel.Type, Reason: reason})
		}
		return reason == ""
	}
	type building struct {
		fields   map[string]any
		attrs    []any
		objs     []any
		withheld bool // some attribute or object of the event is withheld
	}
	events := map[string]*building{}
	var ids []string
	for _, p := range order {
		if p.Intel.Type != TypeEvent || !allowed(p) {
			continue
		}
		f, err := decodeData(p.Intel)
		if err != nil {
			return nil, nil, err
		}
		setTLPTag(f, p.TLP, true)
		strict(f, p.TLP)
		events[p.Intel.ID] = &building{fields: f}
		ids = append(ids, p.Intel.ID)
	}
	for _, p := range order {
		if p.Intel.Type == TypeEvent {
			continue
		}
		b, ok := events[p.Intel.Parent]
		if !ok {
			withheld = append(withheld, Withheld{ID: p.Intel.ID, Type: p.Intel.Type, Reason: "its event " + p.Intel.Parent + " is not exported"})
			continue
		}
		if !allowed(p) {
			b.withheld = true
			continue
		}
		f, err := decodeData(p.Intel)
		if err != nil {
			return nil, nil, err
		}
		strict(f, p.TLP)
		switch p.Intel.Type {
		case TypeAttribute:
			setTLPTag(f, p.TLP, false)
			b.attrs = append(b.attrs, f)
		case TypeObject:
			b.objs = append(b.objs, f)
		}
	}
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		b := events[id]
		f := b.fields
		if b.attrs != nil {
			f["Attribute"] = b.attrs
		}
		if b.objs != nil {
			f["Object"] = b.objs
		}
		if n, ok := f["attribute_count"]; ok && (b.withheld || n == nil) {
			// Derived by MISP; null (PyMISP writes it for a new event) is
			// not a string MISP's schema accepts: the count is.
			f["attribute_count"] = strconv.Itoa(countAttributes(b.attrs, b.objs))
		}
		ev := map[string]any{"Event": f}
		if _, err := Validate(ev); err != nil {
			return nil, nil, fmt.Errorf("misp: export of event %s: %w", id, err)
		}
		out = append(out, ev)
	}
	return out, withheld, nil
}

// countAttributes counts attributes as MISP's attribute_count does: those
// of the event and those of its objects.
func countAttributes(attrs, objs []any) int {
	n := len(attrs)
	for _, o := range objs {
		om, _ := o.(map[string]any)
		oa, _ := om["Attribute"].([]any)
		n += len(oa)
	}
	return n
}

func decodeData(in *log.Intel) (map[string]any, error) {
	v, err := ParseJSON(in.Data)
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil, fmt.Errorf("misp: stored %s %s is not a JSON object: %v", in.Type, in.ID, err)
	}
	return m, nil
}

// setTLPTag replaces the tlp tags of f by one of label t; where f has none
// it adds one only if always is set.
func setTLPTag(f map[string]any, t log.TLP, always bool) {
	tags, _ := f["Tag"].([]any)
	var kept []any
	had, same := false, false
	for _, tag := range tags {
		tm, _ := tag.(map[string]any)
		name, _ := tm["name"].(string)
		if ns, _, _ := splitTag(name); ns == nsTLP {
			had = true
			if !same && strings.EqualFold(name, "tlp:"+string(t)) {
				// The tag as it came in, colour and all.
				kept = append(kept, tag)
				same = true
			}
			continue
		}
		kept = append(kept, tag)
	}
	if !had && !always {
		return
	}
	if !same {
		kept = append([]any{map[string]any{"name": "tlp:" + string(t), "colour": tlpColours[t], "exportable": true}}, kept...)
	}
	f["Tag"] = kept
}

// tlpColours are the colours of MISP's tlp taxonomy.
var tlpColours = map[log.TLP]string{
	log.TLPClear: "#ffffff", log.TLPGreen: "#33ff00", log.TLPAmber: "#ffc000",
	log.TLPAmberStrict: "#ffc000", log.TLPRed: "#ff2b2b",
}

// strict narrows an AMBER+STRICT item to the receiving organisation only.
func strict(f map[string]any, t log.TLP) {
	if t == log.TLPAmberStrict {
		f["distribution"] = "0"
		delete(f, "SharingGroup")
		if _, ok := f["sharing_group_id"]; ok {
			f["sharing_group_id"] = "0"
		}
	}
}

// Feed returns the files of a MISP feed holding events (as Export returns
// them): manifest.json (each event's UUID → its summary), one
// <uuid>.json per event and hashes.csv (MD5 of each attribute value, each
// half of a composite value too, with its event's UUID), as MISP's feed
// generator writes them.
func Feed(events []map[string]any) (map[string][]byte, error) {
	files := map[string][]byte{}
	manifest := map[string]any{}
	var hashes strings.Builder
	for _, ev := range events {
		f, _ := ev["Event"].(map[string]any)
		uuid, _ := f["uuid"].(string)
		if !ValidUUID(uuid) {
			return nil, fmt.Errorf("misp: feed: an event without a valid uuid (%q)", uuid)
		}
		b, err := CanonicalJSON(ev)
		if err != nil {
			return nil, err
		}
		files[uuid+".json"] = b
		summary := map[string]any{}
		for _, k := range []string{"Orgc", "Tag", "info", "date", "analysis", "threat_level_id", "timestamp", "publish_timestamp", "published"} {
			if v, ok := f[k]; ok {
				summary[k] = v
			}
		}
		manifest[uuid] = summary
		var values []string
		add := func(a any) {
			am, _ := a.(map[string]any)
			t, v := str(am["type"]), str(am["value"])
			if strings.Contains(t, "|") {
				values = append(values, strings.Split(v, "|")...)
			} else {
				values = append(values, v)
			}
		}
		attrs, _ := f["Attribute"].([]any)
		for _, a := range attrs {
			add(a)
		}
		objs, _ := f["Object"].([]any)
		for _, o := range objs {
			om, _ := o.(map[string]any)
			oattrs, _ := om["Attribute"].([]any)
			for _, a := range oattrs {
				add(a)
			}
		}
		for _, v := range values {
			h := md5.Sum([]byte(v))
			hashes.WriteString(hex.EncodeToString(h[:]) + "," + uuid + "\n")
		}
	}
	b, err := CanonicalJSON(manifest)
	if err != nil {
		return nil, err
	}
	files[Manifest] = b
	files["hashes.csv"] = []byte(hashes.String())
	return files, nil
}
