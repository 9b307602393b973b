package sync

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// A transferID names one transfer in flight that may bring us entries: a
// session (this node's or a peer's) or a push being received.
type transferID uint64

// transfers is what this node has in flight with its peers:
//
//   - sessions it started, one per peer, and whether another was asked
//     for while one ran (it runs when that one ends: a kick on a
//     reconnect must not be lost to a session still winding down);
//   - sessions peers started, one per peer;
//   - pushes it sends, one per peer, and the entries waiting for each;
//   - per transfer, the heads its peer is sending us beyond what we
//     store, and the peers we told we hold them (promised): if the
//     transfer ends short, they are asked for a session again.
//
// It does no I/O and asks nobody: a method that finds peers to ask for a
// session returns them, and the Service asks them (Kick). What the store
// holds comes in as an argument (mine). It is not safe for concurrent
// use: the Service calls it under its mutex.
type transfers struct {
	last       transferID
	initiated  map[peer.ID]bool // sessions we started; true: another was asked for meanwhile
	responding map[peer.ID]bool // sessions peers started with us
	pushing    map[peer.ID]*queued
	incoming   map[transferID]log.Frontier
	promised   map[peer.ID]bool
}

// queued holds the entries waiting for the push in flight to a peer.
type queued struct {
	entries []*log.Entry
	size    int
	cover   bool // a cover of this node's head is due to the peer (narrow links)
}

func newTransfers() *transfers {
	return &transfers{
		initiated: map[peer.ID]bool{}, responding: map[peer.ID]bool{}, pushing: map[peer.ID]*queued{},
		incoming: map[transferID]log.Frontier{}, promised: map[peer.ID]bool{},
	}
}

// newID returns an ID no transfer had before.
func (t *transfers) newID() transferID {
	t.last++
	return t.last
}

// startSession marks a session we start with p as running; false if one
// runs already. A kicked session that finds one running is asked for
// again when that one ends (see endSession).
func (t *transfers) startSession(p peer.ID, kicked bool) bool {
	if again, running := t.initiated[p]; running {
		t.initiated[p] = again || kicked
		return false
	}
	t.initiated[p] = false
	return true
}

// endSession marks our session with p as ended; again reports whether
// another was asked for meanwhile (ask p).
func (t *transfers) endSession(p peer.ID) (again bool) {
	again = t.initiated[p]
	delete(t.initiated, p)
	return again
}

// initiating reports whether a session we started with p runs.
func (t *transfers) initiating(p peer.ID) bool {
	_, running := t.initiated[p]
	return running
}

// startResponding marks a session p started with us as running; false if
// one runs already.
func (t *transfers) startResponding(p peer.ID) bool {
	if t.responding[p] {
		return false
	}
	t.responding[p] = true
	return true
}

func (t *transfers) endResponding(p peer.ID) { delete(t.responding, p) }

// What becomes of entries to push to a peer (queuePush).
type pushStep int

const (
	pushNothing pushStep = iota // nothing to push
	pushStart                   // push them now: a push to the peer is in flight from now on
	pushWait                    // queued for the next push to the peer
	pushAsk                     // too much to push (queue dropped): ask the peer for a session
)

// queuePush decides what becomes of out, size bytes of entries p lacks:
// with a push to p in flight they wait for it, unless the queue would
// pass limit (then it is dropped, and p is to be asked for a session);
// with none, a push starts, unless out alone passes limit.
func (t *transfers) queuePush(p peer.ID, out []*log.Entry, size, limit int) pushStep {
	q := t.pushing[p]
	switch {
	case len(out) == 0:
		return pushNothing
	case q != nil && q.size+size > limit:
		q.entries, q.size = nil, 0
		return pushAsk
	case q != nil:
		q.entries = append(q.entries, out...)
		q.size += size
		return pushWait
	case size > limit:
		return pushAsk
	}
	t.pushing[p] = &queued{}
	return pushStart
}

// queueCover asks for a cover of this node's head to go to p (narrow
// links) with the next push, or on its own: it goes in order with the
// entries it covers, never ahead of them.
func (t *transfers) queueCover(p peer.ID) pushStep {
	if q := t.pushing[p]; q != nil {
		q.cover = true
		return pushWait
	}
	t.pushing[p] = &queued{}
	return pushStart
}

