package node

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node/api"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// Waiting entries: what this node holds waiting for a post-quantum
// signature, shown by header only (see the package documentation,
// "Waiting entries").
type (
	WaitingView      = api.WaitingView
	WaitingEntryView = api.WaitingEntryView
	WindowView       = api.WindowView
)

// narrowWindow is the window of this node's narrow links ([narrow] in
// config.toml): sync sends this node's own entries by it on
// satellite-profile links, and the waiting view judges what this node
// holds by it (also with narrow links off: others may still send).
func (n *Node) narrowWindow() log.Window {
	w, _ := n.cfg.NarrowWindow()
	return w
}

// Waiting lists the entries this node holds waiting for their
// post-quantum signature, by the node's clock.
func (n *Node) Waiting() WaitingView {
	return waitingView(n.waitingEntries(), n.store.Roster(), n.narrowWindow(), n.now())
}

// waitingView shows ws (in the store's order: author, seq, ID) as judged
// by w at now. Only header fields are read: never the body.
func waitingView(ws []store.WaitingEntry, r *crypto.Roster, w log.Window, now time.Time) WaitingView {
	v := WaitingView{
		Window:  WindowView{Entries: w.Entries, IntervalS: w.Interval.Seconds(), GraceS: w.Grace.Seconds()},
		Entries: make([]WaitingEntryView, 0, len(ws)),
	}
	for _, we := range ws {
		h := we.Entry.Header
		waited := max(now.Sub(we.Since), 0) // a clock set back: not waited yet
		v.Entries = append(v.Entries, WaitingEntryView{
			Member: memberName(r, h.Author), MemberID: h.Author.String(), Seq: h.Seq, ID: we.Entry.ID().String(),
			Lamport: h.Lamport, Priority: h.Priority.String(),
			Status: w.StatusOf(false, waited).String(), Since: we.Since.UTC(),
			WaitedS: float64(waited.Milliseconds()) / 1000, Conflicting: we.Conflicting,
		})
	}
	return v
}

// waitingCounts counts the entries of v, and those overdue.
func waitingCounts(v WaitingView) (all, overdue int) {
	for _, e := range v.Entries {
		if e.Status == log.Overdue.String() {
			overdue++
		}
	}
	return len(v.Entries), overdue
}

// waitingAlerts makes one waiting-overdue alert per member with overdue
// entries in v, in v's order. LeftMS is how far the member's oldest
// overdue entry is past the window and its grace (negative).
func waitingAlerts(v WaitingView) []AlertView {
	type run struct {
		member, id string
		count      int
		lo, hi     uint64
		waited     float64 // seconds, the longest
	}
	var runs []*run
	for _, e := range v.Entries {
		if e.Status != log.Overdue.String() {
			continue
		}
		if len(runs) == 0 || runs[len(runs)-1].id != e.MemberID {
			runs = append(runs, &run{member: e.Member, id: e.MemberID, lo: e.Seq})
		}
		r := runs[len(runs)-1]
		r.count++
		r.lo, r.hi, r.waited = min(r.lo, e.Seq), max(r.hi, e.Seq), max(r.waited, e.WaitedS)
	}
	out := []AlertView{}
	bound := v.Window.IntervalS + v.Window.GraceS
	for _, r := range runs {
		entries, have, their := fmt.Sprintf("%d entries", r.count), "have", "their"
		if r.count == 1 {
			entries, have, their = "1 entry", "has", "its"
		}
		seqs := fmt.Sprintf("seq %d", r.lo)
		if r.hi != r.lo {
			seqs = fmt.Sprintf("seq %d–%d", r.lo, r.hi)
		}
		waited := seconds(r.waited)
		out = append(out, AlertView{
			Code: "waiting-overdue", MemberID: r.id, LeftMS: (seconds(bound) - waited).Milliseconds(),
			Message: fmt.Sprintf("%s of %s (%s) %s waited %s for %s post-quantum signature (window %s s + %s s grace): not acted on; the author's node must reconnect or send its cover",
				entries, r.member, seqs, have, waited.Round(time.Second), their, fmtSeconds(v.Window.IntervalS), fmtSeconds(v.Window.GraceS)),
		})
	}
	return out
}

// seconds turns a view's seconds back into a duration (to the
// millisecond the view keeps).
func seconds(s float64) time.Duration { return time.Duration(math.Round(s*1000)) * time.Millisecond }

// fmtSeconds prints seconds without a needless fraction ("120", "0.5").
func fmtSeconds(s float64) string { return fmt.Sprintf("%g", s) }

// waitingEntries reads the store's waiting entries, unless a test has
// set n.waiting.
func (n *Node) waitingEntries() []store.WaitingEntry {
	if n.waiting != nil {
		return n.waiting()
	}
	return n.store.Waiting()
}

func (n *Node) handleWaiting(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.Waiting())
}
