package node

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

const chromiumPath = "/usr/bin/chromium"

// headless starts a headless Chromium for the test (closed at its end)
// and returns its tab.
func headless(t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true))...)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	return tab
}

// dashboard opens a node's dashboard in a headless Chromium of its own
// and returns the tab.
func dashboard(t *testing.T, n *Node, spec TestnetNode) context.Context {
	t.Helper()
	tab := headless(t)
	loginInBrowser(t, tab, n, spec.Dir)
	return tab
}

// The dashboard in headless Chromium: the banner shows the committed level,
// and a post from one node's form appears in another node's timeline.
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
	}
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 2, Voters: 1}, nil)
	waitUntil(t, 30*time.Second, "leader and keys", func() bool {
		_, k0 := nodes[0].Store().CurrentKey("all")
		_, k1 := nodes[1].Store().CurrentKey("all")
		return k0 && k1 && nodes[0].Consensus().IsLeader()
	})
	// node1 is cyclone: it may open at level 3.
	cmd := crisis.Command{Kind: crisis.KindOpen, Title: "browser test", Level: 3}
	if res, err := nodes[1].Command(context.Background(), cmd); err != nil || res.Status == StatusRefused {
		t.Fatalf("open: %+v %v", res, err)
	}
	waitUntil(t, 30*time.Second, "the crisis on both nodes", func() bool {
		return nodes[0].Consensus().Local().State.Level == 3 && nodes[1].Consensus().Local().State.Level == 3
	})

	// One browser per node, as two operators in two places would have.
	tab0 := dashboard(t, nodes[0], specs[0])
	tab1 := dashboard(t, nodes[1], specs[1])
	within := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, 30*time.Second)
	}
	ctx, cancel := within(tab0)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("level").textContent === "3"`, chromedp.WithPollingTimeout(25*time.Second))); err != nil {
		level, _ := chromedp.Run(tab0, chromedp.Evaluate[string](`document.getElementById("level").textContent`))
		t.Fatalf("banner level: got %q, want 3 (%v)", level, err)
	}
	cancel()
	ctx, cancel = within(tab0)
	post := `document.getElementById("kind").value = "sitrep";
		document.getElementById("text").value = "posted from the dashboard form";
		document.querySelector("#post button").click(); true`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](post)); err != nil {
		t.Fatalf("submit the form: %v", err)
	}
	cancel()
	ctx, cancel = within(tab1)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("timeline").textContent.includes("posted from the dashboard form")`,
		chromedp.WithPollingTimeout(25*time.Second))); err != nil {
		tl, _ := chromedp.Run(tab1, chromedp.Evaluate[string](`document.getElementById("timeline").textContent`))
		res, _ := chromedp.Run(tab0, chromedp.Evaluate[string](`document.getElementById("post-result").textContent`))
		es, _ := chromedp.Run(tab1, chromedp.Evaluate[string](`JSON.stringify({state: window.crisismeshEvents && window.crisismeshEvents.source.readyState, received: window.crisismeshEvents && window.crisismeshEvents.received})`))
		t.Logf("node1's event stream in the page: %s", es)
		views, _ := nodes[1].Entries("", 0)
		t.Fatalf("the post did not reach node1's dashboard: %v\npost result on node0: %q\ntimeline: %s\nnode1 holds %d entries: %+v", err, res, tl, len(views), views[len(views)-1])
	}
}

// The dashboard shows the roster and the changes waiting for approval; a
// second admin approves one with its button, and it is in force.
func TestDashboardApproves(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
	}
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 3, Admins: 2, AdminThreshold: 2}, nil)
	res, err := nodes[0].ChangeRoster(context.Background(), UpdateRequest{Op: "revoke", Member: "node2", Reason: "left the network"})
	if err != nil || res.Status != UpdatePending {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	tab := dashboard(t, nodes[1], specs[1])
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	sel := `document.querySelector('#pending li[data-update="` + res.UpdateID + `"] button')`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](sel+` !== null`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("pending").textContent`))
		t.Fatalf("the pending revocation is not shown with an approve button: %v (%q)", err, page)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](sel+`.click(); true`)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the revocation in force after the dashboard's approval", func() bool {
		r, err := nodes[0].UpdateStatus(res.UpdateID)
		return err == nil && r.Status == UpdateInForce
	})
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("members").textContent.includes("left the network")`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("the roster table does not show the revocation: %v", err)
	}
}

