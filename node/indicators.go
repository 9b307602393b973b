package node

import (
	"cmp"
	"slices"
	"time"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/interop/stix"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
)

// IndicatorView is an indicator as the API shows it (node/api).
type IndicatorView = api.IndicatorView

// Indicators lists the indicators in the intel this node can read (the
// newest version of each MISP or STIX item), each linked to its incident:
// a MISP attribute's or object's event; a STIX indicator's incident,
// through a relationship between the two. Oldest first.
func (n *Node) Indicators() ([]IndicatorView, error) {
	type held struct {
		e  *log.Entry
		b  *log.Body
		in *log.Intel
	}
	newest := map[string]held{} // format + item ID → its newest version
	err := n.eachIntel("", func(e *log.Entry, b *log.Body, in *log.Intel) {
		k := in.Format + " " + in.ID
		if h, ok := newest[k]; !ok || in.Version >= h.in.Version {
			newest[k] = held{e, b, in}
		}
	})
	if err != nil {
		return nil, err
	}
	incidentOf := map[string]string{} // STIX indicator ID → incident ID
	for _, h := range newest {
		if ind, inc, ok := stix.Link(h.in); ok {
			incidentOf[ind] = inc
		}
	}
	var out []IndicatorView
	for _, h := range newest {
		var inds []misp.Indicator
		var incident string
		switch h.in.Format {
		case log.IntelMISP:
			inds, incident = misp.Indicators(h.in), h.in.Parent
		case log.IntelSTIX:
			inds, incident = stix.Indicators(h.in), incidentOf[h.in.ID]
		}
		for _, ind := range inds {
			v := IndicatorView{
				Entry: h.e.ID().String(), Format: h.in.Format, Item: h.in.ID, Type: ind.Type, Value: ind.Value, Name: ind.Name,
				TLP: string(h.b.TLP), Time: time.UnixMilli(h.e.Header.Time).UTC(), Incident: incident,
			}
			if inc, ok := newest[h.in.Format+" "+incident]; ok && incident != "" {
				v.IncidentEntry = inc.e.ID().String()
				v.IncidentTitle = cmp.Or(misp.Title(inc.in), stix.Title(inc.in))
			}
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b IndicatorView) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Entry, b.Entry), cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
	})
	return out, nil
}
