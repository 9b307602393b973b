package sync

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// transfers is pure bookkeeping: these tables drive it with plain
// frontiers and peer IDs (no store, no host, no signatures).

var (
	authorA = crypto.MemberID{0xa}
	authorB = crypto.MemberID{0xb}
)

// at is a frontier: author a at seq na, author b at seq nb (absent at 0).
func at(na, nb uint64) log.Frontier {
	f := log.Frontier{}
	if na > 0 {
		f[authorA] = log.Head{Seq: na}
	}
	if nb > 0 {
		f[authorB] = log.Head{Seq: nb}
	}
	return f
}

func forked(f log.Frontier, a crypto.MemberID) log.Frontier {
	h := f[a]
	h.Forked = true
	f[a] = h
	return f
}

// A transfer op on t; IDs 1, 2, 3 name transfers (t.newID hands them out
// in that order).
type op struct {
	name string
	do   func(t *transfers) any // what the op returns
	want any
}

func expectOp(id transferID, mine, theirs, advertised log.Frontier) op {
	return op{"expect", func(t *transfers) any { t.expect(id, mine, theirs, advertised); return nil }, nil}
}

func finishOp(id transferID, mine log.Frontier, ask ...peer.ID) op {
	return op{"finish", func(t *transfers) any { return t.finish(id, mine) }, ask}
}

func advertiseOp(id transferID, to peer.ID, mine, want log.Frontier) op {
	return op{"advertise to " + string(to), func(t *transfers) any { return t.advertise(id, to, mine) }, want}
}

func claimSessionOp(id transferID, to peer.ID, mine, theirs, want log.Frontier) op {
	return op{"session claim with " + string(to), func(t *transfers) any { return t.claimSession(id, to, mine, theirs) }, want}
}

func claimOp(id transferID, from peer.ID, mine, heads, want log.Frontier) op {
	return op{"claim from " + string(from), func(t *transfers) any { return t.claim(id, from, mine, heads) }, want}
}

// sameEntry compares entries by identity: transfers only moves them.
var sameEntry = cmp.Comparer(func(a, b *log.Entry) bool { return a == b })

func runOps(t *testing.T, ops []op) {
	t.Helper()
	tr := newTransfers()
	for range 3 {
		tr.newID()
	}
	for i, o := range ops {
		got := o.do(tr)
		if diff := cmp.Diff(o.want, got, cmpopts.EquateEmpty(), sameEntry); diff != "" {
			t.Errorf("op %d (%s): -want +got:\n%s", i, o.name, diff)
		}
	}
}

func TestTransfersIncoming(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"what one transfer brings is advertised to the others' peers, not its own", []op{
			expectOp(1, at(2, 0), at(10, 0), nil),
			advertiseOp(2, "peer-two", at(2, 0), at(10, 0)),
			advertiseOp(1, "peer-one", at(2, 0), at(2, 0)),
		}},
		{"a transfer that ends short asks the peers told, once", []op{
			expectOp(1, at(2, 0), at(10, 0), nil),
			advertiseOp(2, "peer-two", at(2, 0), at(10, 0)),
			advertiseOp(3, "peer-three", at(2, 0), at(10, 0)),
			finishOp(1, at(5, 0), "peer-three", "peer-two"),
			advertiseOp(2, "peer-two", at(5, 0), at(5, 0)),
			finishOp(2, at(5, 0)),
		}},
		{"a transfer that brought all it was to bring asks nobody", []op{
			expectOp(1, at(2, 0), at(10, 0), nil),
			advertiseOp(2, "peer-two", at(2, 0), at(10, 0)),
			finishOp(1, at(10, 0)),
		}},
		{"a peer told that another transfer brings entries does not owe them", []op{
			expectOp(1, at(2, 0), at(10, 0), nil),
			advertiseOp(2, "peer-two", at(2, 0), at(10, 0)),
			expectOp(2, at(2, 0), at(10, 0), at(10, 0)),
			finishOp(2, at(2, 0)),             // not short: it was told we held them
			finishOp(1, at(2, 0), "peer-two"), // short: the peer told is asked
		}},
		{"only heads beyond what we store are expected", []op{
			expectOp(1, at(10, 3), at(10, 3), nil),
			advertiseOp(2, "peer-two", at(10, 3), at(10, 3)),
			finishOp(1, at(10, 3)),
		}},
		{"forked heads are never expected nor advertised over", []op{
			expectOp(1, at(2, 2), forked(at(10, 10), authorA), nil),
			advertiseOp(2, "peer-two", at(2, 2), at(2, 10)),
			expectOp(3, forked(at(2, 2), authorB), at(10, 10), nil),
			advertiseOp(2, "peer-two", forked(at(2, 2), authorB), forked(at(10, 2), authorB)),
		}},
		{"the heads of several transfers: the highest wins, author by author", []op{
			expectOp(1, at(1, 1), at(10, 3), nil),
			expectOp(2, at(1, 1), at(4, 8), nil),
			advertiseOp(3, "peer-three", at(1, 1), at(10, 8)),
			finishOp(2, at(4, 8)),
			finishOp(1, at(4, 8), "peer-three"),
		}},
		{"nobody told: a short transfer asks nobody", []op{
			expectOp(1, at(2, 0), at(10, 0), nil),
			advertiseOp(1, "peer-one", at(2, 0), at(2, 0)),
			finishOp(1, at(2, 0)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runOps(t, tc.ops) })
	}
}