// nextPush takes the entries queued for the push to p after the one that
// just went out, and whether a cover is due with them; the push stays in
// flight until endPush.
func (t *transfers) nextPush(p peer.ID) ([]*log.Entry, bool) {
	q := t.pushing[p]
	if q == nil {
		return nil, false
	}
	out, cover := q.entries, q.cover
	q.entries, q.size, q.cover = nil, 0, false
	return out, cover
}

// endPush ends the push in flight to p; lost reports whether entries
// were waiting for it (after a failed push: ask p for a session).
func (t *transfers) endPush(p peer.ID) (lost bool) {
	q := t.pushing[p]
	delete(t.pushing, p)
	return q != nil && (len(q.entries) > 0 || q.cover)
}

// expect records the heads the peer of transfer id is about to send us:
// those of theirs beyond what we store (mine) and beyond what we told it
// we hold (advertised; nil: mine). A peer told that another transfer
// brings us some entries does not send them, so its transfer ending
// without them is not short. Forked heads are never expected.
func (t *transfers) expect(id transferID, mine, theirs, advertised log.Frontier) {
	ahead := log.Frontier{}
	for a, h := range theirs {
		m := mine[a]
		if h.Seq > m.Seq && h.Seq > advertised[a].Seq && !h.Forked && !m.Forked {
			ahead[a] = h
		}
	}
	t.incoming[id] = ahead
}

// bringing reports whether a running transfer brings author a's feed up
// to seq at least.
func (t *transfers) bringing(a crypto.MemberID, seq uint64) bool {
	for _, heads := range t.incoming {
		if heads[a].Seq >= seq {
			return true
		}
	}
	return false
}

// finish forgets transfer id. If it ended short (we store less than the
// heads it was to bring), it returns the peers we told we held them, in
// order, to be asked for a session again, and forgets that they were
// told.
func (t *transfers) finish(id transferID, mine log.Frontier) (ask []peer.ID) {
	short := false
	for a, h := range t.incoming[id] {
		if mine[a].Seq < h.Seq {
			short = true
		}
	}
	delete(t.incoming, id)
	if !short {
		return nil
	}
	for p := range t.promised {
		ask = append(ask, p)
	}
	clear(t.promised)
	slices.Sort(ask)
	return ask
}

// advertise returns the frontier we tell peer to, in transfer id, that
// we hold: what we store (mine, not changed) raised by what other
// transfers are bringing us right now. After a partition heals, every
// peer across the cut starts a session with us at once; without this,
// each would send us the same backlog. If it tells to more than we
// store, to is remembered as promised (see finish).
func (t *transfers) advertise(id transferID, to peer.ID, mine log.Frontier) log.Frontier {
	f := mine.Clone()
	for other, heads := range t.incoming {
		if other == id {
			continue
		}
		for a, h := range heads {
			if m := f[a]; h.Seq > m.Seq && !m.Forked {
				f[a] = h
				t.promised[to] = true
			}
		}
	}
	return f
}

// claimSession returns the frontier we tell peer to in session id (as
// advertise) and, in the same step, records as incoming under id the
// heads of theirs beyond it, which the peer is about to send. Done in two
// steps, sessions that arrive together (a heal: every peer across the
// cut at once) would each tell their peer we lack the same feed, and each
// receive it.
func (t *transfers) claimSession(id transferID, to peer.ID, mine, theirs log.Frontier) log.Frontier {
	f := t.advertise(id, to, mine)
	t.expect(id, mine, theirs, f)
	return f
}

// claim answers an offer of entries up to heads from peer from (push id):
// it returns our advertised frontier for the offered authors and, in the
// same step, records as incoming under id the heads beyond it, which the
// offerer is about to send. Two offers of the same entries therefore
// never both get a yes.
func (t *transfers) claim(id transferID, from peer.ID, mine, heads log.Frontier) log.Frontier {
	f := t.advertise(id, from, mine)
	reply, ahead := log.Frontier{}, log.Frontier{}
	for a, h := range heads {
		m, ok := f[a]
		if ok {
			reply[a] = m
		}
		if h.Seq > m.Seq && !h.Forked && !m.Forked {
			ahead[a] = h
		}
	}
	t.incoming[id] = ahead
	return reply
}
