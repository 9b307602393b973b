package log

import (
	"strings"
	"testing"
)

// A burst of large entries is signed at least every MaxUnsignedRun bytes:
// a replica never holds more than that (plus one entry) waiting for a
// signature, so an honest author's burst is never cut as a memory attack.
func TestBuildSignsEveryUnsignedRun(t *testing.T) {
	n := newNet(t)
	drafts := make([]Draft, 40)
	for i := range drafts {
		drafts[i] = n.msg(strings.Repeat("x", 900<<10))
	}
	es := n.build(t, n.lu, Tip{}, drafts...)
	run, longest, signed := 0, 0, 0
	for _, e := range es {
		run += e.Size()
		if e.Signed() {
			signed++
			longest = max(longest, run)
			run = 0
		}
	}
	if !es[len(es)-1].Signed() {
		t.Fatal("the last entry is not signed")
	}
	if longest > MaxUnsignedRun+MaxEntrySize {
		t.Errorf("%d bytes between signatures (%d signatures for %d entries), want at most %d", longest, signed, len(es), MaxUnsignedRun+MaxEntrySize)
	}
	if k, err := CheckRun(n.id, n.roster, Head{}, es); k != len(es) || err != nil {
		t.Errorf("CheckRun: %d, %v", k, err)
	}
}