func TestTransfersClaim(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"two offers of the same entries: only the first gets a yes", []op{
			claimOp(1, "relay-one", at(2, 0), at(10, 0), at(2, 0)),
			claimOp(2, "relay-two", at(2, 0), at(10, 0), at(10, 0)),
			finishOp(2, at(2, 0)), // it was told we held them
			finishOp(1, at(2, 0), "relay-two"),
		}},
		{"the answer names only the offered authors we hold", []op{
			claimOp(1, "relay-one", at(2, 7), at(10, 0), at(2, 0)),
			claimOp(2, "relay-two", at(2, 7), at(0, 9), at(0, 7)),
		}},
		{"an offer of what a session brings: no", []op{
			expectOp(1, at(2, 0), at(10, 0), nil),
			claimOp(2, "relay-two", at(2, 0), at(8, 0), at(10, 0)),
			finishOp(2, at(2, 0)),
		}},
		{"an offer of what we store: no, and nothing expected", []op{
			claimOp(1, "relay-one", at(10, 0), at(10, 0), at(10, 0)),
			advertiseOp(2, "peer-two", at(10, 0), at(10, 0)),
			finishOp(1, at(10, 0)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runOps(t, tc.ops) })
	}
}

func TestTransfersClaimSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"two sessions with peers holding the same feed: only the first brings it", []op{
			claimSessionOp(1, "peer-one", at(2, 0), at(10, 0), at(2, 0)),
			claimSessionOp(2, "peer-two", at(2, 0), at(10, 0), at(10, 0)),
			finishOp(2, at(2, 0)), // told we held them: not short
			finishOp(1, at(10, 0)),
		}},
		{"a session brings what others do not: only that is claimed", []op{
			claimSessionOp(1, "peer-one", at(2, 0), at(10, 0), at(2, 0)),
			claimSessionOp(2, "peer-two", at(2, 0), at(12, 5), at(10, 0)),
			advertiseOp(3, "peer-three", at(2, 0), at(12, 5)),
			finishOp(1, at(10, 0)),
			finishOp(2, at(12, 5)),
		}},
		{"an offer of what a session claimed: no", []op{
			claimSessionOp(1, "peer-one", at(2, 0), at(10, 0), at(2, 0)),
			claimOp(2, "relay-two", at(2, 0), at(10, 0), at(10, 0)),
			finishOp(1, at(2, 0), "relay-two"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runOps(t, tc.ops) })
	}
}

