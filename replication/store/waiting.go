package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Waiting entries: entries held apart from the feed until a composite
// signature covers them. The package documentation, "Waiting entries
// (narrow links)", says what they touch (nothing acted on) and why.

// Errors of the waiting area.
var (
	// ErrWaitingFull: an author already has as many entries waiting as a
	// store keeps (log.MaxWaiting entries, log.MaxUnsignedRun bytes). Not
	// an offence: an honest author's entries come back covered with its
	// next composite signature.
	ErrWaitingFull = errors.New("store: too many entries of this author are waiting for their composite signature")
	// ErrNotWaiting: a cover names an entry this store holds neither
	// waiting nor in the feed. Honest peers cause it (the waiting copy was
	// dropped, or promoted by another cover or a covered copy).
	ErrNotWaiting = errors.New("store: the cover names no entry held waiting")
)

// WaitingEntry is an entry this store holds apart from the feed, waiting
// for its composite signature (log doc, "Narrow links").
type WaitingEntry struct {
	Entry       *log.Entry // as received: with its provisional signature, or none when a provisional successor vouches for it
	Since       time.Time  // when this store first held it (Options.Now)
	Conflicting bool       // another waiting candidate is held at its author and seq
}

// waitFeed is one author's waiting area. Every entry in it chains from
// the author's feed head through entries in it (its predecessors after
// the head are held too), and a provisional signature on it or on a held
// successor vouches for it. Guarded by Store.mu, changed only by a writer
// that holds wmu.
type waitFeed struct {
	byID  map[log.Hash]*waitRec
	bytes int // sum of Entry.Size
}

type waitRec struct {
	e     *log.Entry
	since time.Time
}

// held returns the waiting entry with ID id, or nil; w may be nil.
func (w *waitFeed) held(id log.Hash) *log.Entry {
	if w == nil {
		return nil
	}
	if r := w.byID[id]; r != nil {
		return r.e
	}
	return nil
}

// sorted returns the records by seq, then ID.
func (w *waitFeed) sorted() []*waitRec {
	if w == nil {
		return nil
	}
	recs := make([]*waitRec, 0, len(w.byID))
	for _, r := range w.byID {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b *waitRec) int {
		if c := cmp.Compare(a.e.Header.Seq, b.e.Header.Seq); c != 0 {
			return c
		}
		ia, ib := a.e.ID(), b.e.ID()
		return bytes.Compare(ia[:], ib[:])
	})
	return recs
}

// list returns the area as WaitingEntry values, by seq then ID.
func (w *waitFeed) list() []WaitingEntry {
	recs := w.sorted()
	out := make([]WaitingEntry, len(recs))
	for i, r := range recs {
		seq := r.e.Header.Seq
		conflicting := i > 0 && recs[i-1].e.Header.Seq == seq || i+1 < len(recs) && recs[i+1].e.Header.Seq == seq
		out[i] = WaitingEntry{Entry: r.e, Since: r.since, Conflicting: conflicting}
	}
	return out
}

// dropsAfter returns the records that no longer continue the feed once
// its head is head: all of them for a forked feed, else those at seqs up
// to the head's (promoted, or conflicting with a covered entry) and
// those that chain only through such a record.
func (w *waitFeed) dropsAfter(head log.Head) []*waitRec {
	if w == nil {
		return nil
	}
	var drop []*waitRec
	if head.Forked {
		for _, r := range w.byID {
			drop = append(drop, r)
		}
		return drop
	}
	ok := map[log.Hash]bool{}
	for _, r := range w.sorted() { // by seq: a predecessor is judged first
		h := &r.e.Header
		switch {
		case h.Seq <= head.Seq:
		case h.Seq == head.Seq+1 && (h.Seq == 1 || h.Prev == head.ID), ok[h.Prev]:
			ok[r.e.ID()] = true
			continue
		}
		drop = append(drop, r)
	}
	return drop
}

// Waiting returns every entry held waiting, by author, then seq, then ID.
// The entries are shared: the caller must not modify them.
func (s *Store) Waiting() []WaitingEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	authors := make([]crypto.MemberID, 0, len(s.waiting))
	for a := range s.waiting {
		authors = append(authors, a)
	}
	slices.SortFunc(authors, func(a, b crypto.MemberID) int { return bytes.Compare(a[:], b[:]) })
	var out []WaitingEntry
	for _, a := range authors {
		out = append(out, s.waiting[a].list()...)
	}
	return out
}

