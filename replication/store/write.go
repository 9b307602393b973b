package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

type appendReq struct {
	drafts  []log.Draft
	entries []*log.Entry
	err     error
	done    chan struct{}
	// finished is set under qmu once done is closed.
	finished bool
}

// Append seals, chains and signs drafts as this node's next entries and
// stores them durably: it returns only after they are fsynced. Concurrent
// calls are group committed (one signature, one fsync for all of them).
func (s *Store) Append(ctx context.Context, drafts ...log.Draft) ([]*log.Entry, error) {
	if len(drafts) == 0 {
		return nil, errors.New("store: append: no drafts")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := &appendReq{drafts: drafts, done: make(chan struct{})}
	// Group commit as in LevelDB's write queue: the request at the front
	// of the queue leads, commits everything queued behind it in one
	// batch, and hands over to the next front; the others just wait.
	s.qmu.Lock()
	s.queue = append(s.queue, req)
	if s.gathering {
		s.qcond.Broadcast()
	}
	for !req.finished && s.queue[0] != req {
		s.qcond.Wait()
	}
	if req.finished {
		s.qmu.Unlock()
		return req.entries, req.err
	}
	s.gatherLocked()
	batch := slices.Clone(s.queue)
	s.qmu.Unlock()

	s.wmu.Lock()
	s.commitAppends(batch)
	s.wmu.Unlock()

	s.qmu.Lock()
	s.writers = len(s.queue) // this batch and what queued behind it
	s.queue = s.queue[len(batch):]
	for _, r := range batch {
		r.finished = true
	}
	s.qcond.Broadcast()
	s.qmu.Unlock()
	return req.entries, req.err
}

// Commit delay, as PostgreSQL's commit_delay with commit_siblings: with
// many writers, the writers just acknowledged are a moment away from
// appending again while the others queued during the last commit; without
// a delay the next leader commits those alone, and the writers split into
// two cohorts that take turns, half of them per fsync. So a leader that
// saw at least commitSiblings writers at the last commit waits up to
// commitDelay for as many to queue. A lone writer never waits.
const (
	commitDelay    = time.Millisecond
	commitSiblings = 4
)

// gatherLocked is the commit delay of the leader at the front of the
// queue; the caller holds qmu.
func (s *Store) gatherLocked() {
	want := s.writers
	if want < commitSiblings || len(s.queue) >= want {
		return
	}
	late := false
	t := time.AfterFunc(s.commitDelay, func() {
		s.qmu.Lock()
		late = true
		s.qcond.Broadcast()
		s.qmu.Unlock()
	})
	defer t.Stop()
	s.gathering = true
	for len(s.queue) < want && !late {
		s.qcond.Wait()
	}
	s.gathering = false
}

// commitAppends writes a group of appends; the caller holds wmu.
func (s *Store) commitAppends(batch []*appendReq) {
	finish := func(r *appendReq, es []*log.Entry, err error) {
		r.entries, r.err = es, err
		close(r.done)
	}
	var all []log.Draft
	for _, r := range batch {
		all = append(all, r.drafts...)
	}
	es, err := s.appendLocked(all)
	if err != nil && len(batch) > 1 && !errors.Is(err, ErrDiskFull) && !errors.Is(err, ErrClosed) {
		// One request's bad draft must not fail the others: retry alone.
		for _, r := range batch {
			es, err := s.appendLocked(r.drafts)
			finish(r, es, err)
		}
		return
	}
	off := 0
	for _, r := range batch {
		if err != nil {
			finish(r, nil, err)
			continue
		}
		finish(r, es[off:off+len(r.drafts)], nil)
		off += len(r.drafts)
	}
}

// appendLocked builds and durably stores drafts; the caller holds wmu.
func (s *Store) appendLocked(drafts []log.Draft) ([]*log.Entry, error) {
	me := s.self.ID()
	s.mu.RLock()
	closed, head, maxLamport, roster := s.closed, s.frontier[me], s.maxLamport, s.roster
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, ErrClosed
	case !roster.Active(me):
		return nil, fmt.Errorf("store: append: %s is not an active member of the roster (revoked or never admitted)", s.self.Name())
	case head.Forked:
		return nil, fmt.Errorf("store: append: this member's feed is frozen: another entry with our key forked it at seq %d (is the identity used on two machines, or stolen?)", head.Seq+1)
	}
	// Checked before building: a refused batch costs no signature.
	if err := s.guard.room("appending " + entries(len(drafts))); err != nil {
		return nil, err
	}
	es, err := log.Build(s.self, s.network, log.Tip{Seq: head.Seq, ID: head.ID, Lamport: head.Lamport}, maxLamport, s.now(), drafts)
	if err != nil {
		return nil, fmt.Errorf("store: append: %w", err)
	}
	if _, err := s.writeRun(es); err != nil {
		return nil, err
	}
	return es, nil
}

