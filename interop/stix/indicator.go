package stix

import (
	"encoding/json"
	"strings"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Indicators returns the indicator a STIX object carries: an indicator's
// pattern, with its pattern type and name. Other objects carry none.
func Indicators(in *log.Intel) []misp.Indicator {
	var o struct {
		Pattern     string `json:"pattern"`
		PatternType string `json:"pattern_type"`
		Name        string `json:"name"`
	}
	if in.Format != log.IntelSTIX || in.Type != "indicator" || json.Unmarshal(in.Data, &o) != nil || o.Pattern == "" {
		return nil
	}
	return []misp.Indicator{{Type: o.PatternType, Value: o.Pattern, Name: o.Name}}
}

// Title is what people call a STIX object: its name ("" without one).
func Title(in *log.Intel) string {
	var o struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(in.Data, &o) != nil {
		return ""
	}
	return o.Name
}

// Link reads a relationship between an indicator and an incident (either
// way round, any relationship type): the indicator's and the incident's
// IDs. ok is false for any other object.
func Link(in *log.Intel) (indicator, incident string, ok bool) {
	var r struct {
		Source string `json:"source_ref"`
		Target string `json:"target_ref"`
	}
	if in.Format != log.IntelSTIX || in.Type != "relationship" || json.Unmarshal(in.Data, &r) != nil {
		return "", "", false
	}
	is := func(id, typ string) bool { return strings.HasPrefix(id, typ+"--") }
	switch {
	case is(r.Source, "indicator") && is(r.Target, "incident"):
		return r.Source, r.Target, true
	case is(r.Source, "incident") && is(r.Target, "indicator"):
		return r.Target, r.Source, true
	}
	return "", "", false
}
