package log

import "testing"

// The clock saturates: an author at the cap writes at the cap, equal
// clocks pass only there, and nothing can push an author past it.
func TestSaturatingClock(t *testing.T) {
	n := newNet(t)
	// Someone who saw a clock at MaxLamport-1 writes at the cap, and then
	// again at the cap, as many times as it likes.
	es, err := Build(n.lu, n.id, Tip{}, MaxLamport-1, t0, []Draft{n.msg("1"), n.msg("2"), n.msg("3")})
	if err != nil {
		t.Fatalf("Build after a clock near the cap: %v", err)
	}
	for i, e := range es {
		if e.Header.Lamport != MaxLamport {
			t.Errorf("entry %d: clock %d, want the cap %d", i+1, e.Header.Lamport, uint64(MaxLamport))
		}
	}
	more, err := Build(n.lu, n.id, tipOf(es[2]), MaxLamport, t0, []Draft{n.msg("4")})
	if err != nil || more[0].Header.Lamport != MaxLamport {
		t.Fatalf("Build at the cap: %v", err)
	}
	if k, err := CheckRun(n.id, n.roster, Head{}, append(es, more...)); k != 4 || err != nil {
		t.Errorf("CheckRun of a feed at the cap: %d, %v", k, err)
	}
	// Order stays total: (lamport, author, seq) differ by seq.
	if !Less(es[0], es[1]) || !Less(es[1], es[2]) {
		t.Error("entries at the cap are not ordered by seq")
	}
	// Below the cap, an equal clock is still refused.
	one := n.build(t, n.lu, Tip{}, n.msg("a"))
	eq := n.build(t, n.lu, Tip{Seq: 1, ID: one[0].ID(), Lamport: 0}, n.msg("b"))
	if eq[0].Header.Lamport != one[0].Header.Lamport {
		t.Fatalf("test setup: clock %d, want %d", eq[0].Header.Lamport, one[0].Header.Lamport)
	}
	if _, err := CheckRun(n.id, n.roster, headOf(one[0]), eq); ReasonOf(err) != ReasonLamport {
		t.Errorf("equal clock below the cap: got %v, want %s", err, ReasonLamport)
	}
	if !Jumped(10, 10+MaxJump+1) || Jumped(10, 10+MaxJump) || Jumped(100, 5) {
		t.Error("Jumped draws the line in the wrong place")
	}
}
