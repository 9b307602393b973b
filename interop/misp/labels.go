package misp

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/crisismesh/crisismesh/replication/log"
)

// labels are what the tags of one event, attribute or object say in the
// namespaces crisismesh maps. Every other tag stays in the item's data.
type labels struct {
	tlp       log.TLP
	tlpTag    string // the tag that set tlp, as written
	pap       string
	rsitClass string
	rsitType  string
	sectors   []string
	impact    string
	outlook   string
}

//go:embed schema/PAP.json
var papJSON []byte

// papValues are the PAP taxonomy's values (RED, AMBER, GREEN, CLEAR,
// WHITE), read from the embedded MISP taxonomy.
var papValues = mustPAP()

func mustPAP() []string {
	var m struct {
		Predicates []struct {
			Value string `json:"value"`
		} `json:"predicates"`
	}
	if err := json.Unmarshal(papJSON, &m); err != nil || len(m.Predicates) == 0 {
		panic(fmt.Sprintf("misp: embedded PAP taxonomy: %v", err))
	}
	var vs []string
	for _, p := range m.Predicates {
		vs = append(vs, strings.ToLower(p.Value))
	}
	return vs
}

// Namespaces crisismesh maps. A tag in one of them with a value the
// taxonomy does not define is refused, never kept verbatim.
const (
	nsTLP  = "tlp"
	nsPAP  = "pap"
	nsRSIT = "rsit"
	nsNIS2 = "nis2"
)

// splitTag splits a machine tag "ns:predicate=\"value\"" into its lower-case
// namespace, predicate and value (unquoted). A tag without a colon has no
// namespace.
func splitTag(name string) (ns, pred, val string) {
	ns, rest, ok := strings.Cut(name, ":")
	if !ok {
		return "", "", ""
	}
	pred, val, _ = strings.Cut(rest, "=")
	return strings.ToLower(strings.TrimSpace(ns)), strings.TrimSpace(pred), strings.Trim(strings.TrimSpace(val), `"`)
}

// readLabels reads the mapped tags of tags (a MISP Tag array at path p),
// adding refusals and notes to c.
func readLabels(c *collector, p string, tags any) labels {
	var l labels
	list, ok := tags.([]any)
	if tags != nil && !ok {
		c.refuse(p, "Tag is not an array")
		return l
	}
	tx := log.Taxonomies()
	exclusive := func(tp, what string, cur *string, v string) {
		if *cur != "" && *cur != v {
			c.refuse(tp, fmt.Sprintf("%s %q and %q exclude each other", what, *cur, v))
			return
		}
		*cur = v
	}
	for i, t := range list {
		tp := fmt.Sprintf("%s[%d]", p, i)
		obj, ok := asObject(c, tp, t, "a tag")
		if !ok {
			continue
		}
		name, ok := obj["name"].(string)
		if !ok || name == "" {
			c.refuse(tp+".name", "a tag needs a name")
			continue
		}
		ns, pred, val := splitTag(name)
		switch ns {
		case nsTLP:
			v := strings.ToLower(pred)
			if v == "white" {
				c.note(tp, "tlp:white is TLP 1.0; read as TLP:CLEAR (TLP 2.0)")
				v = string(log.TLPClear)
			}
			if !slices.Contains(tx.TLP, v) {
				c.refuse(tp, fmt.Sprintf("%q is not a TLP 2.0 label (%s)", name, strings.Join(tx.TLP, ", ")))
				continue
			}
			cur := string(l.tlp)
			exclusive(tp, "TLP labels", &cur, v)
			if l.tlp == "" {
				l.tlpTag = name
			}
			l.tlp = log.TLP(cur)
		case nsPAP:
			v := strings.ToLower(pred)
			if !slices.Contains(papValues, v) {
				c.refuse(tp, fmt.Sprintf("%q is not a PAP label (%s)", name, strings.Join(papValues, ", ")))
				continue
			}
			exclusive(tp, "PAP labels", &l.pap, v)
		case nsRSIT:
			types, ok := tx.RSIT[pred]
			if !ok || (val != "" && !slices.Contains(types, val)) {
				c.refuse(tp, fmt.Sprintf("%q is not in the RSIT taxonomy", name))
				continue
			}
			exclusive(tp, "RSIT classes", &l.rsitClass, pred)
			if val != "" {
				exclusive(tp, "RSIT types", &l.rsitType, val)
			}
		case nsNIS2:
			vals, ok := tx.NIS2[pred]
			if !ok || !slices.Contains(vals, val) {
				c.refuse(tp, fmt.Sprintf("%q is not in the NIS2 taxonomy", name))
				continue
			}
			switch pred {
			case "impact-sectors-impacted":
				if !slices.Contains(l.sectors, val) {
					l.sectors = append(l.sectors, val)
				}
			case "impact-severity":
				exclusive(tp, "NIS2 impact severities", &l.impact, val)
			case "impact-outlook":
				exclusive(tp, "NIS2 outlooks", &l.outlook, val)
			default:
				// Other nis2 predicates are kept verbatim in the data.
			}
		}
	}
	return l
}

// TLPRank orders TLP labels from the widest (clear) to the narrowest (red).
func TLPRank(t log.TLP) int {
	return slices.Index([]log.TLP{log.TLPClear, log.TLPGreen, log.TLPAmber, log.TLPAmberStrict, log.TLPRed}, t)
}

// narrower returns the narrower of two TLP labels.
func narrower(a, b log.TLP) log.TLP {
	if TLPRank(b) > TLPRank(a) {
		return b
	}
	return a
}

// ParseTLP reads a TLP 2.0 label as the CLI and API write it ("amber",
// "TLP:AMBER+STRICT").
func ParseTLP(s string) (log.TLP, error) {
	v := log.TLP(strings.ToLower(strings.TrimPrefix(strings.ToLower(s), "tlp:")))
	if TLPRank(v) < 0 {
		return "", fmt.Errorf("misp: TLP %q: want clear, green, amber, amber+strict or red", s)
	}
	return v, nil
}