// loginInBrowser opens the node's login form in tab, as the URL `run`
// prints, and types a one-time code into it; the form sends the browser
// to the dashboard. The first call on a tab starts the browser, so tab
// carries no timeout.
func loginInBrowser(t *testing.T, tab context.Context, n *Node, dir string) {
	t.Helper()
	u, err := DashboardURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := n.LoginCode()
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(u)); err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#code"), lc.Code), chromedp.Click(chromedp.CSS("#login button"))); err != nil {
		t.Fatalf("type the code into the login form: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#banner"))); err != nil {
		page, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.body.textContent`))
		t.Fatalf("the dashboard after login: %v (page: %q)", err, page)
	}
}

// Issue 13: the dashboard shows the decision history (what, by whom, when,
// term and index) and, once the crisis is closed, the reason and the
// lessons learned.
func TestDashboardHistoryAndLessons(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
	}
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 2, Voters: 1}, func(int) Options { return Options{} })
	waitNetworkKey(t, nodes)
	// node1 is cyclone: it opens at level 3 and closes.
	open := cmdOK(t, nodes[1], crisis.Command{Kind: crisis.KindOpen, Title: "browser history", Level: 3})
	waitCommitted(t, nodes[1], open.ID)
	closing := cmdOK(t, nodes[1], crisis.Command{Kind: crisis.KindClose, Reason: "grid back", Lessons: "test the backup links monthly"})
	waitCommitted(t, nodes[1], closing.ID)

	tab := dashboard(t, nodes[1], specs[1])
	ctx, cancel := context.WithTimeout(tab, 60*time.Second)
	defer cancel()
	for _, c := range []struct{ id, want string }{
		{"history", "opened crisis"},
		{"history", "— by node1 (term "},
		{"history", "closed the crisis: grid back"},
		{"closing", "Lessons learned: test the backup links monthly"},
	} {
		js := `document.getElementById("` + c.id + `").textContent.includes(` + strconv.Quote(c.want) + `)`
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			got, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("`+c.id+`").textContent`))
			t.Fatalf("#%s does not show %q: %v\n%s", c.id, c.want, err, got)
		}
	}
}

