package node

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	htmltemplate "html/template"
	"net/http"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// ReportRequest says how to write a situation report (node/api).
type ReportRequest = api.ReportRequest

// Report is a situation report for the crisis as this node sees it: the
// shared situational awareness the Blueprint asks for. It holds only what
// people may share: entries and indicators no wider than MaxTLP (default
// AMBER; AMBER+STRICT and RED never, since a report travels beyond one
// organisation), readable here and believed. The crisis state and its
// decisions are the network's own and always in it.
type Report struct {
	Generated    time.Time
	By           string // this node's member
	MaxTLP       string
	Crisis       CrisisView
	CloseReason  string
	Lessons      string
	LevelHistory []DecisionView // decisions that opened, changed the level or mode, or closed
	Decisions    []DecisionView // every committed decision kept
	Timeline     []EntryView    // incidents, sitreps, requests and decisions posted, oldest first
	Indicators   []IndicatorView
	Withheld     int // entries and indicators above MaxTLP, left out
}

// levelKinds are the commands that change the crisis level or state.
var levelKinds = []crisis.Kind{crisis.KindOpen, crisis.KindAdviseLevel2, crisis.KindEscalateLevel3, crisis.KindSetMode, crisis.KindDeescalate, crisis.KindClose}

// timelineKinds are the entry kinds a report's timeline shows.
var timelineKinds = []string{string(log.KindIncident), string(log.KindSitrep), string(log.KindRequest), string(log.KindDecision)}

// reportTLP reads a report's highest TLP: clear, green or amber (the
// default).
func reportTLP(s string) (log.TLP, error) {
	if s == "" {
		return log.TLPAmber, nil
	}
	t, err := misp.ParseTLP(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if misp.TLPRank(t) > misp.TLPRank(log.TLPAmber) {
		return "", fmt.Errorf("%w: a report shows at most TLP:AMBER (TLP:%s goes to named recipients only, never into a report): use --max-tlp clear, green or amber", ErrBadRequest, strings.ToUpper(string(t)))
	}
	return t, nil
}

// BuildReport assembles the situation report as this node knows it now.
func (n *Node) BuildReport(ctx context.Context, maxTLP string) (*Report, error) {
	limit, err := reportTLP(maxTLP)
	if err != nil {
		return nil, err
	}
	shown := func(tlp string) bool { r := misp.TLPRank(log.TLP(tlp)); return r >= 0 && r <= misp.TLPRank(limit) }
	cv, err := n.Crisis(ctx, false)
	if err != nil {
		return nil, err
	}
	st := n.engine.Local().State
	rep := &Report{Generated: n.now().UTC(), By: n.id.Name(), MaxTLP: strings.ToUpper(string(limit)), Crisis: cv, CloseReason: st.CloseReason, Lessons: st.Lessons}
	for _, d := range n.History().Decisions {
		if d.Outcome != string(StatusCommitted) {
			continue
		}
		rep.Decisions = append(rep.Decisions, d)
		if slices.Contains(levelKinds, crisis.Kind(d.Kind)) {
			rep.LevelHistory = append(rep.LevelHistory, d)
		}
	}
	after := ""
	for {
		page, err := n.Entries(after, api.MaxLimit)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if !e.Readable || e.NotBelieved != "" || !slices.Contains(timelineKinds, e.Kind) {
				continue
			}
			if !shown(e.TLP) {
				rep.Withheld++
				continue
			}
			rep.Timeline = append(rep.Timeline, e)
		}
		if len(page) < api.MaxLimit {
			break
		}
		after = page[len(page)-1].ID
	}
	inds, err := n.Indicators()
	if err != nil {
		return nil, err
	}
	for _, ind := range inds {
		if !shown(ind.TLP) {
			rep.Withheld++
			continue
		}
		rep.Indicators = append(rep.Indicators, ind)
	}
	slices.SortStableFunc(rep.Timeline, func(a, b EntryView) int { return cmp.Compare(a.Time.UnixNano(), b.Time.UnixNano()) })
	return rep, nil
}

// Render writes the report as Markdown ("md") or as one HTML page that
// needs no network ("html": styles inline, no scripts, no images).
func (r *Report) Render(format string) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch format {
	case "", "md", "markdown":
		err = mdReport.Execute(&buf, r)
	case "html":
		err = htmlReport.Execute(&buf, r)
	default:
		return nil, fmt.Errorf("%w: report format %q: want md or html", ErrBadRequest, format)
	}
	if err != nil {
		return nil, fmt.Errorf("node: report: %w", err)
	}
	return buf.Bytes(), nil
}

