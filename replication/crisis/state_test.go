package crisis

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// busyWorld is a world that has used every command kind: a closed exercise,
// then a real crisis at level 3 with assessments and Reserve requests.
func busyWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	w.open(1, true)
	w.do("cyclone-lu", Command{Kind: KindClose, Crisis: w.s.Crisis, Reason: "drill over", Lessons: "call trees work"})
	w.at(4)
	w.do("presidency", Command{Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 3})
	w.do("commission", Command{Kind: KindSetMode, Crisis: w.s.Crisis, Mode: ModeMonitoring})
	w.do("cert-lu", Command{Kind: KindAffected, Crisis: w.s.Crisis, Add: []string{"LU", "BE", "FR"}})
	w.do("cert-fr", Command{Kind: KindAffected, Crisis: w.s.Crisis, Remove: []string{"BE"}})
	w.do("cert-lu", Command{Kind: KindSectors, Crisis: w.s.Crisis, Add: []string{"energy"}})
	w.do("cert-lu", Command{Kind: KindSeverity, Crisis: w.s.Crisis, Value: "yellow"})
	w.do("cyclone-lu", Command{Kind: KindOutlook, Crisis: w.s.Crisis, Value: "stable"})
	w.do("cyclone-lu", Command{Kind: KindRootCause, Crisis: w.s.Crisis, Value: "malicious-actions"})
	w.do("presidency", Command{Kind: KindPhase, Crisis: w.s.Crisis, Phase: PhaseResponse})
	deployed := w.request()
	w.request()
	w.do("enisa", Command{Kind: KindReserveDeployed, Crisis: w.s.Crisis, Request: deployed, Note: "team on site"})
	return w
}

func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	w := busyWorld(t)
	for _, s := range []State{{}, w.s} {
		b := encode(t, s)
		got, err := UnmarshalState(b)
		if err != nil {
			t.Fatalf("UnmarshalState: %v", err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
		}
		if again := encode(t, got); string(again) != string(b) {
			t.Error("re-encoding gives other bytes")
		}
	}
}

func TestUnmarshalStateRefuses(t *testing.T) {
	t.Parallel()
	good := encode(t, busyWorld(t).s)
	var w stateWire
	if err := decMode.Unmarshal(good, &w); err != nil {
		t.Fatal(err)
	}
	reencode := func(change func(*stateWire)) []byte {
		c := w
		change(&c)
		b, err := marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, crypto.ErrMalformed},
		{"trailing byte", append(slices.Clone(good), 0), crypto.ErrMalformed},
		{"not canonical", nonCanonical(t, good), crypto.ErrNonCanonical},
		{"unknown field", withExtraField(t, good), crypto.ErrMalformed},
		{"other suite", reencode(func(w *stateWire) { w.Suite = "v0" }), crypto.ErrMalformed},
		{"level 5", reencode(func(w *stateWire) { w.Level = 5 }), crypto.ErrMalformed},
		{"mode 9", reencode(func(w *stateWire) { w.Mode = 9 }), crypto.ErrMalformed},
		{"history over count", reencode(func(w *stateWire) { w.Decisions = 1 }), crypto.ErrMalformed},
		{"request status 7", reencode(func(w *stateWire) { w.Requests[0].Status = 7 }), crypto.ErrMalformed},
		{"short ID", shortID(t, good), crypto.ErrNonCanonical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := UnmarshalState(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("UnmarshalState = %v, want %v", err, tt.want)
			}
		})
	}
}

// nonCanonical re-encodes b with a map's length in a longer form than
// needed: same value, other bytes.
func nonCanonical(t *testing.T, b []byte) []byte {
	t.Helper()
	if b[0]&0xe0 != 0xa0 || b[0]&0x1f >= 24 {
		t.Fatalf("want a short map header, got %#x", b[0])
	}
	return append([]byte{0xb8, b[0] & 0x1f}, b[1:]...)
}

