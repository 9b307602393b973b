package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/node/api"
)

// apiTester sends raw requests to one node's API.
type apiTester struct {
	t     *testing.T
	n     *Node
	addr  string
	token string
}

func newAPITester(t *testing.T) *apiTester {
	n, nodes := openSingle(t)
	token, err := ReadToken(nodes[0].Dir)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().CurrentKey("all"); return ok })
	return &apiTester{t: t, n: n, addr: n.apiAddr(), token: token}
}

// req builds a request to path with the bearer token; edit changes it
// before it is sent.
func (a *apiTester) send(method, path, body string, edit func(*http.Request)) (int, http.Header, string) {
	a.t.Helper()
	req, err := http.NewRequest(method, "http://"+a.addr+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (a *apiTester) client() *api.Client { return api.NewClient("http://"+a.addr, a.token, nil) }

// A request body that is not exactly one JSON object of the endpoint's
// fields is refused with 400 naming the field, and nothing is stored
// (issue 13: {"TLP ": "red"} was stored as AMBER for the whole network).
func TestStrictJSON(t *testing.T) {
	a := newAPITester(t)
	before := a.n.Status(context.Background()).Entries
	for _, tc := range []struct {
		name, path, body string
		want             []string // in the message
	}{
		{"unknown field", api.PathEntries, `{"TLP ":"red","text":"x"}`, []string{`unknown field "TLP "`}},
		{"case only", api.PathEntries, `{"TLP":"red","text":"x"}`, []string{`"TLP"`, "case-sensitive", `"tlp"`}},
		{"twice", api.PathEntries, `{"tlp":"red","text":"x","tlp":"clear"}`, []string{`"tlp" given twice`}},
		{"trailing object", api.PathEntries, `{"text":"x"} {"text":"y"}`, []string{"trailing data"}},
		{"trailing garbage", api.PathEntries, `{"text":"x"}]`, []string{"trailing data"}},
		{"empty", api.PathEntries, ``, []string{"empty"}},
		{"crisis unknown", api.PathCrisis, `{"kind":"open","levle":3}`, []string{`unknown field "levle"`}},
		{"crisis case", api.PathCrisis, `{"Kind":"open"}`, []string{`"Kind"`, "case-sensitive"}},
		{"group nested case", api.PathGroups, `{"op":"create","group":"g","Members":["a"]}`, []string{`"Members"`}},
		{"roster card twice", api.PathMembers, `{"op":"add","card":{"card":"x","card":"y"}}`, []string{`"card.card" given twice`}},
		{"roster card unknown", api.PathMembers, `{"op":"add","roles":["csirt"],"rolez":[]}`, []string{`unknown field "rolez"`}},
		{"sync", api.PathSync, `{"peer":"a","Peer":"b"}`, []string{`"Peer"`}},
		{"key rotate", api.PathKeyRotate, `{"group":""}x`, []string{"trailing data"}},
		{"export", api.PathBundleExport, `{"for":"","out":"","all":true}`, []string{`unknown field "all"`}},
	} {
		code, _, body := a.send("POST", tc.path, tc.body, nil)
		var e api.Error
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Code != "bad-request" {
			t.Errorf("%s: POST %s %s: got %d %s, want 400 bad-request", tc.name, tc.path, tc.body, code, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(e.Message, w) {
				t.Errorf("%s: message %q does not name %s", tc.name, e.Message, w)
			}
		}
	}
	if got := a.n.Status(context.Background()).Entries; got != before {
		t.Errorf("entries after refused posts: got %d, want %d", got, before)
	}
	// The strict decoder still takes what it should.
	if code, _, body := a.send("POST", api.PathEntries, ` {"kind":"sitrep","tlp":"green","text":"ok","refs":[]}`+"\n", nil); code != http.StatusCreated {
		t.Errorf("a good post: %d %s", code, body)
	}
}

// The strict decoder on its own, for what the API cannot reach easily.
func TestDecodeStrict(t *testing.T) {
	type inner struct {
		A int `json:"a"`
	}
	type outer struct {
		In   inner            `json:"in"`
		List []inner          `json:"list"`
		Map  map[string]inner `json:"map"`
		Any  any              `json:"any"`
		Skip string           `json:"-"`
	}
	for _, tc := range []struct {
		body, want string // want "" means accepted
	}{
		{`{"in":{"a":1},"list":[{"a":2}],"map":{"k":{"a":3},"K":{"a":4}},"any":{"x":1,"X":2}}`, ""},
		{`{"in":{"A":1}}`, `"in.A"`},
		{`{"list":[{"a":1},{"a":1,"a":2}]}`, `"list[1].a" given twice`},
		{`{"map":{"k":{"b":1}}}`, `unknown field "map.k.b"`},
		{`{"map":{"k":{},"k":{}}}`, `"map.k" given twice`},
		{`{"any":{"x":1,"x":2}}`, `"any.x" given twice`},
		{`{"Skip":"x"}`, `unknown field "Skip"`},
		{`{"-":"x"}`, `unknown field "-"`},
		{`[]`, "cannot unmarshal"},
		{`{"in":{"a":1}} 1`, "trailing data"},
	} {
		var v outer
		err := decodeStrict(strings.NewReader(tc.body), &v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: got %v, want accepted", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error with %s", tc.body, err, tc.want)
		}
	}
}

// A body over its endpoint's limit is 413 (issue 13: it was 400).
func TestBodyLimits(t *testing.T) {
	a := newAPITester(t)
	big := func(n int) string { return `{"text":"` + strings.Repeat("x", n) + `"}` }
	for _, tc := range []struct {
		path string
		body string
		want int
	}{
		{api.PathEntries, big(api.MaxEntryBody), http.StatusRequestEntityTooLarge},
		{api.PathCrisis, big(api.MaxBody), http.StatusRequestEntityTooLarge},
		{api.PathMembers, big(api.MaxBody), http.StatusRequestEntityTooLarge},
		{api.PathBundleImport, `{"file":"` + strings.Repeat("x", api.MaxBody) + `"}`, http.StatusRequestEntityTooLarge},
		// Under the entry limit but over the others': an entry may be large.
		{api.PathEntries, `{"kind":"sitrep","text":"` + strings.Repeat("x", 2*api.MaxBody) + `"}`, http.StatusCreated},
	} {
		code, _, body := a.send("POST", tc.path, tc.body, nil)
		if code != tc.want {
			t.Errorf("POST %s with %d bytes: got %d %.200s, want %d", tc.path, len(tc.body), code, body, tc.want)
			continue
		}
		if code == http.StatusRequestEntityTooLarge && !strings.Contains(body, `"too-large"`) {
			t.Errorf("POST %s: 413 without code too-large: %s", tc.path, body)
		}
	}
}

// Every request must name the API's own address (DNS rebinding), and a
// request that changes something must come from the API's own origin when
// it says where it comes from, and must say so when only the cookie
// authenticates it (cross-site requests).
func TestHostAndOrigin(t *testing.T) {
	a := newAPITester(t)
	_, port, _ := strings.Cut(a.addr, ":")
	own := "http://" + a.addr
	cookie := &http.Cookie{Name: a.n.web.cookie, Value: a.n.web.session}
	noBearer := func(r *http.Request) { r.Header.Del("Authorization"); r.AddCookie(cookie) }
	post := `{"kind":"sitrep","text":"origin test"}`
	for _, tc := range []struct {
		name         string
		method, path string
		edit         func(*http.Request)
		want         int
	}{
		{"own host", "GET", api.PathStatus, nil, http.StatusOK},
		{"localhost", "GET", api.PathStatus, func(r *http.Request) { r.Host = "localhost:" + port }, http.StatusOK},
		{"rebound name", "GET", api.PathStatus, func(r *http.Request) { r.Host = "attacker.example:" + port }, http.StatusMisdirectedRequest},
		{"other port", "GET", api.PathStatus, func(r *http.Request) { r.Host = "127.0.0.1:1" }, http.StatusMisdirectedRequest},
		{"metrics rebound", "GET", api.PathMetrics, func(r *http.Request) { r.Host = "attacker.example" }, http.StatusMisdirectedRequest},
		{"login rebound", "GET", api.PathLogin, func(r *http.Request) { r.Host = "attacker.example" }, http.StatusMisdirectedRequest},
		{"unknown path rebound", "GET", "/nowhere", func(r *http.Request) { r.Host = "attacker.example" }, http.StatusMisdirectedRequest},
		{"bearer, no origin", "POST", api.PathEntries, nil, http.StatusCreated},
		{"bearer, own origin", "POST", api.PathEntries, func(r *http.Request) { r.Header.Set("Origin", own) }, http.StatusCreated},
		{"bearer, other origin", "POST", api.PathEntries, func(r *http.Request) { r.Header.Set("Origin", "http://attacker.example") }, http.StatusForbidden},
		{"cookie, no origin", "POST", api.PathEntries, noBearer, http.StatusForbidden},
		{"cookie, other origin", "POST", api.PathEntries, func(r *http.Request) { noBearer(r); r.Header.Set("Origin", "null") }, http.StatusForbidden},
		{"cookie, own origin", "POST", api.PathEntries, func(r *http.Request) { noBearer(r); r.Header.Set("Origin", own) }, http.StatusCreated},
		{"cookie, GET without origin", "GET", api.PathStatus, noBearer, http.StatusOK},
		{"wrong cookie", "GET", api.PathStatus, func(r *http.Request) {
			r.Header.Del("Authorization")
			r.AddCookie(&http.Cookie{Name: cookie.Name, Value: a.token})
		}, http.StatusUnauthorized},
		{"login post, other origin", "POST", api.PathLogin, func(r *http.Request) {
			r.Header.Del("Authorization")
			r.Header.Set("Origin", "http://attacker.example")
		}, http.StatusForbidden},
	} {
		body := ""
		if tc.method == "POST" {
			body = post
		}
		code, _, got := a.send(tc.method, tc.path, body, tc.edit)
		if code != tc.want {
			t.Errorf("%s: %s %s: got %d %.200s, want %d", tc.name, tc.method, tc.path, code, got, tc.want)
		}
	}
}

// The token never travels in a URL: /login takes a one-time code (or the
// token) from a form, a code works once and only for 10 minutes, and the
// session cookie is HttpOnly, SameSite=Strict and not the token.
func TestLoginOneTimeCode(t *testing.T) {
	a := newAPITester(t)
	form := func(code string, edit func(*http.Request)) (int, http.Header, string) {
		return a.send("POST", api.PathLogin, url.Values{"code": {code}}.Encode(), func(r *http.Request) {
			r.Header.Del("Authorization")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if edit != nil {
				edit(r)
			}
		})
	}
	code, hdr, page := a.send("GET", api.PathLogin+"?token="+url.QueryEscape(a.token), "", func(r *http.Request) { r.Header.Del("Authorization") })
	if code != http.StatusBadRequest || hdr.Get("Set-Cookie") != "" || !strings.Contains(page, "one-time code") {
		t.Errorf("login with the token in the URL: got %d, cookie %q, want 400 and no cookie", code, hdr.Get("Set-Cookie"))
	}
	if code, _, page := a.send("GET", api.PathLogin, "", func(r *http.Request) { r.Header.Del("Authorization") }); code != http.StatusOK || !strings.Contains(page, `<form id="login" method="post"`) {
		t.Errorf("login form: %d %s", code, page)
	}
	lc, err := a.client().LoginCode(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if lc.URL != "http://"+a.addr+api.PathLogin || time.Until(lc.Expires) > loginCodeTTL || time.Until(lc.Expires) < loginCodeTTL-time.Minute {
		t.Errorf("login code: %+v", lc)
	}
	// As a person types it: lower case, without dashes.
	typed := strings.ToLower(strings.ReplaceAll(lc.Code, "-", ""))
	code, hdr, _ = form(typed, func(r *http.Request) { r.Header.Set("Origin", "http://"+a.addr) })
	if code != http.StatusSeeOther || hdr.Get("Location") != api.PathDashboard {
		t.Fatalf("login with the code: got %d to %q, want 303 to %s", code, hdr.Get("Location"), api.PathDashboard)
	}
	resp := http.Response{Header: hdr}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Value == a.token || strings.Contains(cookies[0].Value, a.token) {
		t.Errorf("session cookie: %+v, want one HttpOnly SameSite=Strict cookie that is not the token", cookies)
	}
	if code, _, _ := form(lc.Code, nil); code != http.StatusUnauthorized {
		t.Errorf("the same code again: got %d, want 401", code)
	}
	if code, _, _ := form("AAAA-BBBB-CCCC-DDDD", nil); code != http.StatusUnauthorized {
		t.Errorf("a made-up code: got %d, want 401", code)
	}
	if code, _, _ := form(a.token, nil); code != http.StatusSeeOther {
		t.Errorf("the token in the form: got %d, want 303", code)
	}

	// Expiry and the cap on outstanding codes, on the guard's own clock.
	g := newWebGuard("tok", "127.0.0.1:1", "127.0.0.1:1")
	now := time.Unix(1_000_000, 0)
	c1, _, _ := g.newCode(now)
	if g.useCode(c1, now.Add(loginCodeTTL)) {
		t.Error("a code used at its expiry was accepted")
	}
	var codes []string
	for range maxLoginCodes + 1 {
		c, _, _ := g.newCode(now)
		codes = append(codes, c)
		now = now.Add(time.Second)
	}
	if g.useCode(codes[0], now) {
		t.Errorf("the oldest of %d codes still works; at most %d are kept", len(codes), maxLoginCodes)
	}
	if !g.useCode(codes[len(codes)-1], now) {
		t.Error("the newest code does not work")
	}
}

// GET /api/v1/entries answers pages of at most limit entries with the
// cursor of the next in a header; following it reads every entry once,
// in display order.
func TestEntriesCursor(t *testing.T) {
	a := newAPITester(t)
	ctx := context.Background()
	for i := range 7 {
		if _, err := a.n.Post(ctx, PostRequest{Kind: "sitrep", Text: "page " + string(rune('a'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := a.n.Entries("", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	after, pages := "", 0
	for {
		es, next, err := a.client().Entries(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(es) > 3 {
			t.Fatalf("page of %d entries, limit 3", len(es))
		}
		for _, e := range es {
			got = append(got, e.ID)
		}
		if next == "" {
			break
		}
		if next != es[len(es)-1].ID {
			t.Errorf("next %s, want the page's last entry %s", next, es[len(es)-1].ID)
		}
		after = next
	}
	var want []string
	for _, e := range all {
		want = append(want, e.ID)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries by pages: got %d %v, want %d %v", len(got), got, len(want), want)
	}
	if wantPages := (len(want) + 2) / 3; pages != wantPages {
		t.Errorf("pages: got %d, want %d (the last page has no next)", pages, wantPages)
	}
	for _, q := range []string{"limit=x", "limit=-1"} {
		if code, _, body := a.send("GET", api.PathEntries+"?"+q, "", nil); code != http.StatusBadRequest {
			t.Errorf("%s: got %d %s, want 400", q, code, body)
		}
	}
	if code, hdr, body := a.send("GET", api.PathEntries+"?limit=100000", "", nil); code != http.StatusOK || hdr.Get(api.HeaderNext) != "" {
		t.Errorf("limit over the cap with few entries: %d %q %.100s", code, hdr.Get(api.HeaderNext), body)
	}
}

// Bundles travel through the API as bodies, so the CLI writes and reads
// them with its own rights anywhere; a path the API still takes must be
// inside the bundle directory.
func TestBundleStreams(t *testing.T) {
	a := newAPITester(t)
	ctx := context.Background()
	if _, err := a.n.Post(ctx, PostRequest{Kind: "sitrep", Text: "to carry"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	v, err := a.client().ExportBundle(ctx, "", &buf)
	if err != nil {
		t.Fatal(err)
	}
	if v.Entries == 0 || v.File != "" || buf.Len() == 0 {
		t.Fatalf("streamed export: %+v, %d bytes", v, buf.Len())
	}
	back, err := a.client().ImportBundle(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if back.Added != 0 || uint64(back.Dups) != v.Entries {
		t.Errorf("importing its own bundle: %+v, want every entry a duplicate", back)
	}
	if _, err := a.client().ImportBundle(ctx, bytes.NewReader(buf.Bytes()[:buf.Len()/2])); err == nil {
		t.Error("a truncated streamed bundle was accepted")
	}
	leftovers, _ := filepath.Glob(filepath.Join(a.n.bundleDir(), ".stream-*"))
	if len(leftovers) > 0 {
		t.Errorf("streamed bundles leave %v behind", leftovers)
	}

	outside := filepath.Join(t.TempDir(), "b.bundle")
	inside := filepath.Join(a.n.bundleDir(), "b.bundle")
	if err := os.MkdirAll(a.n.bundleDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, body string
		ok         bool
	}{
		{api.PathBundleExport, `{"out":"` + outside + `"}`, false},
		{api.PathBundleExport, `{"out":"` + filepath.Join(a.n.bundleDir(), "..", "escape.bundle") + `"}`, false},
		{api.PathBundleExport, `{"out":"relative.bundle"}`, false},
		{api.PathBundleExport, `{"out":"` + inside + `"}`, true},
		{api.PathBundleImport, `{"file":"` + inside + `"}`, true},
		{api.PathBundleImport, `{"file":"` + outside + `"}`, false},
		{api.PathBundleImport, `{"file":"/etc/passwd"}`, false},
	} {
		code, _, body := a.send("POST", tc.path, tc.body, nil)
		switch {
		case tc.ok && code != http.StatusOK:
			t.Errorf("POST %s %s: got %d %s, want 200", tc.path, tc.body, code, body)
		case !tc.ok && (code != http.StatusBadRequest || !strings.Contains(body, "bundle_dir")):
			t.Errorf("POST %s %s: got %d %s, want 400 naming bundle_dir", tc.path, tc.body, code, body)
		}
	}
	if _, err := os.Stat(outside); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the API wrote outside its bundle directory: %v", err)
	}
	// A symbolic link inside the directory does not lead out of it.
	if err := os.Symlink(t.TempDir(), filepath.Join(a.n.bundleDir(), "link")); err != nil {
		t.Fatal(err)
	}
	if code, _, body := a.send("POST", api.PathBundleExport, `{"out":"`+filepath.Join(a.n.bundleDir(), "link", "x.bundle")+`"}`, nil); code != http.StatusBadRequest {
		t.Errorf("export through a symbolic link out of the bundle directory: %d %s", code, body)
	}
}

// The server has write and idle timeouts; the event stream outlives the
// write timeout.
func TestWriteTimeouts(t *testing.T) {
	specs, err := Testnet(TestnetOptions{Dir: t.TempDir(), Nodes: 1, BasePort: freeBasePort(t), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := Open(specs[0].Dir, Options{APIWriteTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if n.api.WriteTimeout != 500*time.Millisecond || n.api.IdleTimeout == 0 || n.api.ReadHeaderTimeout == 0 {
		t.Errorf("server timeouts: write %v, idle %v, read header %v", n.api.WriteTimeout, n.api.IdleTimeout, n.api.ReadHeaderTimeout)
	}
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().CurrentKey("all"); return ok })
	token, _ := ReadToken(specs[0].Dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.apiAddr()+api.PathEvents, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	ev, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Body.Close()
	// Post and read each entry back from the stream until the stream has
	// lived three write timeouts.
	var got strings.Builder
	buf := make([]byte, 64<<10)
	opened := time.Now()
	for i := 0; time.Since(opened) < 3*n.api.WriteTimeout; i++ {
		text := fmt.Sprintf("tick %d", i)
		if _, err := n.Post(ctx, PostRequest{Kind: "sitrep", Text: text}); err != nil {
			t.Fatal(err)
		}
		for !strings.Contains(got.String(), `"text":"`+text+`"`) {
			k, err := ev.Body.Read(buf)
			if err != nil {
				t.Fatalf("event stream ended after %v (write timeout %v): %v", time.Since(opened), n.api.WriteTimeout, err)
			}
			got.Write(buf[:k])
		}
	}
}