func (n *Node) handleReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rep, err := n.BuildReport(r.Context(), q.Get("max_tlp"))
	var out []byte
	if err == nil {
		out, err = rep.Render(q.Get("format"))
	}
	if err != nil {
		writeExport(w, nil, err)
		return
	}
	ctype := api.ContentTypeMD
	if q.Get("format") == "html" {
		ctype = api.ContentTypeHTML
	}
	w.Header().Set("Content-Type", ctype)
	w.Write(out)
}

func (n *Node) handleIndicators(w http.ResponseWriter, _ *http.Request) {
	inds, err := n.Indicators()
	if inds == nil {
		inds = []IndicatorView{}
	}
	writeExport(w, api.IndicatorsView{Indicators: inds}, err)
}

// md escapes text for a Markdown table cell: one line, no pipes.
func md(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "|", `\|`).Replace(s)
	return strings.TrimSpace(s)
}

var reportFuncs = map[string]any{
	"md":    md,
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"upper": strings.ToUpper,
	"or":    func(a, b string) string { return cmp.Or(a, b) },
}

var mdReport = texttemplate.Must(texttemplate.New("md").Funcs(reportFuncs).Parse(`# Situation report{{with .Crisis.Title}}: {{md .}}{{end}}

TLP:{{.MaxTLP}} at the most. Written {{when .Generated}} by {{md .By}} from its own view of the crisis log ({{.Crisis.Source}} state, applied index {{.Crisis.AppliedIndex}}).{{if .Withheld}} {{.Withheld}} entries and indicators above TLP:{{.MaxTLP}} are left out.{{end}}{{if .Crisis.Exercise}} **EXERCISE.**{{end}}

## State

| | |
|---|---|
| Status | {{.Crisis.Status}} |
| Level | {{.Crisis.Level}} |
| IPCR mode | {{.Crisis.IPCRMode}} |
| Phase | {{.Crisis.Phase}} |
| Affected member states | {{or (join .Crisis.Affected) "none"}} |
| NIS2 sectors | {{or (join .Crisis.Sectors) "none"}} |
| Impact | {{or .Crisis.Impact "not assessed"}} |
| Outlook | {{or .Crisis.Outlook "not assessed"}} |
| Root cause | {{or .Crisis.RootCause "not known"}} |

## Level and state history

{{if .LevelHistory}}| When | Decision | By |
|---|---|---|
{{range .LevelHistory}}| {{when .At}} | {{md (or .What .Kind)}} | {{md .By}} |
{{end}}{{else}}No decision yet.
{{end}}
## Timeline of incidents and situation reports

{{if .Timeline}}| When | Kind | Author | TLP | Classification | Text |
|---|---|---|---|---|---|
{{range .Timeline}}| {{when .Time}} | {{.Kind}} | {{md .Author}} | {{upper .TLP}} | {{md .RSITClass}}{{with .RSITType}}/{{md .}}{{end}}{{with .Sectors}} {{join .}}{{end}}{{with .Impact}} impact {{md .}}{{end}}{{with .Outlook}} outlook {{md .}}{{end}} | {{md .Text}} |
{{end}}{{else}}Nothing posted at this TLP.
{{end}}
## Indicators

{{if .Indicators}}| Type | Value | Incident | TLP | Source |
|---|---|---|---|---|
{{range .Indicators}}| {{md .Type}} | {{md .Value}} | {{md (or .IncidentTitle .Incident)}} | {{upper .TLP}} | {{.Format}} |
{{end}}{{else}}None held at this TLP.
{{end}}
## Reserve requests

{{if .Crisis.Requests}}| Request | Sector | Services | Status | Deadline |
|---|---|---|---|---|
{{range .Crisis.Requests}}| {{.ID}} | {{md .Sector}} | {{md (join .Services)}} | {{.Status}}{{if .Overdue}} (overdue){{end}} | {{when .Deadline}} |
{{end}}{{else}}None.
{{end}}
## Decisions

{{if .Decisions}}| When | Kind | What | Signed by | Term/index |
|---|---|---|---|---|
{{range .Decisions}}| {{when .At}} | {{.Kind}} | {{md .What}} | {{md .By}} | {{.Term}}/{{.Index}} |
{{end}}{{else}}None.
{{end}}
## Lessons

{{with .CloseReason}}Closed: {{.}}

{{end}}{{or .Lessons "None recorded yet (they are written when the crisis is closed)."}}
`))