// writeRun durably stores a run of one author's entries that extends its
// feed head, and moves the head; the caller holds wmu, has validated the
// run and asked the disk guard. Runs too large for one transaction are split; each part moves
// the head only over what it holds, so a crash leaves a valid shorter feed.
// It returns the offences the run's author committed (clock jumps).
func (s *Store) writeRun(run []*log.Entry) ([]Charge, error) {
	var offences []Charge
	for len(run) > 0 {
		// A part must end on a signed entry only for peers; locally every
		// stored entry was validated as part of the whole run.
		var part []*log.Entry
		part, run = nextPart(run)
		last := part[len(part)-1]
		author := last.Header.Author
		head := log.Head{Seq: last.Header.Seq, ID: last.ID(), Lamport: last.Header.Lamport}
		// Waiting entries the new head passes go in the same transaction.
		drop := s.waitingDrops(author, head)
		err := s.db.Update(func(txn *badger.Txn) error {
			for _, e := range part {
				if err := putEntry(txn, e); err != nil {
					return err
				}
			}
			if err := deleteWaiting(txn, author, drop); err != nil {
				return err
			}
			return txn.Set(headKey(author), encodeHead(head))
		})
		if err != nil {
			return offences, fmt.Errorf("store: write: %w (nothing of this batch was acknowledged)", err)
		}
		s.mu.Lock()
		old, had := s.frontier[author]
		s.frontier[author] = head
		s.digest.Move(author, old, had, head)
		s.forgetWaitingLocked(author, drop)
		charged := len(offences)
		prev := old.Lamport // had is true unless part starts the feed: then 0
		for _, e := range part {
			l := e.Header.Lamport
			// A clock far above its author's previous one is charged to
			// the author, the same on every node (it depends on the feed
			// only); the entry stays valid.
			if log.Jumped(prev, l) {
				offences = append(offences, Charge{Author: author, Seq: e.Header.Seq, ID: e.ID(), Kind: OffenceLamportJump,
					Detail: fmt.Sprintf("Lamport clock %d jumps %d above the author's previous clock %d", l, l-prev, prev)})
				s.offences[offence{author: author, rule: OffenceLamportJump, entry: e.ID()}] = struct{}{}
			}
			// A clock far above everything held is not carried into our
			// own entries.
			if !log.Jumped(s.maxLamport, l) {
				s.maxLamport = max(s.maxLamport, l)
			}
			prev = l
		}
		s.notifyLocked(part)
		s.mu.Unlock()
		for _, o := range offences[charged:] {
			s.logger.Warn("offence: valid entry no honest author writes", "kind", o.Kind, "author", o.Author.Short(), "seq", o.Seq, "detail", o.Detail)
		}
		var plain []*log.Entry
		for _, e := range part {
			if e.Header.Plain() {
				plain = append(plain, e)
			}
		}
		if len(plain) > 0 {
			if err := s.applyPlain(plain); err != nil {
				return offences, err
			}
		}
		s.judgeBodies(part)
	}
	return offences, nil
}

// nextPart splits es into the first part that fits one write
// transaction and the rest.
func nextPart(es []*log.Entry) (part, rest []*log.Entry) {
	n, size := 0, 0
	for n < len(es) && n < maxTxnEntries && size < maxTxnBytes {
		size += es[n].Size()
		n++
	}
	return es[:n], es[n:]
}

func putEntry(txn *badger.Txn, e *log.Entry) error {
	id := e.ID()
	if err := txn.Set(entryKey(id), e.Bytes()); err != nil {
		return err
	}
	if err := txn.Set(feedKey(e.Header.Author, e.Header.Seq), id[:]); err != nil {
		return err
	}
	if err := txn.Set(orderKey(pOrder, e.Order()), id[:]); err != nil {
		return err
	}
	if e.Header.Plain() {
		return txn.Set(orderKey(pPlain, e.Order()), id[:])
	}
	return nil
}

