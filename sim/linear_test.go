package sim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"testing/synctest"
	"time"
)

var tBase = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// at returns the instant n milliseconds into a synthetic history.
func at(n int) time.Time { return tBase.Add(time.Duration(n) * time.Millisecond) }

func TestLinearizableLegalHistory(t *testing.T) {
	var h History
	for _, op := range []Op{
		{Client: 0, Kind: OpAdd, State: "LU", Outcome: OutcomeCommitted, Call: at(0), Return: at(10)},
		{Client: 1, Kind: OpRead, Set: []string{"LU"}, Call: at(11), Return: at(12)},
		// Concurrent with the add of FR: either order is fine.
		{Client: 0, Kind: OpAdd, State: "FR", Outcome: OutcomeCommitted, Call: at(20), Return: at(40)},
		{Client: 1, Kind: OpRead, Set: []string{"LU"}, Call: at(21), Return: at(22)},
		{Client: 2, Kind: OpAdd, State: "LU", Outcome: OutcomeRefused, Call: at(25), Return: at(30)},
		{Client: 1, Kind: OpRead, Set: []string{"FR", "LU"}, Call: at(41), Return: at(42)},
		{Client: 2, Kind: OpRemove, State: "LU", Outcome: OutcomeCommitted, Call: at(50), Return: at(55)},
		{Client: 0, Kind: OpRemove, State: "LU", Outcome: OutcomeRefused, Call: at(56), Return: at(57)},
		// Unknown and never applied: fine wherever it is.
		{Client: 2, Kind: OpAdd, State: "DE", Outcome: OutcomeUnknown, Call: at(60)},
		{Client: 1, Kind: OpRead, Set: []string{"FR"}, Call: at(70), Return: at(71)},
	} {
		h.Record(op)
	}
	if err := checkLinearizable(&h, ""); err != nil {
		t.Fatalf("a legal history: %v", err)
	}
	if got := h.Len(); got != 10 {
		t.Errorf("Len = %d, want 10", got)
	}
}

// A read that misses an add committed before the read was called is stale:
// the check fails and writes porcupine's visualisation.
func TestLinearizableStaleReadFails(t *testing.T) {
	var h History
	h.Record(Op{Client: 0, Kind: OpAdd, State: "LU", Outcome: OutcomeCommitted, Call: at(0), Return: at(10)})
	h.Record(Op{Client: 1, Kind: OpRead, Set: []string{"LU"}, Call: at(12), Return: at(13)})
	h.Record(Op{Client: 0, Kind: OpAdd, State: "FR", Outcome: OutcomeCommitted, Call: at(20), Return: at(30)})
	h.Record(Op{Client: 1, Kind: OpRead, Set: []string{"LU"}, Call: at(31), Return: at(35)}) // stale
	html := filepath.Join(t.TempDir(), "stale.html")
	err := checkLinearizable(&h, html)
	if err == nil {
		t.Fatal("a stale read passed")
	}
	if !strings.Contains(err.Error(), "4 operations") || !strings.Contains(err.Error(), html) {
		t.Errorf("error %q: want the number of operations and the file", err)
	}
	b, rerr := os.ReadFile(html)
	if rerr != nil || !strings.Contains(string(b), "<html") {
		t.Errorf("no visualisation written: %v", rerr)
	}
	// Without a path: the same verdict, no file.
	if err := checkLinearizable(&h, ""); err == nil {
		t.Error("a stale read passed without a path")
	}
}

// An add whose outcome is unknown but that took effect explains a read
// that shows it; one refused while the state is absent does not.
func TestLinearizableUnknownThatTookEffect(t *testing.T) {
	var h History
	h.Record(Op{Client: 0, Kind: OpAdd, State: "LU", Outcome: OutcomeUnknown, Call: at(0), Return: at(5)})
	h.Record(Op{Client: 1, Kind: OpRead, Set: nil, Call: at(1), Return: at(2)})
	h.Record(Op{Client: 1, Kind: OpRead, Set: []string{"LU"}, Call: at(20), Return: at(21)})
	// It took effect long after its client gave up: still fine.
	h.Record(Op{Client: 2, Kind: OpRemove, State: "LU", Outcome: OutcomeCommitted, Call: at(30), Return: at(31)})
	h.Record(Op{Client: 0, Kind: OpAdd, State: "DE", Outcome: OutcomeUnknown, Call: at(40), Return: at(41)})
	h.Record(Op{Client: 1, Kind: OpRead, Set: nil, Call: at(50), Return: at(51)})
	h.Record(Op{Client: 1, Kind: OpRead, Set: []string{"DE"}, Call: at(90), Return: at(91)})
	if err := checkLinearizable(&h, ""); err != nil {
		t.Fatalf("an unknown op that took effect: %v", err)
	}
	// A refusal says the state was there: here it was not.
	h.Record(Op{Client: 2, Kind: OpRemove, State: "FR", Outcome: OutcomeCommitted, Call: at(100), Return: at(101)})
	if err := checkLinearizable(&h, ""); err == nil {
		t.Error("a committed remove of an absent state passed")
	}
}

