package store

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// enforceRevocations makes the feed of every revoked member what its
// revocation keeps (settleRevoked). The caller holds wmu.
// The roster entries this moves are taken into account by the caller,
// applyPlain, which derives the roster again.
func (s *Store) enforceRevocations(r *crypto.Roster) error {
	for _, m := range r.Members() {
		if !m.Revoked {
			continue
		}
		// A revoked member's entries count only covered: none waits.
		if err := s.dropWaiting(m.Card.ID()); err != nil {
			return err
		}
		if _, err := s.settleRevoked(m); err != nil {
			return err
		}
	}
	return nil
}

// settleRevoked makes a revoked member's feed exactly what the revocation
// rule (log.RevocationKeeps) keeps of the entries this node holds of it,
// in the feed or as evidence: the chain that ends at the entry the
// revocation names (FeedHead), then, one seq at a time, the successor the
// rule keeps and a signature (or the revocation) vouches for; two such
// successors are a fork, and the feed is frozen before them. The result
// depends only on the entries held, not on the order they came in, and is
// what log.CheckRun accepts when the revocation comes first. Entries off
// that chain become evidence; entries on it come back from evidence.
//
// When this node lacks part of the chain up to FeedHead, it cuts the feed
// before the named seq (at its last signed entry) and settles once the
// chain is complete. It returns the plain entries it moved into or out of
// the feed. The caller holds wmu.
func (s *Store) settleRevoked(m *crypto.Member) ([]*log.Entry, error) {
	id := m.Card.ID()
	feed, err := s.Feed(id, 0, 0)
	if err != nil {
		return nil, err
	}
	ev, err := s.EvidenceOf(id)
	if err != nil {
		return nil, err
	}
	if len(feed) == 0 && len(ev) == 0 {
		return nil, nil
	}
	head, _ := s.Head(id)
	feedHead := log.Hash(m.FeedHead)
	held := map[log.Hash]*log.Entry{}
	children := map[log.Hash][]*log.Entry{} // by prev; seq 1 under the zero hash
	var all []*log.Entry
	for _, e := range append(slices.Clone(feed), ev...) {
		if held[e.ID()] != nil {
			continue
		}
		held[e.ID()] = e
		all = append(all, e)
		children[e.Header.Prev] = append(children[e.Header.Prev], e)
	}
	// The chain up to the named entry.
	var chain []*log.Entry
	if m.FeedSeq > 0 {
		for e := held[feedHead]; e != nil; e = held[e.Header.Prev] {
			chain = append(chain, e)
			if e.Header.Seq == 1 {
				break
			}
		}
		if len(chain) == 0 || chain[len(chain)-1].Header.Seq != 1 || uint64(len(chain)) != m.FeedSeq {
			return nil, s.cutRevoked(m, feed, head)
		}
		slices.Reverse(chain)
	}
	// vouched: kept by the rule, and signed, or the named entry, or the
	// predecessor of a vouched entry. Children first (descending seq).
	slices.SortFunc(all, func(a, b *log.Entry) int { return cmp.Compare(b.Header.Seq, a.Header.Seq) })
	vouched := map[log.Hash]bool{}
	for _, e := range all {
		h := &e.Header
		if !log.RevocationKeeps(m, h.Seq, h.Lamport) || h.Seq == m.FeedSeq && e.ID() != feedHead {
			continue
		}
		v := e.Signed() || m.FeedSeq > 0 && e.ID() == feedHead
		for _, c := range children[e.ID()] {
			v = v || c.Header.Seq == h.Seq+1 && vouched[c.ID()]
		}
		vouched[e.ID()] = v
	}
	// Past the named entry, one kept and vouched successor at a time.
	var last log.Hash
	var seq uint64
	if len(chain) > 0 {
		last, seq = chain[len(chain)-1].ID(), m.FeedSeq
	}
	forked := false
	for {
		var next []*log.Entry
		for _, c := range children[last] {
			if c.Header.Seq == seq+1 && vouched[c.ID()] {
				next = append(next, c)
			}
		}
		if len(next) != 1 {
			forked = len(next) > 1
			break
		}
		chain = append(chain, next[0])
		last, seq = next[0].ID(), seq+1
	}
	next := log.Head{Forked: forked}
	if len(chain) > 0 {
		e := chain[len(chain)-1]
		next = log.Head{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport, Forked: forked}
	}
	if next == head && slices.EqualFunc(feed, chain, func(a, b *log.Entry) bool { return a.ID() == b.ID() }) {
		return nil, nil
	}
	return s.rewriteFeed(m, feed, chain, next)
}