// Issue 13: the dashboard reads like a situation room. The level strip
// shows the level changes, the map of the EU marks the affected member
// states, the timeline's filters hide entries of another TLP, kind or
// author, and a refused command shows with its rule. The page's
// screenshot is written as test output (go test -artifacts keeps it).
func TestDashboardSituationRoom(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
	}
	nodes, specs := openTestnetWith(t, TestnetOptions{Nodes: 2, Voters: 1}, func(int) Options { return Options{} })
	waitNetworkKey(t, nodes)
	// node1 is cyclone: it opens at level 3, marks LU and DE affected and
	// de-escalates to 2. De-escalating to 2 again goes through the log
	// (provisional until then), where the crisis rules refuse it: a
	// refusal in the history.
	for _, c := range []crisis.Command{
		{Kind: crisis.KindOpen, Title: "situation room", Level: 3},
		{Kind: crisis.KindAffected, Add: []string{"LU", "DE"}},
		{Kind: crisis.KindDeescalate, Level: 2},
	} {
		res := cmdOK(t, nodes[1], c)
		if res.Status == StatusRefused {
			t.Fatalf("%s: refused: %s: %s", c.Kind, res.Rule, res.Detail)
		}
		waitCommitted(t, nodes[1], res.ID)
	}
	refused := cmdOK(t, nodes[1], crisis.Command{Kind: crisis.KindDeescalate, Level: 2})
	waitUntil(t, 30*time.Second, "the second de-escalation decided", func() bool {
		var err error
		refused, err = nodes[1].CommandStatus(refused.ID)
		return err == nil && refused.Status != StatusPending
	})
	if refused.Status != StatusRefused || refused.Rule == "" || refused.Index == 0 {
		t.Fatalf("de-escalating to level 2 twice: got %+v, want refused in the log by a rule", refused)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := nodes[0].Post(ctx, PostRequest{Kind: "sitrep", TLP: "green", Text: "alpha: grid stable in the north"}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[1].Post(ctx, PostRequest{Kind: "incident", TLP: "amber", Text: "bravo: substation compromised"}); err != nil {
		t.Fatal(err)
	}

	tab := dashboard(t, nodes[1], specs[1])
	ctx, cancel = context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	page := func(js string) string {
		got, _ := chromedp.Run(tab, chromedp.Evaluate[string](js))
		return got
	}
	wait := func(what, js, show string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, page(show))
		}
	}
	wait("the level strip has the changes 3 → 2",
		`[...document.querySelectorAll("#level-strip [data-level]")].map((s) => s.dataset.level).join(",") === "3,2"`,
		`document.getElementById("level-strip").outerHTML`)
	wait("the map highlights LU and DE, and only them",
		`[...document.querySelectorAll("#map .affected")].map((g) => g.dataset.state).sort().join(",") === "DE,LU"`,
		`document.getElementById("map").innerHTML.slice(0, 300) + " affected: " + document.getElementById("affected").textContent`)
	wait("the decisions say what was decided and by whom",
		`document.getElementById("decisions").textContent.includes("de-escalated to level 2") && document.getElementById("decisions").textContent.includes("— by node1")`,
		`document.getElementById("decisions").textContent`)
	wait("the refusal shows with its rule",
		`[...document.querySelectorAll("#decisions li.refused")].some((li) => li.textContent.includes("REFUSED de-escalate by node1: rule `+refused.Rule+`"))`,
		`document.getElementById("decisions").textContent`)
	wait("both entries in the timeline",
		`document.getElementById("timeline").textContent.includes("alpha:") && document.getElementById("timeline").textContent.includes("bravo:")`,
		`document.getElementById("timeline").textContent`)

	// shown filters the timeline and says which of the two entries show
	// (the crisis commands are entries too: other kinds, TLPs, authors).
	shown := func(filter, value string) string {
		js := `(() => { for (const id of ["f-tlp", "f-kind", "f-author"]) document.getElementById(id).value = "";
			const f = document.getElementById(` + strconv.Quote(filter) + `); f.value = ` + strconv.Quote(value) + `;
			f.dispatchEvent(new Event("change"));
			return [...document.querySelectorAll("#timeline li")].filter((li) => !li.hidden).map((li) => li.textContent.includes("alpha:") ? "alpha" : li.textContent.includes("bravo:") ? "bravo" : "").filter(Boolean).sort().join(","); })()`
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("filter %s=%s: %v", filter, value, err)
		}
		return got
	}
	for _, c := range []struct{ filter, value, want string }{
		{"f-tlp", "green", "alpha"},
		{"f-tlp", "amber", "bravo"},
		{"f-kind", "incident", "bravo"},
		{"f-kind", "sitrep", "alpha"},
		{"f-author", "node0", "alpha"},
		{"f-author", "node1", "bravo"},
		{"f-author", "", "alpha,bravo"},
	} {
		if got := shown(c.filter, c.value); got != c.want {
			t.Errorf("timeline filtered by %s=%q: got %q, want %q", c.filter, c.value, got, c.want)
		}
	}

	screenshot(t, ctx, 1400, "situation-room.png")
}

// screenshot writes the whole page, width pixels wide, as test output
// (go test -artifacts keeps it) under name.
func screenshot(t *testing.T, ctx context.Context, width int64, name string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(width, 900)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// The dashboard lists indicators with their type and value, and links an
// indicator to its incident: clicking the link marks the incident's entry
// in the timeline.
func TestDashboardIndicators(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
	}
	n, spec := reportNode(t)
	tab := dashboard(t, n, spec)
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	inds, err := n.Indicators()
	if err != nil {
		t.Fatal(err)
	}
	var stixInd IndicatorView
	for _, ind := range inds {
		if ind.Format == "stix" {
			stixInd = ind
		}
	}
	page := func(js string) string {
		got, _ := chromedp.Run(tab, chromedp.Evaluate[string](js))
		return got
	}
	rows := `[...document.querySelectorAll("#indicators tbody tr")]`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](rows+`.length === `+strconv.Itoa(len(inds)), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the indicators table: %v\n%s", err, page(`document.getElementById("indicators").textContent`))
	}
	row := rows + `.find((tr) => tr.dataset.entry === ` + strconv.Quote(stixInd.Entry) + `)`
	if got := page(row + `.textContent`); got != "stix"+stixInd.Value+"Grid operator ransomwareTLP:AMBER" {
		t.Errorf("the STIX indicator's row reads %q", got)
	}
	js := `(() => { ` + row + `.querySelector("a.incident-link").click();
		const li = document.querySelector("#timeline li.linked"); return li ? li.dataset.id : ""; })()`
	if got := page(js); got != stixInd.IncidentEntry {
		t.Errorf("clicking the incident link marked entry %q, want the incident's %s", got, stixInd.IncidentEntry)
	}
	// Intel that arrives while the page is open shows (the page lists the
	// indicators again after new intel, at most every 10 s).
	more := strings.NewReplacer("8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "9f3f3e3c-28e5-4dc0-a49f-a9ff57c4de40",
		"44298a74-ba52-4f0c-87a3-1824e67d7fad", "55309b85-cb63-4a1d-98b4-2935f78e8e9f", "198.51.100.7", "203.0.113.9",
		"bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "55d920b0-5e8b-4f79-9ee9-91f868d9b421").Replace(stixIncident)
	if _, err := n.ImportSTIX(context.Background(), []byte(more), STIXImportRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](rows+`.some((tr) => tr.textContent.includes("203.0.113.9"))`, chromedp.WithPollingTimeout(40*time.Second))); err != nil {
		t.Fatalf("the indicator imported while the page was open: %v\n%s", err, page(`document.getElementById("indicators").textContent`))
	}
}

