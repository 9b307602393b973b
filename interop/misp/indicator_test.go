package misp

import (
	"reflect"
	"testing"

	"github.com/crisismesh/crisismesh/replication/log"
)

// An attribute's indicator is its own, an object's its attributes', an
// event's none; data that is not MISP gives none.
func TestIndicators(t *testing.T) {
	for _, tc := range []struct {
		typ, data string
		want      []Indicator
	}{
		{TypeAttribute, `{"type":"ip-dst","value":"198.51.100.7","category":"Network activity"}`, []Indicator{{Type: "ip-dst", Value: "198.51.100.7"}}},
		{TypeObject, `{"name":"file","Attribute":[{"type":"sha1","value":"33447383379ca99083442b852589111296f0c603"},{"type":"filename","value":"a.docx"},{"type":"text"}]}`,
			[]Indicator{{Type: "sha1", Value: "33447383379ca99083442b852589111296f0c603", Name: "file"}, {Type: "filename", Value: "a.docx", Name: "file"}}},
		{TypeEvent, `{"info":"an event","type":"x","value":"y"}`, nil},
		{TypeAttribute, `{"type":"ip-dst"}`, nil},
		{TypeAttribute, `{"type":["not","a","string"],"value":"v"}`, nil},
	} {
		in := &log.Intel{Format: log.IntelMISP, Type: tc.typ, ID: "x", Data: []byte(tc.data)}
		if got := Indicators(in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s: %+v, want %+v", tc.typ, tc.data, got, tc.want)
		}
	}
	stix := &log.Intel{Format: log.IntelSTIX, Type: TypeAttribute, ID: "x", Data: []byte(`{"type":"ip-dst","value":"v"}`)}
	if got := Indicators(stix); got != nil {
		t.Errorf("a STIX item read as MISP: %+v", got)
	}
	if got := Title(&log.Intel{Data: []byte(`{"info":"Sednit update"}`)}); got != "Sednit update" {
		t.Errorf("Title of an event: %q", got)
	}
}