// rewriteFeed replaces a member's feed by chain with head next: entries of
// feed off chain become evidence, entries of chain not in feed leave the
// evidence. Not refused on a full disk: it completes a write made before.
// Subscribers get the entries that come back. It returns the plain
// entries it moved.
func (s *Store) rewriteFeed(m *crypto.Member, feed, chain []*log.Entry, next log.Head) ([]*log.Entry, error) {
	id := m.Card.ID()
	on, inFeed := map[log.Hash]bool{}, map[log.Hash]bool{}
	for _, e := range chain {
		on[e.ID()] = true
	}
	for _, e := range feed {
		inFeed[e.ID()] = true
	}
	var aside, back, plain []*log.Entry
	drop := s.waitingDrops(id, next)
	err := s.db.Update(func(txn *badger.Txn) error {
		aside, back = aside[:0], back[:0]
		if err := deleteWaiting(txn, id, drop); err != nil {
			return err
		}
		for _, e := range feed {
			if on[e.ID()] {
				continue
			}
			aside = append(aside, e)
			for _, k := range [][]byte{entryKey(e.ID()), feedKey(id, e.Header.Seq), orderKey(pOrder, e.Order()), orderKey(pPlain, e.Order())} {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			if err := txn.Set(evidenceKey(id, e.Header.Seq, e.ID()), e.Bytes()); err != nil {
				return err
			}
		}
		for _, e := range chain {
			if inFeed[e.ID()] {
				continue
			}
			back = append(back, e)
			if err := txn.Delete(evidenceKey(id, e.Header.Seq, e.ID())); err != nil {
				return err
			}
			if err := putEntry(txn, e); err != nil {
				return err
			}
		}
		return putHead(txn, id, next)
	})
	if err != nil {
		return nil, fmt.Errorf("store: settle the feed of revoked %s: %w", m.Card.Name(), err)
	}
	s.mu.Lock()
	s.setHeadLocked(id, next)
	s.forgetWaitingLocked(id, drop)
	if len(back) > 0 {
		s.notifyLocked(back)
	}
	s.mu.Unlock()
	s.logger.Warn("feed of a revoked member settled by its revocation", "member", m.Card.Name(), "seq", next.Seq, "forked", next.Forked,
		"set_aside", len(aside), "restored", len(back), "revoked_at_lamport", m.RevokedClock, "kept_seq", m.FeedSeq)
	for _, e := range append(aside, back...) {
		if e.Header.Plain() {
			plain = append(plain, e)
		}
	}
	return plain, nil
}

// cutRevoked is settleRevoked for a node that lacks part of the chain up
// to the entry the revocation names: if it holds another entry at the
// named seq, the feed is cut before it, at the last signed entry (what
// log.CheckRun keeps when the revocation comes first). A forked feed
// waits for the chain.
func (s *Store) cutRevoked(m *crypto.Member, feed []*log.Entry, head log.Head) error {
	if head.Forked || head.Seq < m.FeedSeq {
		return nil
	}
	keep := uint64(0)
	for _, e := range feed[:m.FeedSeq-1] {
		if e.Signed() {
			keep = e.Header.Seq
		}
	}
	next, err := s.headAt(m.Card.ID(), keep)
	if err != nil {
		return err
	}
	s.logger.Warn("entries of a revoked member set aside: another entry than the one its revocation names", "member", m.Card.Name(), "kept_until_seq", keep)
	return s.setAside(m.Card.ID(), keep+1, nil, next)
}
