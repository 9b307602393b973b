package crisis

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// nis2JSON is the MISP `nis2` taxonomy (machinetag.json, version 5), the EU
// taxonomy for large-scale cybersecurity incidents. It is embedded, not read
// from disk, so every node validates against the same values whatever its
// working directory; see LICENSE.taxonomies.md for its licence (CC0 1.0 or
// BSD-2-Clause, at our choice).
//
//go:embed nis2.json
var nis2JSON []byte

// The nis2 predicates the crisis state uses.
const (
	predicateSectors   = "impact-sectors-impacted"
	predicateSeverity  = "impact-severity"
	predicateOutlook   = "impact-outlook"
	predicateRootCause = "nature-root-cause"
)

// A Term is one value of a closed vocabulary the state uses: a NIS2
// taxonomy value or an EU member state.
type Term struct {
	Value       string // what commands and the state carry: "energy", "LU"
	Label       string // for a person: "Energy", "Luxembourg"
	Description string // the taxonomy's explanation, if any
}

// vocabulary is the parsed taxonomy: predicate → terms in the file's order.
type vocabulary map[string][]Term

// nis2 is built once from the embedded file, like a regexp.MustCompile: the
// file is part of the program, so a parse error is a programming error that
// every test catches, never an input error.
var nis2 = mustParseTaxonomy(nis2JSON)

func mustParseTaxonomy(b []byte) vocabulary {
	v, err := parseTaxonomy(b)
	if err != nil {
		panic(err)
	}
	return v
}

func parseTaxonomy(b []byte) (vocabulary, error) {
	var doc struct {
		Namespace string `json:"namespace"`
		Values    []struct {
			Predicate string `json:"predicate"`
			Entry     []struct {
				Value       string `json:"value"`
				Expanded    string `json:"expanded"`
				Description string `json:"description"`
			} `json:"entry"`
		} `json:"values"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("crisis: nis2 taxonomy: %w", err)
	}
	if doc.Namespace != "nis2" {
		return nil, fmt.Errorf("crisis: nis2 taxonomy: namespace is %q", doc.Namespace)
	}
	v := vocabulary{}
	for _, p := range doc.Values {
		for _, e := range p.Entry {
			v[p.Predicate] = append(v[p.Predicate], Term{Value: e.Value, Label: e.Expanded, Description: e.Description})
		}
	}
	for _, p := range []string{predicateSectors, predicateSeverity, predicateOutlook, predicateRootCause} {
		if len(v[p]) == 0 {
			return nil, fmt.Errorf("crisis: nis2 taxonomy: predicate %s has no values", p)
		}
	}
	return v, nil
}

func (v vocabulary) has(predicate, value string) bool {
	return slices.ContainsFunc(v[predicate], func(t Term) bool { return t.Value == value })
}

func (v vocabulary) values(predicate string) []string {
	out := make([]string, len(v[predicate]))
	for i, t := range v[predicate] {
		out[i] = t.Value
	}
	return out
}

// Sectors returns the NIS2 sectors a crisis may impact, in the taxonomy's
// order. The slice is the caller's.
func Sectors() []Term { return slices.Clone(nis2[predicateSectors]) }

// Severities returns the NIS2 impact severities (red, yellow, green, white).
func Severities() []Term { return slices.Clone(nis2[predicateSeverity]) }

// Outlooks returns the NIS2 outlooks (improving, stable, worsening).
func Outlooks() []Term { return slices.Clone(nis2[predicateOutlook]) }

// RootCauses returns the NIS2 root cause categories.
func RootCauses() []Term { return slices.Clone(nis2[predicateRootCause]) }

// memberStates are the 27 EU member states by ISO 3166-1 alpha-2 code.
// Greece is GR here, as in ISO 3166; the EU's own protocol writes EL, which
// is refused with a hint rather than accepted as a second spelling, so one
// state always has one code in the replicated state.
var memberStates = []Term{
	{Value: "AT", Label: "Austria"}, {Value: "BE", Label: "Belgium"}, {Value: "BG", Label: "Bulgaria"},
	{Value: "CY", Label: "Cyprus"}, {Value: "CZ", Label: "Czechia"}, {Value: "DE", Label: "Germany"},
	{Value: "DK", Label: "Denmark"}, {Value: "EE", Label: "Estonia"}, {Value: "ES", Label: "Spain"},
	{Value: "FI", Label: "Finland"}, {Value: "FR", Label: "France"}, {Value: "GR", Label: "Greece"},
	{Value: "HR", Label: "Croatia"}, {Value: "HU", Label: "Hungary"}, {Value: "IE", Label: "Ireland"},
	{Value: "IT", Label: "Italy"}, {Value: "LT", Label: "Lithuania"}, {Value: "LU", Label: "Luxembourg"},
	{Value: "LV", Label: "Latvia"}, {Value: "MT", Label: "Malta"}, {Value: "NL", Label: "Netherlands"},
	{Value: "PL", Label: "Poland"}, {Value: "PT", Label: "Portugal"}, {Value: "RO", Label: "Romania"},
	{Value: "SE", Label: "Sweden"}, {Value: "SI", Label: "Slovenia"}, {Value: "SK", Label: "Slovakia"},
}

// MemberStates returns the 27 EU member states, sorted by code. The slice
// is the caller's.
func MemberStates() []Term { return slices.Clone(memberStates) }

// checkMemberState explains why code is not an EU member state code, or
// returns nil.
func checkMemberState(code string) error {
	if slices.ContainsFunc(memberStates, func(t Term) bool { return t.Value == code }) {
		return nil
	}
	switch up := strings.ToUpper(code); {
	case up == "EL":
		return refuse(RuleMemberState, "%q: write GR, the ISO 3166 code for Greece (EL is the EU's own abbreviation)", code)
	case up != code && checkMemberState(up) == nil:
		return refuse(RuleMemberState, "%q: write member state codes in upper case: %s", code, up)
	}
	return refuse(RuleMemberState, "%q is not the ISO 3166-1 alpha-2 code of an EU member state (AT, BE, BG, …, SE, SI, SK)", code)
}

// checkTerm explains why value is not a value of the nis2 predicate, or
// returns nil. what names the field for a person: "impact severity".
func checkTerm(what, predicate, value string) error {
	if nis2.has(predicate, value) {
		return nil
	}
	return refuse(RuleTaxonomy, "%s %q is not a value of the nis2 taxonomy (%s)", what, value, strings.Join(nis2.values(predicate), ", "))
}