// The HTML report opens in Chromium from a file with no network: it loads
// no resource at all, and shows the state, the indicators and the TLP cap.
// Its screenshot is written as test output.
func TestReportInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
	}
	n, _ := reportNode(t)
	rep, err := n.BuildReport(context.Background(), "amber")
	if err != nil {
		t.Fatal(err)
	}
	html, err := rep.Render("html")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sitrep.html")
	if err := os.WriteFile(file, html, 0o600); err != nil {
		t.Fatal(err)
	}
	tab := headless(t)
	ctx, cancel := context.WithTimeout(tab, 90*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate("file://"+file)); err != nil {
		t.Fatalf("open the report: %v", err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[document.getElementById("level").textContent, document.getElementById("affected").textContent,
		document.getElementById("max-tlp").textContent, String(document.querySelectorAll("#indicators tr").length - 1),
		String(performance.getEntriesByType("resource").length)].join("|")`))
	if err != nil {
		t.Fatal(err)
	}
	want := "2|BE, LU|TLP:AMBER|" + strconv.Itoa(len(rep.Indicators)) + "|0"
	if got != want {
		t.Errorf("the report in Chromium reads %q, want %q (level, affected, cap, indicators, resources loaded)", got, want)
	}
	screenshot(t, ctx, 1200, "situation-report.png")
}

// Entries waiting for their post-quantum signature: the status area says
// how many (and how many overdue) and lists their headers when opened,
// the overdue alert shows, and no waiting entry's text is on the page.
func TestDashboardWaiting(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("no Chromium at %s (.ci/run installs Debian's chromium): %v", chromiumPath, err)
	}
	n, specs := openSingle(t)
	waitUntil(t, 20*time.Second, "the network key", func() bool { _, ok := n.Store().NetworkKey(); return ok })
	key, _ := n.Store().NetworkKey()
	es := provisionalChain(t, n.Identity(), n.Store().Network(), key, log.Tip{Seq: 1000}, 2, "dashboard")
	held := holding(time.Now().Add(-time.Hour), false, es...)
	n.waiting = func() []store.WaitingEntry { return held }
	tab := dashboard(t, n, specs[0])
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	line := `document.getElementById("waiting-line").textContent`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](line+` === "2 entries waiting for their post-quantum signature (2 overdue)" && !document.getElementById("waiting").hidden &&
		document.querySelectorAll("#waiting-list li").length === 2`,
		chromedp.WithPollingTimeout(25*time.Second))); err != nil {
		got, _ := chromedp.Run(tab, chromedp.Evaluate[string](line))
		t.Fatalf("the waiting line: %v, reads %q", err, got)
	}
	page := func(js string) string {
		got, _ := chromedp.Run(tab, chromedp.Evaluate[string](js))
		return got
	}
	items := strings.Split(page(`[...document.querySelectorAll("#waiting-list li")].map((li) => li.textContent).join("|")`), "|")
	if len(items) != 2 || !strings.HasPrefix(items[0], n.Identity().Name()+" seq 1001 · overdue · waited 36") ||
		!strings.HasPrefix(items[1], n.Identity().Name()+" seq 1002 · overdue · waited 36") {
		t.Errorf("the waiting list reads %q", items)
	}
	if got := page(`document.getElementById("alerts").textContent`); !strings.Contains(got, "2 entries of "+n.Identity().Name()+" (seq 1001–1002) have waited 1h0m") {
		t.Errorf("the alerts read %q", got)
	}
	if strings.Contains(page(`document.body.innerHTML`), waitingBody) {
		t.Error("a waiting entry's text is on the page")
	}
}