// withExtraField adds key 99 to the top-level map of b.
func withExtraField(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[int]any
	if err := decMode.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[99] = "surprise"
	out, err := encMode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// shortID replaces the crisis ID (key 3) with a 15-byte string.
func shortID(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[int]any
	if err := decMode.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[3] = make([]byte, 15)
	m[3].([]byte)[0] = 1
	out, err := encMode.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestApplyDoesNotModifyInput applies every kind of command to a state
// with full lists and checks the input is unchanged, deep; and that the
// result shares no memory with it.
func TestApplyDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	w := busyWorld(t)
	c := w.c
	cmds := []struct {
		by  string
		cmd Command
	}{
		{"cert-lu", Command{Kind: KindAffected, Crisis: w.s.Crisis, Add: []string{"AT"}, Remove: []string{"LU"}}},
		{"cert-lu", Command{Kind: KindSectors, Crisis: w.s.Crisis, Add: []string{"health"}, Remove: []string{"energy"}}},
		{"cert-lu", Command{Kind: KindSeverity, Crisis: w.s.Crisis, Value: "red"}},
		{"cert-lu", Command{Kind: KindOutlook, Crisis: w.s.Crisis, Value: "worsening"}},
		{"cert-lu", Command{Kind: KindRootCause, Crisis: w.s.Crisis, Value: "human-errors"}},
		{"cyclone-lu", Command{Kind: KindPhase, Crisis: w.s.Crisis, Phase: PhaseRecovery}},
		{"presidency", Command{Kind: KindSetMode, Crisis: w.s.Crisis, Mode: ModeFull}},
		{"presidency", Command{Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 3}},
		{"commission", Command{Kind: KindSetMode, Crisis: w.s.Crisis, Mode: ModeNone}},
		{"cyclone-lu", Command{Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 2}},
		{"cert-lu", Command{Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 1}},
		{"cert-lu", Command{Kind: KindAdviseLevel2, Crisis: w.s.Crisis}},
		{"cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis}},
		{"cert-lu", Command{Kind: KindReserveRequest, Crisis: w.s.Crisis, Sector: "health", Services: []string{"triage"}}},
		{"enisa", Command{Kind: KindReserveWithdrawn, Crisis: w.s.Crisis, Request: w.s.Requests[1].ID}},
		{"cyclone-lu", Command{Kind: KindClose, Crisis: w.s.Crisis, Reason: "done"}},
		{"cert-fr", Command{Kind: KindOpen, Title: "Next", Level: 1}},
	}
	for _, tc := range cmds {
		in := w.s
		keep := in.Clone()
		keepBytes := encode(t, in)
		out, err := Apply(in, c.sign(t, tc.by, tc.cmd), c.roster, w.next())
		if err != nil {
			t.Fatalf("%s: %v", tc.cmd.Kind, err)
		}
		if !reflect.DeepEqual(in, keep) || string(encode(t, in)) != string(keepBytes) {
			t.Fatalf("%s modified its input", tc.cmd.Kind)
		}
		// Scribble on the result: the input must not see it.
		for i := range out.Affected {
			out.Affected[i] = "XX"
		}
		for i := range out.Requests {
			out.Requests[i].Status = RequestWithdrawn
			for j := range out.Requests[i].Services {
				out.Requests[i].Services[j] = "scribbled"
			}
		}
		for i := range out.History {
			out.History[i].What = "scribbled"
		}
		for i := range out.seen {
			out.seen[i] = ID{}
		}
		if !reflect.DeepEqual(in, keep) {
			t.Fatalf("%s: the result shares memory with the input", tc.cmd.Kind)
		}
		if w.s, err = Apply(keep, c.sign(t, tc.by, tc.cmd), c.roster, w.next()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	at := time.Date(2026, 11, 27, 9, 30, 15, 123_000_000, time.UTC)
	sc := w.c.sign(t, "cert-lu", Command{Kind: KindReserveRequest, Crisis: w.s.Crisis, Sector: "health", Services: []string{"forensics"}})
	s, err := Apply(w.s, sc, w.c.roster, Meta{Time: at, Term: 3, Index: 10})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Requests[0]
	if want := time.Date(2026, 11, 28, 9, 30, 15, 123_000_000, time.UTC); !r.Deadline.Equal(want) || r.Deadline.Sub(r.At) != 24*time.Hour {
		t.Errorf("deadline %v, want %v: exactly 24h after %v", r.Deadline, want, at)
	}
	if r.ID != sc.ID() {
		t.Errorf("request ID %s, want the command's ID %s", r.ID, sc.ID())
	}
	if !r.At.Equal(at) || r.ByName != "cert-lu" || r.Status != RequestOpen {
		t.Errorf("request %+v", r)
	}

	for _, tt := range []struct {
		now     time.Time
		left    time.Duration
		overdue bool
	}{
		{at, 24 * time.Hour, false},
		{at.Add(23 * time.Hour), time.Hour, false},
		{at.Add(24 * time.Hour), 0, false},
		{at.Add(25 * time.Hour), -time.Hour, true},
	} {
		open := s.OpenRequests(tt.now)
		if len(open) != 1 || open[0].Left != tt.left || open[0].Overdue != tt.overdue {
			t.Errorf("OpenRequests(%v) = %+v, want left %v, overdue %v", tt.now, open, tt.left, tt.overdue)
		}
	}
}

func TestTimeIsKeptToTheMillisecond(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	local := time.FixedZone("CET", 3600)
	at := time.Date(2026, 11, 27, 10, 0, 0, 123_456_789, local)
	sc := w.c.sign(t, "cert-lu", Command{Kind: KindOpen, Title: "t", Level: 1})
	s, err := Apply(State{}, sc, w.c.roster, Meta{Time: at, Index: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 27, 9, 0, 0, 123_000_000, time.UTC)
	if s.Opened != want || s.Updated != want || s.History[0].At != want {
		t.Errorf("opened %v, updated %v, decision at %v; want %v (UTC, milliseconds)", s.Opened, s.Updated, s.History[0].At, want)
	}
}

func TestOpenRequestsOrder(t *testing.T) {
	t.Parallel()
	s := State{Requests: []Request{
		{ID: ID{1}, Deadline: t0.Add(3 * time.Hour)},
		{ID: ID{2}, Deadline: t0.Add(time.Hour), Status: RequestDeployed},
		{ID: ID{3}, Deadline: t0.Add(time.Hour)},
		{ID: ID{4}, Deadline: t0.Add(time.Hour)},
	}}
	var got []ID
	for _, r := range s.OpenRequests(t0) {
		got = append(got, r.ID)
	}
	if want := []ID{{3}, {4}, {1}}; !slices.Equal(got, want) {
		t.Errorf("OpenRequests order %v, want %v", got, want)
	}
}

func TestHistoryBound(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	// Fill the history to its bound without signing 256 commands.
	for len(w.s.History) < maxHistory {
		w.s.History = append(w.s.History, Decision{What: "filler", Index: uint64(len(w.s.History))})
		w.s.Decisions++
	}
	total := w.s.Decisions
	before := slices.Clone(w.s.History)
	w.do("cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
	w.do("cyclone-lu", Command{Kind: KindPhase, Crisis: w.s.Crisis, Phase: PhaseResponse})
	if len(w.s.History) != maxHistory {
		t.Errorf("history of %d, want the bound %d", len(w.s.History), maxHistory)
	}
	if w.s.Decisions != total+2 {
		t.Errorf("Decisions = %d, want %d", w.s.Decisions, total+2)
	}
	if !slices.Equal(w.s.History[:maxHistory-2], before[2:]) {
		t.Error("the two oldest decisions were not the ones dropped")
	}
	if last := w.s.History[maxHistory-1]; last.Kind != KindPhase || last.Index != w.s.Index {
		t.Errorf("newest decision %+v is not the phase change", last)
	}
}

func TestPushBounded(t *testing.T) {
	var list []int
	for i := range 10 {
		list = pushBounded(list, i, 4)
	}
	if want := []int{6, 7, 8, 9}; !slices.Equal(list, want) {
		t.Errorf("got %v, want %v", list, want)
	}
}

func TestClosedRequestsBound(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	for range maxClosedRequests {
		w.s.Requests = append(w.s.Requests, Request{ID: newID(), Status: RequestDeployed, Sector: "energy", Services: []string{"x"}, At: t0, Deadline: t0.Add(ReserveDeadline)})
	}
	oldest := w.s.Requests[0].ID
	id := w.request()
	w.do("enisa", Command{Kind: KindReserveDeployed, Crisis: w.s.Crisis, Request: id})
	if n := len(w.s.Requests); n != maxClosedRequests {
		t.Errorf("%d requests kept, want %d", n, maxClosedRequests)
	}
	if w.s.Requests[0].ID == oldest || w.s.Requests[len(w.s.Requests)-1].ID != id {
		t.Error("the oldest closed request was not the one dropped")
	}
}

func TestExercise(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(2, true)
	w.request()
	w.do("cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
	if !strings.HasPrefix(w.s.Summary(), "EXERCISE: ") {
		t.Errorf("summary %q is not marked EXERCISE", w.s.Summary())
	}
	for _, d := range w.s.History {
		if !d.Exercise || !strings.HasPrefix(d.What, "EXERCISE: ") {
			t.Errorf("decision %q is not marked EXERCISE", d.What)
		}
	}
	if r := w.s.Requests[0]; !r.Exercise || !w.s.OpenRequests(t0)[0].Exercise {
		t.Error("the exercise's Reserve request is not marked")
	}
	exercise := w.s.Crisis

	// A real crisis ends the exercise rather than wait for it.
	w.do("cert-eu", Command{Kind: KindOpen, Title: "Real outage", Level: 1})
	if w.s.Exercise || w.s.Crisis == exercise || len(w.s.Requests) != 0 || w.s.Level != LevelIncident {
		t.Errorf("after a real open: %s", w.s.Summary())
	}
	d := w.s.History[len(w.s.History)-1]
	if d.Exercise || strings.HasPrefix(d.What, "EXERCISE") || !strings.Contains(d.What, "ends exercise "+exercise.Short()) {
		t.Errorf("real open decision %q", d.What)
	}
	if strings.HasPrefix(w.s.Summary(), "EXERCISE") {
		t.Errorf("real crisis summary %q is marked EXERCISE", w.s.Summary())
	}
	// The exercise's commands no longer land.
	err := w.try("cyclone-lu", Command{Kind: KindPhase, Crisis: exercise, Phase: PhaseResponse})
	wantRefusal(t, err, RuleCrisis)
}

func TestCloseWithdrawsOpenRequests(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	w.request()
	w.do("presidency", Command{Kind: KindClose, Crisis: w.s.Crisis, Reason: "resolved", Lessons: "more drills"})
	r := w.s.Requests[0]
	if r.Status != RequestWithdrawn || r.Answer != "crisis closed" || r.ClosedByName != "presidency" {
		t.Errorf("request after close: %+v", r)
	}
	if w.s.Lessons != "more drills" || w.s.CloseReason != "resolved" || w.s.Closed.IsZero() {
		t.Errorf("closed state: %+v", w.s)
	}
	if d := w.s.History[len(w.s.History)-1]; !strings.Contains(d.What, "1 open Reserve request(s) withdrawn") {
		t.Errorf("close decision %q", d.What)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	if got := (State{}).Summary(); got != "no crisis: level 0 (normal)" {
		t.Errorf("zero state: %q", got)
	}
	w := busyWorld(t)
	got := w.s.Summary()
	want := `crisis ` + w.s.Crisis.Short() + ` "Grid outage" open: level 3 (large-scale incident), IPCR monitoring, phase response, lead cert-lu; affected FR, LU; sectors energy; severity yellow, outlook stable, root cause malicious-actions; 1 open Reserve request(s)`
	if got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	w.do("cyclone-lu", Command{Kind: KindClose, Crisis: w.s.Crisis, Reason: "restored"})
	if got := w.s.Summary(); !strings.Contains(got, "closed") || !strings.Contains(got, "restored") {
		t.Errorf("closed summary %q", got)
	}
}

func TestLevelZeroAndBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	w.do("enisa", Command{Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 0})
	if w.s.Status != StatusOpen || w.s.Level != LevelNormal {
		t.Fatalf("after de-escalating to 0: %s", w.s.Summary())
	}
	w.do("cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
	if w.s.Level != LevelLargeScale {
		t.Errorf("after escalating from 0: %s", w.s.Summary())
	}
}