// WaitingOf returns the entries of author held waiting, by seq then ID.
func (s *Store) WaitingOf(author crypto.MemberID) []WaitingEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.waiting[author].list()
}

// WaitingHead returns the highest waiting entry of author as a head
// (every waiting entry chains from the feed head): what sync reports as
// "held up to here waiting". Of several candidates at that seq it returns
// the one with the smallest ID. It reports false if none is waiting.
func (s *Store) WaitingHead(author crypto.MemberID) (log.Head, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var top *log.Entry
	for _, r := range s.waiting[author].sorted() {
		if top == nil || r.e.Header.Seq > top.Header.Seq {
			top = r.e
		}
	}
	if top == nil {
		return log.Head{}, false
	}
	return headOf(top), true
}

// headOf is e as a feed head.
func headOf(e *log.Entry) log.Head {
	return log.Head{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport}
}

// Cover attaches c, a composite signature sent on its own, to the entry
// it names, which this store holds waiting, and ingests the chain from
// the feed head to that entry: covered, it joins the feed (res.Added),
// and the candidates it conflicts with are dropped. A signature that does
// not verify is a rejection (a log.InvalidError, ReasonBadSignature) and
// changes nothing; a cover of an entry already in the feed counts as a
// duplicate; a cover of an entry not held is a rejection wrapping
// ErrNotWaiting. The error is for I/O failures and a full disk only.
func (s *Store) Cover(ctx context.Context, c log.Cover) (*IngestResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	closed := s.closed
	var e *log.Entry
	for _, w := range s.waiting {
		if e = w.held(c.ID); e != nil {
			break
		}
	}
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	res := &IngestResult{}
	if e == nil {
		if _, err := s.Get(c.ID); err == nil {
			res.Duplicates++
			return res, nil
		} else if !errors.Is(err, ErrNotFound) {
			return res, err
		}
		res.Rejected = append(res.Rejected, Rejection{ID: c.ID, Err: fmt.Errorf("%w: %s (dropped, already covered by another way, or never received here)", ErrNotWaiting, c.ID.Short())})
		return res, nil
	}
	covered, err := c.Attach(e)
	if err != nil {
		res.Rejected = append(res.Rejected, Rejection{Author: e.Header.Author, Seq: e.Header.Seq, ID: e.ID(), Err: err})
		return res, nil
	}
	if _, err := s.ingestRun([]*log.Entry{covered}, res); err != nil {
		return res, err
	}
	return res, nil
}

// completeFromWaiting prepares rest, entries of author after its feed
// head head, for checking: entries already held waiting leave it (unless
// they carry a composite signature, which may cover them), and the held
// entries that rest's entries chain to are added (without their
// provisional signatures, which were verified when they were held), so a
// run that starts after the head (a gap) is complete when the waiting
// area fills the gap. It returns the run, sorted by seq, the IDs of the
// entries of rest that were already held, and the IDs of those it added.
func (s *Store) completeFromWaiting(author crypto.MemberID, rest []*log.Entry) ([]*log.Entry, []log.Hash, map[log.Hash]bool) {
	s.mu.RLock()
	w := s.waiting[author]
	s.mu.RUnlock()
	if w == nil || len(w.byID) == 0 {
		return rest, nil, nil
	}
	var dups []log.Hash
	out := make([]*log.Entry, 0, len(rest))
	have := map[log.Hash]bool{}
	for _, e := range rest {
		if w.held(e.ID()) != nil && !e.Signed() {
			dups = append(dups, e.ID())
			continue
		}
		out = append(out, e)
		have[e.ID()] = true
	}
	added := map[log.Hash]bool{}
	for _, e := range slices.Clone(out) {
		for p := w.held(e.Header.Prev); p != nil && !have[p.ID()]; p = w.held(p.Header.Prev) {
			have[p.ID()], added[p.ID()] = true, true
			out = append(out, p.Unsigned())
		}
	}
	slices.SortStableFunc(out, func(a, b *log.Entry) int { return cmp.Compare(a.Header.Seq, b.Header.Seq) })
	return out, dups, added
}