// A Rejection is a remote entry Ingest refused.
type Rejection struct {
	Author crypto.MemberID
	Seq    uint64
	ID     log.Hash
	Err    error
}

// IngestResult says what Ingest (or Cover) did with each entry.
type IngestResult struct {
	Added      []*log.Entry // newly stored in the feed, per author in seq order (also entries promoted from waiting)
	Duplicates int          // already held (in the feed, as evidence or waiting)
	Rejected   []Rejection
	Forks      []Fork       // forks found in this call
	Charges    []Charge     // offences of the added entries' authors, found as they were stored
	Waiting    []*log.Entry // newly held waiting (apart from the feed), per author in seq order
}

// Ingest validates and durably stores remote entries. Entries may come in
// any order and mix authors; an entry that this node already holds is
// skipped. Covered entries join the feed (res.Added); entries waiting for
// their composite signature are held apart from it (res.Waiting, see the
// package documentation, "Waiting entries (narrow links)"). Invalid
// entries are reported in the result, never stored; the error is for I/O
// failures and a full disk (ErrDiskFull) only. On an error the result
// says what was stored before it; a full disk refuses an author's run
// before any of it is written, so feeds stay valid.
func (s *Store) Ingest(ctx context.Context, entries ...*log.Entry) (*IngestResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	res := &IngestResult{}
	runs := groupRuns(entries, res)
	// Roster entries may admit authors of other runs: retry those runs
	// after the roster changed.
	for pass := 0; len(runs) > 0 && pass < 4; pass++ {
		var retry [][]*log.Entry
		rosterBefore := s.Roster()
		for _, run := range runs {
			again, err := s.ingestRun(run, res)
			if err != nil {
				return res, err
			}
			if again != nil {
				retry = append(retry, again)
			}
		}
		if s.Roster() == rosterBefore {
			for _, run := range retry {
				s.rejectRun(run, res)
			}
			break
		}
		runs = retry
	}
	return res, nil
}

// groupRuns sorts entries into per-author runs in seq order, dropping exact
// duplicates within the call (of one entry with several signatures, the
// strongest stays: composite, provisional, none).
func groupRuns(entries []*log.Entry, res *IngestResult) [][]*log.Entry {
	by := map[crypto.MemberID][]*log.Entry{}
	var authors []crypto.MemberID
	seen := map[log.Hash]int{} // index in by[author]
	for _, e := range entries {
		if e == nil {
			continue
		}
		a := e.Header.Author
		if i, ok := seen[e.ID()]; ok {
			res.Duplicates++
			if sigRank(e) > sigRank(by[a][i]) {
				by[a][i] = e
			}
			continue
		}
		seen[e.ID()] = len(by[a])
		if _, ok := by[a]; !ok {
			authors = append(authors, a)
		}
		by[a] = append(by[a], e)
	}
	// Runs holding plain entries (roster, keys) go first.
	slices.SortStableFunc(authors, func(a, b crypto.MemberID) int {
		pa, pb := hasPlain(by[a]), hasPlain(by[b])
		switch {
		case pa && !pb:
			return -1
		case pb && !pa:
			return 1
		}
		return bytes.Compare(a[:], b[:])
	})
	runs := make([][]*log.Entry, 0, len(authors))
	for _, a := range authors {
		run := by[a]
		slices.SortStableFunc(run, func(x, y *log.Entry) int {
			switch {
			case x.Header.Seq < y.Header.Seq:
				return -1
			case x.Header.Seq > y.Header.Seq:
				return 1
			}
			return 0
		})
		runs = append(runs, run)
	}
	return runs
}

// sigRank orders the signatures an entry may carry: none, provisional,
// composite.
func sigRank(e *log.Entry) int {
	switch {
	case e.Signed():
		return 2
	case e.Provisional():
		return 1
	}
	return 0
}

func hasPlain(run []*log.Entry) bool {
	return slices.ContainsFunc(run, func(e *log.Entry) bool { return e.Header.Plain() })
}