var htmlReport = htmltemplate.Must(htmltemplate.New("html").Funcs(reportFuncs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Situation report{{with .Crisis.Title}}: {{.}}{{end}}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#111}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #0b3d91;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0} th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef2fa} .meta{color:#444} .tlp{font-weight:bold;padding:0 .3em;border-radius:3px}
.tlp-CLEAR{background:#fff;border:1px solid #999} .tlp-GREEN{background:#33ff00;color:#000} .tlp-AMBER{background:#ffc000;color:#000}
.exercise{background:#ffe08a;padding:.3em .6em;font-weight:bold} .overdue{color:#b00;font-weight:bold} code{word-break:break-all}
</style></head><body>
<h1>Situation report{{with .Crisis.Title}}: {{.}}{{end}}</h1>
<p class="meta"><span class="tlp tlp-{{.MaxTLP}}" id="max-tlp">TLP:{{.MaxTLP}}</span> at the most. Written {{when .Generated}} by {{.By}} from its own view of the crisis log ({{.Crisis.Source}} state, applied index {{.Crisis.AppliedIndex}}).{{if .Withheld}} {{.Withheld}} entries and indicators above TLP:{{.MaxTLP}} are left out.{{end}}</p>
{{if .Crisis.Exercise}}<p class="exercise">EXERCISE</p>{{end}}
<h2>State</h2>
<table id="state">
<tr><th>Status</th><td>{{.Crisis.Status}}</td></tr>
<tr><th>Level</th><td id="level">{{.Crisis.Level}}</td></tr>
<tr><th>IPCR mode</th><td>{{.Crisis.IPCRMode}}</td></tr>
<tr><th>Phase</th><td>{{.Crisis.Phase}}</td></tr>
<tr><th>Affected member states</th><td id="affected">{{or (join .Crisis.Affected) "none"}}</td></tr>
<tr><th>NIS2 sectors</th><td id="sectors">{{or (join .Crisis.Sectors) "none"}}</td></tr>
<tr><th>Impact</th><td>{{or .Crisis.Impact "not assessed"}}</td></tr>
<tr><th>Outlook</th><td>{{or .Crisis.Outlook "not assessed"}}</td></tr>
<tr><th>Root cause</th><td>{{or .Crisis.RootCause "not known"}}</td></tr>
</table>
<h2>Level and state history</h2>
{{if .LevelHistory}}<table id="levels"><tr><th>When</th><th>Decision</th><th>By</th></tr>
{{range .LevelHistory}}<tr><td>{{when .At}}</td><td>{{or .What .Kind}}</td><td>{{.By}}</td></tr>
{{end}}</table>{{else}}<p>No decision yet.</p>{{end}}
<h2>Timeline of incidents and situation reports</h2>
{{if .Timeline}}<table id="timeline"><tr><th>When</th><th>Kind</th><th>Author</th><th>TLP</th><th>Classification</th><th>Text</th></tr>
{{range .Timeline}}<tr><td>{{when .Time}}</td><td>{{.Kind}}</td><td>{{.Author}}</td><td><span class="tlp tlp-{{upper .TLP}}">{{upper .TLP}}</span></td><td>{{.RSITClass}}{{with .RSITType}}/{{.}}{{end}}{{with .Sectors}} {{join .}}{{end}}{{with .Impact}} impact {{.}}{{end}}{{with .Outlook}} outlook {{.}}{{end}}</td><td>{{.Text}}</td></tr>
{{end}}</table>{{else}}<p>Nothing posted at this TLP.</p>{{end}}
<h2>Indicators</h2>
{{if .Indicators}}<table id="indicators"><tr><th>Type</th><th>Value</th><th>Incident</th><th>TLP</th><th>Source</th></tr>
{{range .Indicators}}<tr><td>{{.Type}}</td><td><code>{{.Value}}</code></td><td>{{or .IncidentTitle .Incident}}</td><td><span class="tlp tlp-{{upper .TLP}}">{{upper .TLP}}</span></td><td>{{.Format}}</td></tr>
{{end}}</table>{{else}}<p>None held at this TLP.</p>{{end}}
<h2>Reserve requests</h2>
{{if .Crisis.Requests}}<table id="requests"><tr><th>Request</th><th>Sector</th><th>Services</th><th>Status</th><th>Deadline</th></tr>
{{range .Crisis.Requests}}<tr><td>{{.ID}}</td><td>{{.Sector}}</td><td>{{join .Services}}</td><td>{{.Status}}{{if .Overdue}} <span class="overdue">overdue</span>{{end}}</td><td>{{when .Deadline}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
<h2>Decisions</h2>
{{if .Decisions}}<table id="decisions"><tr><th>When</th><th>Kind</th><th>What</th><th>Signed by</th><th>Term/index</th></tr>
{{range .Decisions}}<tr><td>{{when .At}}</td><td>{{.Kind}}</td><td>{{.What}}</td><td>{{.By}}</td><td>{{.Term}}/{{.Index}}</td></tr>
{{end}}</table>{{else}}<p>None.</p>{{end}}
<h2>Lessons</h2>
{{with .CloseReason}}<p>Closed: {{.}}</p>{{end}}
<p id="lessons">{{or .Lessons "None recorded yet (they are written when the crisis is closed)."}}</p>
</body></html>
`))