// holdOrReject takes the entries of author's run that no composite
// signature covers (left, in seq order, after its current feed head):
// those waiting for their composite signature are held apart from the
// feed (res.Waiting), the others are rejected with runErr, or the reason
// that applies to them. The caller holds wmu.
func (s *Store) holdOrReject(roster *crypto.Roster, author crypto.MemberID, left []*log.Entry, runErr error, res *IngestResult) error {
	s.mu.RLock()
	head := s.frontier[author]
	w := s.waiting[author]
	var heldIDs map[log.Hash]*log.Entry
	heldBytes := 0
	if w != nil {
		heldIDs = make(map[log.Hash]*log.Entry, len(w.byID))
		for id, r := range w.byID {
			heldIDs[id] = r.e
		}
		heldBytes = w.bytes
	}
	s.mu.RUnlock()
	var cands []*log.Entry
	provisional := false
	for _, e := range left {
		if heldIDs[e.ID()] != nil && !e.Signed() {
			continue // held already (counted by the caller)
		}
		cands = append(cands, e)
		provisional = provisional || e.Provisional()
	}
	m, member := roster.Member(author)
	var hold []*log.Entry
	why := map[log.Hash]error{}
	// Only a provisional signature makes an entry wait; a revoked author's
	// entries count only covered, and a forked feed takes nothing.
	if provisional && member && !m.Revoked && !head.Forked {
		hold, why = admit(s.network, roster, head, heldIDs, heldBytes, cands)
	}
	if len(hold) > 0 {
		if err := s.holdWaiting(author, hold); err != nil {
			return err
		}
		slices.SortStableFunc(hold, func(a, b *log.Entry) int { return cmp.Compare(a.Header.Seq, b.Header.Seq) })
		res.Waiting = append(res.Waiting, hold...)
	}
	held := make(map[log.Hash]bool, len(hold))
	for _, e := range hold {
		held[e.ID()] = true
	}
	for _, e := range cands {
		if held[e.ID()] {
			continue
		}
		err := why[e.ID()]
		if err == nil {
			err = runErr
		}
		res.Rejected = append(res.Rejected, Rejection{Author: author, Seq: e.Header.Seq, ID: e.ID(), Err: err})
	}
	return nil
}

// admit decides which of left (entries of one author after its feed head
// head, in seq order, none of them held and none covered) to hold
// waiting beside held (its waiting entries, heldBytes in all): each
// entry that log.Classify finds waiting on its chain from the head,
// through held entries and entries of left, up to the last provisional
// signature on that chain, as far as the bounds allow (log.MaxWaiting
// entries, log.MaxUnsignedRun bytes). Every entry it holds is thus
// vouched for by a provisional signature on itself or on a successor it
// holds. why says why an entry is not held, where it knows better than
// the run's error.
//
// Each chain is checked from the last entry held before it, so a
// signature is verified once however many candidates share a chain, and
// an entry that can never wait (an invalid one, a system entry, one over
// the bounds) stops every chain through it.
func admit(network crypto.NetworkID, roster *crypto.Roster, head log.Head, held map[log.Hash]*log.Entry, heldBytes int, left []*log.Entry) (hold []*log.Entry, why map[log.Hash]error) {
	why = map[log.Hash]error{}
	known := make(map[log.Hash]*log.Entry, len(held)+len(left))
	for id, e := range held {
		known[id] = e
	}
	byID := make(map[log.Hash]*log.Entry, len(left))
	isPrev := map[log.Hash]bool{}
	for _, e := range left {
		byID[e.ID()] = e
		isPrev[e.Header.Prev] = true
	}
	blocked := map[log.Hash]error{} // never waiting, nor anything after it
	count, size := len(held), heldBytes
	var full error
	for _, leaf := range left {
		if isPrev[leaf.ID()] {
			continue // on the chain of another entry of left
		}
		// The chain from the last held entry (or the head) to leaf.
		var chain []*log.Entry
		base, found := head, false
		var stop error
		for e := leaf; e != nil; e = byID[e.Header.Prev] {
			if err := blocked[e.ID()]; err != nil {
				stop = err
				break
			}
			chain = append(chain, e)
			if e.Header.Seq <= head.Seq+1 {
				found = true // Classify judges its prev
				break
			}
			if p := known[e.Header.Prev]; p != nil {
				base, found = headOf(p), true
				break
			}
		}
		slices.Reverse(chain)
		if !found {
			for _, e := range chain {
				if why[e.ID()] == nil && stop != nil {
					why[e.ID()] = stop
				}
			}
			continue
		}
		covered, waiting, err := log.Classify(network, roster, base, chain)
		last := -1 // the last provisional signature among the waiting
		for i := covered; i < covered+waiting && covered == 0; i++ {
			if chain[i].Provisional() {
				last = i
			}
		}
		fit, n, sz := -1, count, size // the last provisional signature that fits
		for i := 0; i <= last; i++ {
			n, sz = n+1, sz+chain[i].Size()
			if n > log.MaxWaiting || sz > log.MaxUnsignedRun {
				break
			}
			if chain[i].Provisional() {
				fit, count, size = i, n, sz
			}
		}
		for _, e := range chain[:fit+1] {
			hold = append(hold, e)
			known[e.ID()] = e
		}
		if fit < last {
			if full == nil {
				full = fmt.Errorf("%w: %d entries (%d bytes) of %s are held waiting, at most %d (%d bytes) are; they come back covered with the author's next composite signature",
					ErrWaitingFull, count, size, leaf.Header.Author.Short(), log.MaxWaiting, log.MaxUnsignedRun)
			}
			blocked[chain[fit+1].ID()] = full
		} else if i := errIndex(err, chain); i >= 0 && (log.ReasonOf(err) != log.ReasonUnsignedTail || chain[i].Header.Priority == log.Control) {
			blocked[chain[i].ID()] = err
		}
		for i, e := range chain[fit+1:] {
			switch {
			case fit+1+i <= last:
				why[e.ID()] = full
			case err != nil && why[e.ID()] == nil:
				why[e.ID()] = err
			}
		}
	}
	return hold, why
}