func (s *Store) rejectRun(run []*log.Entry, res *IngestResult) {
	s.mu.RLock()
	head := s.frontier[run[0].Header.Author]
	roster := s.roster
	s.mu.RUnlock()
	_, err := log.CheckRun(s.network, roster, head, run)
	for _, e := range run {
		if e.Header.Seq > head.Seq {
			res.Rejected = append(res.Rejected, Rejection{Author: e.Header.Author, Seq: e.Header.Seq, ID: e.ID(), Err: err})
		}
	}
}

// ingestRun handles one author's run; it returns the run if it should be
// retried after a roster change (unknown author).
func (s *Store) ingestRun(run []*log.Entry, res *IngestResult) ([]*log.Entry, error) {
	author := run[0].Header.Author
	s.mu.RLock()
	head := s.frontier[author]
	roster := s.roster
	s.mu.RUnlock()

	// Entries at seqs we hold: duplicates, or a fork.
	i := 0
	for ; i < len(run) && run[i].Header.Seq <= head.Seq; i++ {
		e := run[i]
		stored, err := s.idAt(author, e.Header.Seq)
		if err != nil {
			return nil, err
		}
		if stored == e.ID() {
			res.Duplicates++
			continue
		}
		held, err := s.heldAsEvidence(e)
		if err != nil {
			return nil, err
		}
		if held {
			// Already proof of a fork, or set aside by a revocation.
			res.Duplicates++
			continue
		}
		forked, err := s.tryFork(roster, e, run[i:], res)
		if err != nil {
			return nil, err
		}
		if forked {
			if h, _ := s.Head(author); !h.Forked && i+1 < len(run) {
				// A revocation settled the fork (it names one branch):
				// the rest of the run may extend the settled feed.
				return s.ingestRun(run[i+1:], res)
			}
			return nil, nil
		}
		res.Rejected = append(res.Rejected, Rejection{Author: author, Seq: e.Header.Seq, ID: e.ID(),
			Err: fmt.Errorf("%w (conflicts with the held entry at this seq but is not vouched for by its author)", log.ErrInvalid)})
		// An invalid entry must not hide the valid ones after it.
	}
	rest, dups, fromWaiting := s.completeFromWaiting(author, run[i:])
	if len(dups) > 0 {
		defer func() { res.Duplicates += countNotIn(dups, res.Added) }()
	}
	if len(rest) == 0 {
		return nil, nil
	}
	// Several entries at one seq: keep the branch that validates furthest
	// (not the first to arrive), and look at the others once that branch
	// is held: duplicates, a fork, or invalid.
	var others []*log.Entry
	if compact := slices.CompactFunc(slices.Clone(rest), func(a, b *log.Entry) bool { return a.Header.Seq == b.Header.Seq }); len(compact) < len(rest) {
		rest, others = bestBranch(s.network, roster, head, rest)
	}
	n, err := log.CheckRun(s.network, roster, head, rest)
	if n > 0 {
		if werr := s.guard.room(fmt.Sprintf("storing %s of %s", entries(n), author.Short())); werr != nil {
			return nil, werr
		}
		// No provisional signature enters the feed: the composite of the
		// last entry (or of a successor) covers them, as in a group commit.
		covered := withoutProvisional(rest[:n])
		offences, werr := s.writeRun(covered)
		res.Charges = append(res.Charges, offences...)
		if werr != nil {
			return nil, werr
		}
		res.Added = append(res.Added, covered...)
	}
	if n > 0 && len(others) > 0 {
		// What completeFromWaiting added is no input: completed again
		// if still needed.
		again := slices.DeleteFunc(append(others, rest[n:]...), func(e *log.Entry) bool { return fromWaiting[e.ID()] })
		slices.SortStableFunc(again, func(a, b *log.Entry) int { return cmp.Compare(a.Header.Seq, b.Header.Seq) })
		if _, ferr := s.ingestRun(again, res); ferr != nil {
			return nil, ferr
		}
		return nil, nil
	}
	rest = append(rest, others...)
	if err == nil {
		return nil, nil
	}
	if log.ReasonOf(err) == log.ReasonUnknownAuthor && n == 0 {
		return rest, nil
	}
	// What no composite covers may be waiting for one; the rest is refused.
	return nil, s.holdOrReject(roster, author, rest[n:], err, res)
}

// withoutProvisional returns run with every provisional signature
// removed (the same entries).
func withoutProvisional(run []*log.Entry) []*log.Entry {
	out := make([]*log.Entry, len(run))
	for i, e := range run {
		out[i] = e
		if e.Provisional() {
			out[i] = e.Unsigned()
		}
	}
	return out
}