func TestTransfersSessions(t *testing.T) {
	p, q := peer.ID("peer-one"), peer.ID("peer-two")
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"one session we start per peer", []op{
			{"start p", func(t *transfers) any { return t.startSession(p, false) }, true},
			{"initiating p", func(t *transfers) any { return t.initiating(p) }, true},
			{"start p again", func(t *transfers) any { return t.startSession(p, false) }, false},
			{"start q", func(t *transfers) any { return t.startSession(q, false) }, true},
			{"end p", func(t *transfers) any { return t.endSession(p) }, false},
			{"initiating p", func(t *transfers) any { return t.initiating(p) }, false},
			{"start p", func(t *transfers) any { return t.startSession(p, false) }, true},
		}},
		{"a kick while one runs: asked again when it ends, once", []op{
			{"start p", func(t *transfers) any { return t.startSession(p, false) }, true},
			{"kick p", func(t *transfers) any { return t.startSession(p, true) }, false},
			{"a round with p", func(t *transfers) any { return t.startSession(p, false) }, false},
			{"end p", func(t *transfers) any { return t.endSession(p) }, true},
			{"start p", func(t *transfers) any { return t.startSession(p, false) }, true},
			{"end p", func(t *transfers) any { return t.endSession(p) }, false},
		}},
		{"one session a peer starts per peer, apart from ours", []op{
			{"p starts", func(t *transfers) any { return t.startResponding(p) }, true},
			{"p starts again", func(t *transfers) any { return t.startResponding(p) }, false},
			{"we start with p", func(t *transfers) any { return t.startSession(p, false) }, true},
			{"initiating p", func(t *transfers) any { return t.initiating(p) }, true},
			{"p's ends", func(t *transfers) any { t.endResponding(p); return nil }, nil},
			{"p starts", func(t *transfers) any { return t.startResponding(p) }, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runOps(t, tc.ops) })
	}
}

func TestTransfersPushes(t *testing.T) {
	p := peer.ID("peer-one")
	e1, e2, e3 := &log.Entry{}, &log.Entry{}, &log.Entry{}
	queue := func(size int, es ...*log.Entry) func(t *transfers) any {
		return func(t *transfers) any { return t.queuePush(p, es, size, 100) }
	}
	next := func(t *transfers) any { out, _ := t.nextPush(p); return out }
	end := func(t *transfers) any { return t.endPush(p) }
	cover := func(t *transfers) any { return t.queueCover(p) }
	nextCover := func(t *transfers) any { _, c := t.nextPush(p); return c }
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"nothing to push", []op{
			{"queue none", queue(0), pushNothing},
		}},
		{"one push in flight; the rest waits for it and goes next", []op{
			{"queue e1", queue(40, e1), pushStart},
			{"queue e2", queue(40, e2), pushWait},
			{"queue e3", queue(10, e3), pushWait},
			{"next", next, []*log.Entry{e2, e3}},
			{"next", next, []*log.Entry(nil)},
			{"end", end, false},
			{"queue e1", queue(40, e1), pushStart},
		}},
		{"too much at once: ask for a session instead", []op{
			{"queue e1", queue(101, e1), pushAsk},
			{"queue e2", queue(10, e2), pushStart},
		}},
		{"the queue would pass the limit: dropped, ask for a session", []op{
			{"queue e1", queue(40, e1), pushStart},
			{"queue e2", queue(60, e2), pushWait},
			{"queue e3", queue(41, e3), pushAsk},
			{"next", next, []*log.Entry(nil)},
			{"queue e3", queue(41, e3), pushWait},
		}},
		{"a failed push with entries waiting: they are lost, ask for a session", []op{
			{"queue e1", queue(40, e1), pushStart},
			{"queue e2", queue(40, e2), pushWait},
			{"end", end, true},
			{"queue e3", queue(40, e3), pushStart},
			{"end", end, false},
		}},
		{"a cover waits for the push in flight and goes with the next, once", []op{
			{"queue e1", queue(40, e1), pushStart},
			{"cover", cover, pushWait},
			{"cover again", cover, pushWait},
			{"next: cover due", nextCover, true},
			{"next: nothing more", nextCover, false},
			{"end", end, false},
		}},
		{"a cover with no push in flight starts one", []op{
			{"cover", cover, pushStart},
			{"queue e1", queue(40, e1), pushWait},
			{"end with e1 waiting", end, true},
		}},
		{"a failed push with a cover waiting: ask for a session", []op{
			{"queue e1", queue(40, e1), pushStart},
			{"cover", cover, pushWait},
			{"end", end, true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runOps(t, tc.ops) })
	}
}

func TestTransferIDsAreNew(t *testing.T) {
	tr := newTransfers()
	seen := map[transferID]bool{}
	for range 100 {
		id := tr.newID()
		if seen[id] || id == 0 {
			t.Fatalf("newID returned %d again (or zero)", id)
		}
		seen[id] = true
	}
}
