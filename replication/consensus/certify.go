package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// A ballotKey names one claimed state: the index and its digest.
type ballotKey struct {
	index, term, roster uint64
	digest              [32]byte
}

// A ballot gathers the votes seen for one claimed state until a majority
// of the voters certifies it.
type ballot struct {
	votes map[crypto.MemberID][]byte // verified signatures
	cp    *Checkpoint                // the state, once an entry carrying it is seen
}

// maxBallots bounds the claimed states a node keeps votes for: a hostile
// voter can claim many, but only the newest few can matter.
const maxBallots = 64

// OffenceCheckpoint is the offence (store.NoteOffence) of a checkpoint
// entry no honest voter writes: a forged vote, a vote of a non-voter, a
// state that does not hash to the digest its votes sign, a malformed
// payload.
const OffenceCheckpoint = "checkpoint"

// Rules a checkpoint entry is ignored by. They are logged; a checkpoint
// that breaks one is never believed.
var (
	// errCheckpointForged: a vote in the entry is not what the voter it
	// names signed, or names a member that was no voter: no honest author
	// writes that, so it is an offence of the entry's author.
	errCheckpointForged    = errors.New("checkpoint: a vote it carries is forged or not a voter's")
	errCheckpointMalformed = errors.New("checkpoint: malformed")
	errCheckpointDigest    = errors.New("checkpoint: the state does not hash to the digest its votes sign")
	errCheckpointStale     = errors.New("checkpoint: not newer than the certified state this node holds")
	errCheckpointRoster    = errors.New("checkpoint: this node does not hold the roster version its votes name yet")
)