// countNotIn returns how many of ids no entry of es has.
func countNotIn(ids []log.Hash, es []*log.Entry) int {
	in := make(map[log.Hash]bool, len(es))
	for _, e := range es {
		in[e.ID()] = true
	}
	n := 0
	for _, id := range ids {
		if !in[id] {
			n++
		}
	}
	return n
}

// heldAsEvidence reports whether e is held as evidence.
func (s *Store) heldAsEvidence(e *log.Entry) (bool, error) {
	held := false
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(evidenceKey(e.Header.Author, e.Header.Seq, e.ID()))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		held = err == nil
		return err
	})
	return held, err
}

// idAt returns the ID of the held entry of author at seq (zero if none).
func (s *Store) idAt(author crypto.MemberID, seq uint64) (log.Hash, error) {
	var id log.Hash
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(feedKey(author, seq))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 32 {
				return fmt.Errorf("%w: feed index of %s at %d", ErrCorrupt, author.Short(), seq)
			}
			copy(id[:], v)
			return nil
		})
	})
	return id, err
}

// headAt returns the head an author's feed had at seq (zero head at 0).
func (s *Store) headAt(author crypto.MemberID, seq uint64) (log.Head, error) {
	if seq == 0 {
		return log.Head{}, nil
	}
	id, err := s.idAt(author, seq)
	if err != nil {
		return log.Head{}, err
	}
	e, err := s.Get(id)
	if err != nil {
		return log.Head{}, err
	}
	return log.Head{Seq: seq, ID: id, Lamport: e.Header.Lamport}, nil
}

// tryFork checks whether e, which conflicts with the held entry at its seq,
// is vouched for by its author (alone or by a signed successor in run). If
// so the fork is proven: both entries become evidence, the feed is cut
// back to the seq before the fork and frozen.
func (s *Store) tryFork(roster *crypto.Roster, e *log.Entry, run []*log.Entry, res *IngestResult) (bool, error) {
	author, seq := e.Header.Author, e.Header.Seq
	before, err := s.headAt(author, seq-1)
	if err != nil {
		return false, err
	}
	chain := chainFrom(e, run)
	n, _ := log.CheckRun(s.network, roster, before, chain)
	if n == 0 {
		return false, nil
	}
	heldID, err := s.idAt(author, seq)
	if err != nil {
		return false, err
	}
	held, err := s.Get(heldID)
	if err != nil {
		return false, err
	}
	fork := Fork{Author: author, Seq: seq, A: held, B: e}
	if err := s.guard.room("storing fork evidence"); err != nil {
		return false, err
	}
	// Keep the other branch as far as it is vouched for, so that the proof
	// can be passed on to nodes that have not seen the fork.
	if err := s.setAside(author, seq, withoutProvisional(chain[:n]), log.Head{Seq: before.Seq, ID: before.ID, Lamport: before.Lamport, Forked: true}); err != nil {
		return false, err
	}
	s.mu.Lock()
	s.forks = append(s.forks, fork)
	s.mu.Unlock()
	res.Forks = append(res.Forks, fork)
	name := author.Short()
	if m, ok := roster.Member(author); ok {
		name = m.Card.Name()
	}
	s.logger.Error("author forked its feed: two different signed entries at one seq; feed frozen",
		"author", name, "member_id", author.String(), "seq", seq, "held", held.ID().Short(), "other", e.ID().Short())
	if m, ok := roster.Member(author); ok && m.Revoked {
		// The revocation may settle the fork (it names one branch): the
		// feed must not depend on whether the fork or the revocation
		// came first.
		moved, err := s.settleRevoked(m)
		if err == nil && len(moved) > 0 {
			err = s.applyPlain(moved)
		}
		return true, err
	}
	return true, nil
}

// chainFrom returns e followed by the entries of run that chain to it, in
// seq order: the branch e starts, picked out of a run that may hold both.
func chainFrom(e *log.Entry, run []*log.Entry) []*log.Entry {
	chain := []*log.Entry{e}
	for _, c := range run {
		last := chain[len(chain)-1]
		if c.Header.Seq == last.Header.Seq+1 && c.Header.Prev == last.ID() {
			chain = append(chain, c)
		}
	}
	return chain
}

