package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// openAPIDoc is the part of openapi.json the tests read directly.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"schemas"`
	} `json:"components"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var d openAPIDoc
	if err := json.Unmarshal(api.OpenAPI(), &d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return d
}

// The document is valid OpenAPI 3.1, as a library that knows the
// specification's schema says (not by hand).
func TestOpenAPIDocumentValid(t *testing.T) {
	doc, err := libopenapi.NewDocument(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Errorf("openapi version %q, want 3.1.0", v)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Errorf("building the model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("openapi.json: %s: %s (%s)", e.Message, e.Reason, e.HowToFix)
		}
	}
}

// Every route the server registers is documented, and every documented
// path and method is served: both lists come from their one source, the
// route table and the document.
func TestOpenAPICoversRoutes(t *testing.T) {
	var served []string
	for _, r := range (*Node)(nil).routes() {
		// ServeMux's {name...} is OpenAPI's {name}.
		served = append(served, r.method+" "+strings.ReplaceAll(r.path, "...}", "}"))
	}
	var documented []string
	for path, item := range readOpenAPI(t).Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	for _, s := range served {
		if !slices.Contains(documented, s) {
			t.Errorf("served but not in openapi.json: %s", s)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("in openapi.json but not served: %s", d)
		}
	}
	if len(served) != len(documented) {
		t.Errorf("%d routes served, %d documented", len(served), len(documented))
	}
}

// Each schema of the document has exactly the JSON fields of the api type
// of its name, and requires exactly those a response always carries (no
// omitempty).
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	types := map[string]any{
		"Error": api.Error{}, "StatusView": api.StatusView{}, "OffenceView": api.OffenceView{}, "DiskView": api.DiskView{},
		"PeerView": api.PeerView{}, "RaftView": api.RaftView{}, "PostRequest": api.PostRequest{}, "EntryView": api.EntryView{},
		"CrisisView": api.CrisisView{}, "PendingView": api.PendingView{}, "RequestView": api.RequestView{},
		"OutcomeView": api.OutcomeView{}, "CommandResult": api.CommandResult{}, "CommandRequest": api.CommandRequest{},
		"HolderView": api.HolderView{}, "SyncRequest": api.SyncRequest{}, "SyncReport": api.SyncReport{},
		"ExportRequest": api.ExportRequest{}, "ImportRequest": api.ImportRequest{}, "BundleView": api.BundleView{},
		"ArchiveExportRequest": api.ArchiveExportRequest{}, "ArchiveView": api.ArchiveView{},
		"RosterMemberView": api.RosterMemberView{}, "PendingUpdateView": api.PendingUpdateView{}, "MembersView": api.MembersView{},
		"UpdateRequest": api.UpdateRequest{}, "UpdateResult": api.UpdateResult{}, "GroupView": api.GroupView{},
		"GroupRequest": api.GroupRequest{}, "KeyRotateRequest": api.KeyRotateRequest{}, "KeyRotation": api.KeyRotation{},
		"LoginCode": api.LoginCode{}, "AlertView": api.AlertView{},
		"DecisionView": api.DecisionView{}, "HistoryView": api.HistoryView{},
		"Problem": api.Problem{}, "MISPImportResult": api.MISPImportResult{}, "Withheld": api.Withheld{}, "MISPExport": api.MISPExport{},
		"BridgedView": api.BridgedView{}, "MatrixStatusView": api.MatrixStatusView{},
		"STIXImportResult": api.STIXImportResult{}, "STIXExport": api.STIXExport{},
		"IndicatorView": api.IndicatorView{}, "IndicatorsView": api.IndicatorsView{},
		"WaitingView": api.WaitingView{}, "WindowView": api.WindowView{}, "WaitingEntryView": api.WaitingEntryView{},
	}
	// Request fields without omitempty that a request may still leave out.
	optional := map[string]bool{"PostRequest.kind": true, "PostRequest.tlp": true, "PostRequest.priority": true, "PostRequest.text": true}
	doc := readOpenAPI(t)
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s", name)
			continue
		}
		var fields, required []string
		for _, f := range reflect.VisibleFields(reflect.TypeOf(v)) {
			tag := f.Tag.Get("json")
			jn, opts, _ := strings.Cut(tag, ",")
			if tag == "-" || jn == "" || !f.IsExported() {
				continue // an embedded struct's own fields are visited too
			}
			fields = append(fields, jn)
			if !strings.Contains(opts, "omitempty") && !optional[name+"."+jn] {
				required = append(required, jn)
			}
		}
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(fields)
		sort.Strings(props)
		sort.Strings(required)
		req := slices.Sorted(slices.Values(s.Required))
		if !slices.Equal(fields, props) {
			t.Errorf("schema %s: properties %v, want the fields of api.%s %v", name, props, name, fields)
		}
		if !slices.Equal(required, req) {
			t.Errorf("schema %s: required %v, want %v (fields without omitempty)", name, req, required)
		}
	}
}

// Real answers of a running node validate against the document, and so do
// the requests the typed client sends.
func TestOpenAPIResponsesValidate(t *testing.T) {
	a := newAPITester(t)
	doc, err := libopenapi.NewDocument(api.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// The check can fail: an answer that breaks the schema is caught.
	bad := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+a.addr+path, nil)
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		if ok, _ := v.ValidateHttpResponse(req, resp); ok {
			t.Errorf("GET %s answering %s validates; the schema should refuse it", path, body)
		}
	}
	bad(api.PathStatus, `{"member":1}`)
	bad(api.PathCrisis, `{}`)
	bad(api.PathEntries, `[{"id":"x","extra":true}]`)

	ctx := context.Background()
	waitUntil(t, 20*time.Second, "leadership", func() bool { return a.n.Consensus().IsLeader() })
	e, err := a.client().Post(ctx, api.PostRequest{Kind: "sitrep", Text: "for the contract"})
	if err != nil {
		t.Fatal(err)
	}
	// Entries waiting for their post-quantum signature, one overdue, so
	// that the waiting view, the counts and the alert are all checked.
	key, _ := a.n.Store().NetworkKey()
	tip := log.Tip{Seq: e.Seq, ID: mustHash(t, e.ID), Lamport: e.Lamport}
	held := holding(time.Now().Add(-time.Hour), false, provisionalChain(t, a.n.Identity(), a.n.Store().Network(), key, tip, 2, "contract")...)
	a.n.waiting = func() []store.WaitingEntry { return held }
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"GET", api.PathStatus, "", "", 200},
		{"GET", api.PathEntries + "?limit=1", "", "", 200},
		{"GET", api.PathEntries + "?after=" + e.ID, "", "", 200},
		{"POST", api.PathEntries, "application/json", `{"kind":"sitrep","tlp":"green","priority":"flash","text":"hello","refs":["` + e.ID + `"]}`, 201},
		{"POST", api.PathEntries, "application/json", `{"TLP":"green"}`, 400},
		{"GET", api.PathCrisis, "", "", 200},
		{"GET", api.PathCrisis + "?linearizable=1", "", "", 200},
		{"GET", api.PathMatrixStatus, "", "", 200},
		{"GET", api.PathWaiting, "", "", 200},
		{"POST", api.PathCrisis, "application/json", `{"kind":"open","title":"t","level":1}`, 200},
		{"GET", api.PathHistory, "", "", 200},
		{"GET", "/api/v1/crisis/commands/00", "", "", 400},
		{"GET", "/api/v1/who-has/" + e.ID, "", "", 200},
		{"GET", "/api/v1/who-has/nope", "", "", 400}, // not an ID: a malformed request
		{"POST", api.PathSync, "application/json", `{"peer":"nobody"}`, 502},
		{"GET", api.PathMembers, "", "", 200},
		{"POST", api.PathMembers, "application/json", `{"op":"revoke","member":"nobody"}`, 200},
		{"GET", "/api/v1/members/updates/00", "", "", 400},
		{"GET", api.PathGroups, "", "", 200},
		{"POST", api.PathGroups, "application/json", `{"op":"create","group":"g1","members":["node0"]}`, 200},
		{"POST", api.PathKeyRotate, "application/json", `{"group":"nope"}`, 400},
		{"POST", api.PathLoginCodes, "", "", 200},
		{"GET", api.PathOpenAPI, "", "", 200},
		{"POST", api.PathBundleExport, "application/json", `{"out":"/tmp/outside.bundle"}`, 400},
		{"POST", api.PathArchiveExport, "application/json", `{"out":"/tmp/outside.archive"}`, 400},
		{"GET", api.PathMetrics, "", "", 200},
		{"GET", api.PathLogin, "", "", 200},
		{"GET", api.PathIndicators, "", "", 200},
		{"GET", api.PathReport, "", "", 200},
		{"GET", api.PathReport + "?format=html&max_tlp=green", "", "", 200},
		{"GET", api.PathReport + "?max_tlp=red", "", "", 400},
		{"GET", api.PathReport + "?format=pdf", "", "", 400},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		req, _ := http.NewRequest(tc.method, "http://"+a.addr+tc.path, body)
		req.Header.Set("Authorization", "Bearer "+a.token)
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: got %d %.300s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.want)
			continue
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if tc.body != "" {
			req.Body = io.NopCloser(strings.NewReader(tc.body))
		}
		if ok, verrs := v.ValidateHttpResponse(req, resp); !ok {
			for _, ve := range verrs {
				t.Errorf("%s %s → %d: %s: %s", tc.method, tc.path, resp.StatusCode, ve.Message, ve.Reason)
			}
		}
		if tc.want < 300 && tc.body != "" {
			req.Body = io.NopCloser(strings.NewReader(tc.body))
			if ok, verrs := v.ValidateHttpRequest(req); !ok {
				for _, ve := range verrs {
					t.Errorf("request %s %s: %s: %s", tc.method, tc.path, ve.Message, ve.Reason)
				}
			}
		}
	}
}