// errIndex returns the index in chain of the entry err (a
// log.InvalidError) names, or -1.
func errIndex(err error, chain []*log.Entry) int {
	var ie *log.InvalidError
	if !errors.As(err, &ie) || len(chain) == 0 || ie.Seq < chain[0].Header.Seq {
		return -1
	}
	if i := ie.Seq - chain[0].Header.Seq; i < uint64(len(chain)) {
		return int(i)
	}
	return -1
}

// holdWaiting durably holds entries of author waiting (Since: now). The
// caller holds wmu and has checked them (admit).
func (s *Store) holdWaiting(author crypto.MemberID, hold []*log.Entry) error {
	if err := s.guard.room(fmt.Sprintf("holding %s of %s waiting", entries(len(hold)), author.Short())); err != nil {
		return err
	}
	since := s.now()
	for len(hold) > 0 {
		var part []*log.Entry
		part, hold = nextPart(hold)
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, e := range part {
				if err := txn.Set(waitingKey(author, e.Header.Seq, e.ID()), encodeWaiting(since, e)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: hold waiting entries of %s: %w", author.Short(), err)
		}
		s.mu.Lock()
		w := s.waiting[author]
		if w == nil {
			w = &waitFeed{byID: map[log.Hash]*waitRec{}}
			s.waiting[author] = w
		}
		for _, e := range part {
			w.byID[e.ID()] = &waitRec{e: e, since: since}
			w.bytes += e.Size()
		}
		s.mu.Unlock()
	}
	return nil
}

// waitingDrops returns the waiting entries of author that moving its
// feed head to head drops. The caller holds wmu, deletes them in the
// transaction that moves the head (deleteWaiting) and then from memory
// (forgetWaitingLocked).
func (s *Store) waitingDrops(author crypto.MemberID, head log.Head) []*waitRec {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.waiting[author].dropsAfter(head)
}

// deleteWaiting deletes the records of recs in txn.
func deleteWaiting(txn *badger.Txn, author crypto.MemberID, recs []*waitRec) error {
	for _, r := range recs {
		if err := txn.Delete(waitingKey(author, r.e.Header.Seq, r.e.ID())); err != nil {
			return err
		}
	}
	return nil
}

// forgetWaitingLocked drops recs from author's waiting area in memory.
// The caller holds mu for writing.
func (s *Store) forgetWaitingLocked(author crypto.MemberID, recs []*waitRec) {
	w := s.waiting[author]
	if w == nil {
		return
	}
	for _, r := range recs {
		if w.byID[r.e.ID()] != nil {
			delete(w.byID, r.e.ID())
			w.bytes -= r.e.Size()
		}
	}
	if len(w.byID) == 0 {
		delete(s.waiting, author)
	}
}

// dropWaiting drops every waiting entry of author (revoked: its entries
// count only covered). Not refused on a full disk: it frees space. The
// caller holds wmu.
func (s *Store) dropWaiting(author crypto.MemberID) error {
	drop := s.waitingDrops(author, log.Head{Forked: true})
	if len(drop) == 0 {
		return nil
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return deleteWaiting(txn, author, drop) }); err != nil {
		return fmt.Errorf("store: drop waiting entries of %s: %w", author.Short(), err)
	}
	s.mu.Lock()
	s.forgetWaitingLocked(author, drop)
	s.mu.Unlock()
	return nil
}