// The live recording API stamps strictly increasing times even when the
// clock stands still, drops no-op changes and shows running changes as
// unknown.
func TestWorkloadHistoryStamps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h History
		a := h.begin(0, OpAdd, "LU")
		call := h.stamp()
		h.end(a, OutcomeCommitted)
		h.read(1, call, []string{"LU"})
		b := h.begin(0, OpRemove, "LU")
		c := h.begin(1, OpAdd, "FR")
		h.drop(c)
		ops := h.Ops()
		if len(ops) != 3 || h.Len() != 3 {
			t.Fatalf("%d ops (Len %d), want 3", len(ops), h.Len())
		}
		if !ops[0].Call.Before(ops[0].Return) || !ops[0].Return.After(ops[1].Call) || !ops[1].Call.Before(ops[1].Return) {
			t.Errorf("stamps not increasing: %+v", ops)
		}
		if ops[2].Outcome != OutcomeUnknown {
			t.Errorf("a running change shows %v", ops[2].Outcome)
		}
		h.end(b, OutcomeCommitted)
		if err := checkLinearizable(&h, ""); err != nil {
			t.Error(err)
		}
	})
}

// fakeTarget is a single linearizable set, optionally serving some reads
// from a stale copy.
type fakeTarget struct {
	mu      gosync.Mutex
	set     []string
	stale   []string // nil: no stale reads
	changes int
}

func (f *fakeTarget) Nodes() int    { return 3 }
func (f *fakeTarget) Up(i int) bool { return i != 2 }

func (f *fakeTarget) Change(ctx context.Context, i int, state string, add bool) (Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes++
	if f.changes%7 == 0 {
		return OutcomeUnknown, errors.New("leadership lost") // and not applied
	}
	if f.changes%11 == 0 {
		return OutcomeUnknown, ErrNoEffect
	}
	k := slices.Index(f.set, state)
	switch {
	case add && k < 0:
		f.set = append(f.set, state)
		slices.Sort(f.set)
	case !add && k >= 0:
		f.set = slices.Delete(f.set, k, k+1)
	default:
		return OutcomeRefused, nil
	}
	// Let other clients run: in virtual time the change takes a while.
	f.mu.Unlock()
	time.Sleep(time.Millisecond)
	f.mu.Lock()
	return OutcomeCommitted, nil
}

func (f *fakeTarget) Read(ctx context.Context, i int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i == 2 {
		return nil, errors.New("node 2 is down")
	}
	if f.stale != nil && i == 1 {
		return slices.Clone(f.stale), nil
	}
	return slices.Clone(f.set), nil
}

// The workload's history of a correct target is linearizable; that of a
// target serving stale reads is not.
func TestWorkloadOnFakeTarget(t *testing.T) {
	for _, stale := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			const seed = 7
			ft := &fakeTarget{}
			if stale {
				ft.stale = []string{}
			}
			var h History
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			runWorkload(ctx, ft, 3, seed, &h)
			if h.Len() < 100 {
				t.Fatalf("only %d operations in 20 s", h.Len())
			}
			for _, op := range h.Ops() {
				if op.Kind != OpRead && op.Outcome == OutcomeUnknown && op.Return.IsZero() {
					t.Fatalf("a change never returned: %+v", op)
				}
			}
			err := checkLinearizable(&h, "")
			if stale && err == nil {
				t.Errorf("seed %d: stale reads passed", seed)
			}
			if !stale && err != nil {
				t.Errorf("seed %d: %v", seed, err)
			}
		})
	}
}