// setAside moves the author's held entries from seq on into evidence,
// stores extra as evidence too, and sets the author's head to newHead.
func (s *Store) setAside(author crypto.MemberID, seq uint64, extra []*log.Entry, newHead log.Head) error {
	held, err := s.Feed(author, seq-1, 0)
	if err != nil {
		return err
	}
	drop := s.waitingDrops(author, newHead)
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := deleteWaiting(txn, author, drop); err != nil {
			return err
		}
		for _, e := range held {
			id := e.ID()
			for _, k := range [][]byte{entryKey(id), feedKey(author, e.Header.Seq), orderKey(pOrder, e.Order()), orderKey(pPlain, e.Order())} {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			if err := txn.Set(evidenceKey(author, e.Header.Seq, id), e.Bytes()); err != nil {
				return err
			}
		}
		for _, e := range extra {
			if err := txn.Set(evidenceKey(author, e.Header.Seq, e.ID()), e.Bytes()); err != nil {
				return err
			}
		}
		return putHead(txn, author, newHead)
	})
	if err != nil {
		return fmt.Errorf("store: set aside entries of %s: %w", author.Short(), err)
	}
	s.mu.Lock()
	s.setHeadLocked(author, newHead)
	s.forgetWaitingLocked(author, drop)
	s.mu.Unlock()
	return nil
}

// putHead stores author's feed head, or deletes it when the feed is left
// empty (no entry and no fork).
func putHead(txn *badger.Txn, author crypto.MemberID, head log.Head) error {
	if head.Seq == 0 && !head.Forked {
		return txn.Delete(headKey(author))
	}
	return txn.Set(headKey(author), encodeHead(head))
}

// setHeadLocked moves author's head in the frontier and the digest to
// head, or drops author from both when its feed is left empty (no entry
// and no fork). s.mu must be held for writing.
func (s *Store) setHeadLocked(author crypto.MemberID, head log.Head) {
	old, had := s.frontier[author]
	if head.Seq == 0 && !head.Forked {
		delete(s.frontier, author)
		if had {
			s.digest.Sub(log.ItemHash(author, old))
		}
		return
	}
	s.frontier[author] = head
	s.digest.Move(author, old, had, head)
}

// bestBranch picks, among the branches of run that start at head's next
// seq, the one CheckRun accepts furthest (the first such on a tie); it
// returns that branch and the entries of run not on it.
func bestBranch(network crypto.NetworkID, roster *crypto.Roster, head log.Head, run []*log.Entry) (branch, others []*log.Entry) {
	best := -1
	for _, root := range run {
		if root.Header.Seq != head.Seq+1 {
			break
		}
		chain := chainFrom(root, run)
		n, _ := log.CheckRun(network, roster, head, chain)
		if n > best {
			best, branch = n, chain
		}
	}
	// chainFrom follows the first candidate at each seq; with candidates
	// deeper in the run (waiting ones among them) the chain that a
	// composite covers furthest may be another: follow the hash chain
	// back from each last entry. Only a chain with a composite signature
	// (or a revoked author's, which its revocation vouches for) can do
	// better than the first.
	m, _ := roster.Member(run[0].Header.Author)
	revoked := m != nil && m.Revoked
	byID, isPrev := map[log.Hash]*log.Entry{}, map[log.Hash]bool{}
	for _, e := range run {
		byID[e.ID()], isPrev[e.Header.Prev] = e, true
	}
	for _, leaf := range run {
		if isPrev[leaf.ID()] || branch == nil {
			continue
		}
		var chain []*log.Entry
		signed := false
		for e := leaf; e != nil; e = byID[e.Header.Prev] {
			chain, signed = append(chain, e), signed || e.Signed()
			if e.Header.Seq <= head.Seq+1 {
				break
			}
		}
		slices.Reverse(chain)
		if chain[0].Header.Seq != head.Seq+1 || !signed && !revoked {
			continue
		}
		if n, _ := log.CheckRun(network, roster, head, chain); n > best {
			best, branch = n, chain
		}
	}
	if branch == nil {
		return slices.CompactFunc(run, func(a, b *log.Entry) bool { return a.Header.Seq == b.Header.Seq }), nil
	}
	on := map[log.Hash]bool{}
	for _, e := range branch {
		on[e.ID()] = true
	}
	for _, e := range run {
		if !on[e.ID()] {
			others = append(others, e)
		}
	}
	return branch, others
}