func waitingKey(author crypto.MemberID, seq uint64, id log.Hash) []byte {
	return entryAtKey(pWaiting, author, seq, id)
}

// encodeWaiting is a waiting record's value: since (unix nanoseconds,
// big-endian) and the entry's bytes.
func encodeWaiting(since time.Time, e *log.Entry) []byte {
	v := make([]byte, 8, 8+e.Size())
	binary.BigEndian.PutUint64(v, uint64(since.UnixNano()))
	return append(v, e.Bytes()...)
}

// decodeWaiting parses a waiting record, checking that the entry is
// where its key says.
func decodeWaiting(k, v []byte) (crypto.MemberID, *waitRec, error) {
	if len(k) != 73 {
		return crypto.MemberID{}, nil, fmt.Errorf("%w: waiting entry key of %d bytes, want 73", ErrCorrupt, len(k))
	}
	author, seq, id := crypto.MemberID(k[1:33]), binary.BigEndian.Uint64(k[33:41]), log.Hash(k[41:])
	damaged := func(what string) error {
		return fmt.Errorf("%w: waiting entry %s of %s at seq %d: %s", ErrCorrupt, id.Short(), author.Short(), seq, what)
	}
	if len(v) < 8 {
		return author, nil, damaged(fmt.Sprintf("record of %d bytes", len(v)))
	}
	e, err := log.Decode(v[8:])
	if err != nil {
		return author, nil, damaged("entry does not decode: " + err.Error())
	}
	if e.ID() != id || e.Header.Author != author || e.Header.Seq != seq {
		return author, nil, damaged("the entry is not where its key says")
	}
	return author, &waitRec{e: e, since: time.Unix(0, int64(binary.BigEndian.Uint64(v[:8]))).UTC()}, nil
}

// loadWaitingLocked reads the waiting area at open, after the frontier
// and the roster: it keeps, per author, what admit keeps against the
// feed head and the roster now (so an entry the feed has passed, or a
// roster change refuses, is dropped) and returns the keys of the
// records it drops. A damaged record is ErrCorrupt. Called during open,
// before the store is shared.
func (s *Store) loadWaitingLocked(txn *badger.Txn) ([][]byte, error) {
	by := map[crypto.MemberID][]*waitRec{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pWaiting}, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().KeyCopy(nil)
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("%w: waiting entry %x: %v", ErrCorrupt, k, err)
		}
		author, r, err := decodeWaiting(k, v)
		if err != nil {
			return nil, err
		}
		by[author] = append(by[author], r)
	}
	var drop [][]byte
	for author, recs := range by {
		head := s.frontier[author]
		m, member := s.roster.Member(author)
		var keep map[log.Hash]bool
		if member && !m.Revoked && !head.Forked {
			var left []*log.Entry
			for _, r := range recs { // in key order: by seq
				if r.e.Header.Seq > head.Seq {
					left = append(left, r.e)
				}
			}
			hold, _ := admit(s.network, s.roster, head, nil, 0, left)
			keep = make(map[log.Hash]bool, len(hold))
			for _, e := range hold {
				keep[e.ID()] = true
			}
		}
		w := &waitFeed{byID: map[log.Hash]*waitRec{}}
		for _, r := range recs {
			if !keep[r.e.ID()] {
				drop = append(drop, waitingKey(author, r.e.Header.Seq, r.e.ID()))
				continue
			}
			w.byID[r.e.ID()] = r
			w.bytes += r.e.Size()
		}
		if len(w.byID) > 0 {
			s.waiting[author] = w
		}
	}
	return drop, nil
}
