package stix

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Export assembles a STIX 2.1 bundle from parts (the intel entries a node
// holds, in log order; parts of other formats are skipped): the newest
// version of each object (misp.Supersedes), in the place of its first. It
// never widens, with the caps of misp.ExportOptions: TLP:RED is never
// exported, AMBER+STRICT only with StrictOrg, nothing above MaxTLP
// (default amber); an object that refers to a withheld one is withheld
// too. Each object's TLP markings are replaced by the official TLP 2.0
// marking of its entry's label (TLP 1.0 markings come back as TLP 2.0;
// the TLP marking definitions themselves are exported as they came).
// Every object is checked with Validate; one that fails is an error (a
// bug of the mapping, not of the input). The bundle's id is derived from
// its content, so equal exports are equal.
func Export(parts []misp.Part, opts misp.ExportOptions) (map[string]any, []misp.Withheld, error) {
	limit, err := opts.Check()
	if err != nil {
		return nil, nil, err
	}
	latest := map[string]int{}
	var order []misp.Part
	for _, p := range parts {
		if p.Intel == nil || p.Intel.Format != log.IntelSTIX {
			continue
		}
		if i, ok := latest[p.Intel.ID]; ok {
			if misp.Supersedes(p.Intel, order[i].Intel) {
				order[i] = p
			}
			continue
		}
		latest[p.Intel.ID] = len(order)
		order = append(order, p)
	}
	var withheld []misp.Withheld
	out := map[string]map[string]any{}
	for _, p := range order {
		reason := ""
		switch {
		case p.TLP == log.TLPRed:
			reason = "TLP:RED is never exported"
		case misp.TLPRank(p.TLP) > misp.TLPRank(limit):
			reason = fmt.Sprintf("TLP:%s is above --max-tlp %s", strings.ToUpper(string(p.TLP)), limit)
		}
		if reason != "" {
			withheld = append(withheld, misp.Withheld{ID: p.Intel.ID, Type: p.Intel.Type, Reason: reason})
			continue
		}
		v, err := misp.ParseJSON(p.Intel.Data)
		f, ok := v.(map[string]any)
		if err != nil || !ok {
			return nil, nil, fmt.Errorf("stix: stored %s is not a JSON object: %v", p.Intel.ID, err)
		}
		if !wellKnown(p.Intel.ID) {
			setMarking(f, p.TLP)
		}
		out[p.Intel.ID] = f
	}
	// Withhold what refers to a withheld object, until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, p := range order {
			f, ok := out[p.Intel.ID]
			if !ok {
				continue
			}
			if missing := dangling(f, out); missing != "" {
				delete(out, p.Intel.ID)
				withheld = append(withheld, misp.Withheld{ID: p.Intel.ID, Type: p.Intel.Type, Reason: "refers to " + missing + ", which is not exported"})
				changed = true
			}
		}
	}
	objects := []any{}
	h := sha256.New()
	for _, p := range order {
		f, ok := out[p.Intel.ID]
		if !ok {
			continue
		}
		if err := Validate(f); err != nil {
			return nil, nil, fmt.Errorf("stix: export of %s: %w", p.Intel.ID, err)
		}
		b, err := misp.CanonicalJSON(f)
		if err != nil {
			return nil, nil, err
		}
		h.Write(b)
		objects = append(objects, f)
	}
	sum := h.Sum(nil)
	sum[6] = sum[6]&0x0f | 0x50 // a name-based UUID (version 5 layout)
	sum[8] = sum[8]&0x3f | 0x80
	id := fmt.Sprintf("bundle--%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	return map[string]any{"type": "bundle", "id": id, "objects": objects}, withheld, nil
}

// setMarking replaces the TLP markings in f's object_marking_refs by the
// official TLP 2.0 marking of t, keeping the other markings in place.
func setMarking(f map[string]any, t log.TLP) {
	refs, _ := f["object_marking_refs"].([]any)
	kept := []any{tlpID(t)}
	for _, r := range refs {
		s, _ := r.(string)
		if _, ok := tlp2[s]; ok {
			continue
		}
		if _, ok := tlp1[s]; ok {
			continue
		}
		kept = append(kept, r)
	}
	f["object_marking_refs"] = kept
}

// dangling returns a reference in f to an object neither exported nor
// well known, or "".
func dangling(f any, out map[string]map[string]any) string {
	switch v := f.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			var refs []any
			switch x := v[k].(type) {
			case string:
				if strings.HasSuffix(k, "_ref") {
					refs = []any{x}
				}
			case []any:
				if strings.HasSuffix(k, "_refs") {
					refs = x
				}
			}
			for _, r := range refs {
				s, _ := r.(string)
				if _, ok := out[s]; !ok && !wellKnown(s) {
					if _, local := idType(s); local {
						return s
					}
				}
			}
			if refs == nil {
				if m := dangling(v[k], out); m != "" {
					return m
				}
			}
		}
	case []any:
		for _, x := range v {
			if m := dangling(x, out); m != "" {
				return m
			}
		}
	}
	return ""
}