// observeCheckpoint takes note of a checkpoint entry: it verifies the
// votes it carries against the voters in force at the roster version it
// names, adds them to the ballot of the claimed state, and believes the
// state once a majority of those voters signed it. Votes of members that
// are not voters at that version, or that are revoked or rotated now, do
// not count. A certified state older than the one held changes nothing.
func (e *Engine) observeCheckpoint(en *log.Entry, payload []byte) (err error) {
	var w checkpointWire
	if err := crypto.UnmarshalCanonical(payload, &w); err != nil || len(w.Digest) != 32 {
		return errCheckpointMalformed
	}
	key := ballotKey{index: w.Index, term: w.Term, roster: w.Roster, digest: [32]byte(w.Digest)}
	var cp *Checkpoint
	if w.State != nil {
		if w.digest() != key.digest {
			return errCheckpointDigest
		}
		st, err := crisis.UnmarshalState(w.State)
		if err != nil {
			return fmt.Errorf("%w: %v", errCheckpointMalformed, err)
		}
		outs, err := outcomesFromWire(w.Outcomes)
		if err != nil {
			return fmt.Errorf("%w: %v", errCheckpointMalformed, err)
		}
		cp = &Checkpoint{State: st, Term: w.Term, Index: w.Index, Roster: w.Roster, Digest: key.digest, Outcomes: outs,
			Author: en.Header.Author, Written: time.UnixMilli(en.Header.Time), Entry: en.ID(), wire: w}
		cp.wire.Votes, cp.wire.Tail = nil, nil
	}
	e.mu.Lock()
	if c := e.checkpoint; c != nil && w.Index <= c.Index {
		e.mu.Unlock()
		return errCheckpointStale
	}
	e.mu.Unlock()
	roster, ok := e.rosterAt(w.Roster)
	if !ok {
		return errCheckpointRoster
	}
	now := e.cfg.Store.Roster()
	stmt := statementBytes(e.cfg.Store.Network(), w.Term, w.Index, w.Roster, key.digest)
	verified := map[crypto.MemberID][]byte{}
	var forged error
	for _, v := range w.Votes {
		if len(v.Voter) != len(crypto.MemberID{}) {
			forged = errCheckpointForged
			continue
		}
		id := crypto.MemberID(v.Voter)
		m, ok := roster.Member(id)
		if !ok || !roster.IsVoter(id) {
			forged = errCheckpointForged
			continue
		}
		if !now.Active(id) || e.knownVote(key, id) {
			continue // revoked or rotated since (no offence), or counted
		}
		if m.Card.Verify(crypto.ContextCheckpoint, stmt, v.Sig) != nil {
			forged = errCheckpointForged
			continue
		}
		verified[id] = v.Sig
	}
	if forged != nil {
		// The honest votes among them still count.
		defer func() {
			if err == nil {
				err = forged
			}
		}()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.ballots[key]
	if b == nil {
		if len(verified) == 0 && cp == nil {
			return nil
		}
		b = &ballot{votes: map[crypto.MemberID][]byte{}}
		e.ballots[key] = b
		e.pruneBallotsLocked()
	}
	for id, sig := range verified {
		b.votes[id] = sig
	}
	if cp != nil && b.cp == nil {
		b.cp = cp
	}
	if b.cp != nil && e.voterID() != (crypto.MemberID{}) && b.cp.Index > e.lastVoted {
		if _, ok := e.toVote[key]; !ok {
			e.toVote[key] = time.Now()
		}
	}
	signers := make([]crypto.MemberID, 0, len(b.votes))
	for id := range b.votes {
		signers = append(signers, id)
	}
	if b.cp == nil || !quorum(signers, roster, now) {
		return nil
	}
	if c := e.checkpoint; c != nil && b.cp.Index <= c.Index {
		return nil
	}
	cert := *b.cp
	cert.Signers = nil
	cert.votes = nil
	for id, sig := range b.votes {
		cert.Signers = append(cert.Signers, id)
		cert.votes = append(cert.votes, voteWire{Voter: bytes.Clone(id[:]), Sig: sig})
	}
	slices.SortFunc(cert.Signers, func(a, b crypto.MemberID) int { return bytes.Compare(a[:], b[:]) })
	slices.SortFunc(cert.votes, func(a, b voteWire) int { return bytes.Compare(a.Voter, b.Voter) })
	e.checkpoint = &cert
	for k := range e.ballots {
		if k.index <= cert.Index {
			delete(e.ballots, k)
		}
	}
	return nil
}

// knownVote reports whether id's vote for key was verified already.
func (e *Engine) knownVote(key ballotKey, id crypto.MemberID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.ballots[key]
	if b == nil {
		return false
	}
	_, ok := b.votes[id]
	return ok
}

// pruneBallotsLocked drops the oldest ballots beyond maxBallots.
func (e *Engine) pruneBallotsLocked() {
	for len(e.ballots) > maxBallots {
		var low *ballotKey
		for k := range e.ballots {
			if low == nil || k.index < low.index {
				k := k
				low = &k
			}
		}
		delete(e.ballots, *low)
		delete(e.toVote, *low)
	}
}

// rosterAt returns the roster at version v, from the genesis and the
// roster updates the store holds; false if this node does not hold
// version v yet.
func (e *Engine) rosterAt(v uint64) (*crypto.Roster, bool) {
	r := e.cfg.Genesis.Roster()
	if r.Version() == v {
		return r, true
	}
	updates, err := e.cfg.Store.RosterUpdates()
	if err != nil {
		return nil, false
	}
	for _, u := range updates {
		next, err := r.ApplyApprovedUpdate(u, 0)
		if err != nil {
			return nil, false
		}
		r = next
		if r.Version() == v {
			return r, true
		}
	}
	return nil, false
}

// voterID returns this node's member ID if it is a voter now, else zero.
func (e *Engine) voterID() crypto.MemberID {
	me := e.cfg.Identity.ID()
	if e.fsm.status().roster.IsVoter(me) {
		return me
	}
	return crypto.MemberID{}
}

// castVotes writes this voter's vote for each claim of keys (in index
// order, as the duties step chose them: see leader.go) that it has
// applied itself and found identical: same index, term, roster version
// and digest. A claim it has not applied yet stays noted (it may later);
// any other is forgotten. A voter votes at most once per index, and only
// forwards.
//
// Only as many votes as a majority needs are written at once: the voters
// other than the checkpoint's author, in member-ID order, vote at once
// while their rank is below what is missing; the others hold back and
// vote then only if the state is still not certified (a voter ahead of
// them is down or cut off). With 5 voters a round costs the checkpoint
// and 2 votes instead of 4, about 14 KB less on every link.
func (e *Engine) castVotes(keys []ballotKey) {
	for _, k := range keys {
		h, ok := e.fsm.history(k.index)
		if !ok {
			continue // not applied here yet (or too long ago): wait, or never
		}
		e.mu.Lock()
		b := e.ballots[k]
		delete(e.toVote, k)
		e.mu.Unlock()
		if b == nil || h.digest != k.digest || h.term != k.term || h.roster != k.roster {
			continue // not the state this node applied at that index: no vote
		}
		if err := e.writeVote(k.index, k.term, k.roster, k.digest); err != nil {
			e.logger.Warn("checkpoint vote not written", "index", k.index, "err", err)
		}
	}
}

// forgetVotes drops claims this voter will never vote for.
func (e *Engine) forgetVotes(keys []ballotKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range keys {
		delete(e.toVote, k)
	}
}

// voteCandidates lists the claims noted to vote for, with what the
// duties step needs to rank this voter among the others (see
// voteNeeded), and the highest index this voter voted for.
func (e *Engine) voteCandidates() ([]voteCandidate, uint64) {
	e.mu.Lock()
	cs := make([]voteCandidate, 0, len(e.toVote))
	for k, since := range e.toVote {
		c := voteCandidate{key: k, since: since}
		if b := e.ballots[k]; b != nil && b.cp != nil {
			c.state, c.author = true, b.cp.Author
			for id := range b.votes {
				c.voted = append(c.voted, id)
			}
		}
		cs = append(cs, c)
	}
	lastVoted := e.lastVoted
	e.mu.Unlock()
	// The rosters are read outside e.mu (from the store).
	voters := map[uint64][]crypto.MemberID{}
	for i, c := range cs {
		if !c.state {
			continue
		}
		vs, ok := voters[c.key.roster]
		if !ok {
			if r, held := e.rosterAt(c.key.roster); held {
				vs = r.Voters() // sorted by member ID
			}
			voters[c.key.roster] = vs
		}
		cs[i].voters = vs
	}
	return cs, lastVoted
}

// signStatement signs a checkpoint statement with this node's key.
func (e *Engine) signStatement(term, index, roster uint64, digest [32]byte) (voteWire, error) {
	sig, err := e.cfg.Identity.Sign(crypto.ContextCheckpoint, statementBytes(e.cfg.Store.Network(), term, index, roster, digest))
	if err != nil {
		return voteWire{}, err
	}
	me := e.cfg.Identity.ID()
	return voteWire{Voter: me[:], Sig: sig}, nil
}

// writeVote appends a vote (a checkpoint entry without the state).
func (e *Engine) writeVote(index, term, roster uint64, digest [32]byte) error {
	v, err := e.signStatement(term, index, roster, digest)
	if err != nil {
		return err
	}
	w := checkpointWire{Term: term, Index: index, Roster: roster, Digest: digest[:], Votes: []voteWire{v}, Tail: e.fsm.tailUpTo(index)}
	if err := e.appendCheckpoint(&w); err != nil {
		return err
	}
	e.mu.Lock()
	e.lastVoted = max(e.lastVoted, index)
	e.mu.Unlock()
	return nil
}

// advanceBase hands the certified checkpoint cp to the state machine,
// which moves its snapshot base there (the duties step chose it: see
// leader.go); a state machine that computed another state at that index
// makes this node report that it diverged.
func (e *Engine) advanceBase(cp *Checkpoint) {
	w := cp.wire
	w.Votes = cp.votes
	if _, contradicts := e.fsm.advanceBase(&w); contradicts {
		e.mu.Lock()
		e.diverged = cp.Index
		e.mu.Unlock()
		e.logger.Error("a majority of the voters certified another state than this node applied at the same index: its Raft log came from a faulty or hostile leader; it shows the certified state until it is repaired (restore from a snapshot of an honest voter)",
			"index", cp.Index, "signers", len(cp.Signers))
	}
}

// quorum reports whether signers (whose votes verified) are a majority of
// the voters of at, the roster version a checkpoint names, and also of
// now, the roster this node holds: a checkpoint cannot name an old roster
// version with fewer voters (one, say) to make one vote a majority. For
// now, only voters that are active in it count. When the voters change, a
// certificate of the old set is believed again once the new set signs
// one: a delay of one checkpoint round, never a wrong state.
func quorum(signers []crypto.MemberID, at, now *crypto.Roster) bool {
	inAt, inNow := 0, 0
	for _, id := range signers {
		if at.IsVoter(id) {
			inAt++
		}
		if now != nil && now.IsVoter(id) && now.Active(id) {
			inNow++
		}
	}
	if inAt < len(at.Voters())/2+1 {
		return false
	}
	return now == nil || inNow >= len(now.Voters())/2+1
}
