package misp

import (
	"encoding/json"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Indicator is an observable an intel item carries, as people read it:
// its type in its format and its value.
type Indicator struct {
	// Type is a MISP attribute's type (ip-dst, domain, sha256, …) or a
	// STIX indicator's pattern type (stix, sigma, snort, …).
	Type string
	// Value is the attribute's value, or the indicator's pattern.
	Value string
	// Name is the MISP object that holds the attribute, or the STIX
	// indicator's name ("" when it has none).
	Name string
}

// Indicators returns the indicators of a MISP item: an attribute's own,
// each attribute of an object; an event's own part carries none. An item
// whose data does not read as MISP gives none.
func Indicators(in *log.Intel) []Indicator {
	var item struct {
		Type, Value, Name string
		Attribute         []struct{ Type, Value string }
	}
	if in.Format != log.IntelMISP || json.Unmarshal(in.Data, &item) != nil {
		return nil
	}
	var out []Indicator
	switch in.Type {
	case TypeAttribute:
		if item.Type != "" && item.Value != "" {
			out = append(out, Indicator{Type: item.Type, Value: item.Value})
		}
	case TypeObject:
		for _, a := range item.Attribute {
			if a.Type != "" && a.Value != "" {
				out = append(out, Indicator{Type: a.Type, Value: a.Value, Name: item.Name})
			}
		}
	}
	return out
}

// Title is what people call a MISP item: an event's info, an object's
// name ("" for an attribute).
func Title(in *log.Intel) string {
	var item struct{ Info, Name string }
	if json.Unmarshal(in.Data, &item) != nil {
		return ""
	}
	if item.Info != "" {
		return item.Info
	}
	return item.Name
}
