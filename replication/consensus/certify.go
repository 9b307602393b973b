package consensus

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// Checkpoint is a committed state a quorum of voters certified, learnt
// from the crisis log.
type Checkpoint struct {
	State    crisis.State
	Term     uint64
	Index    uint64
	Roster   uint64 // the roster version in force at Index
	Digest   [32]byte
	Outcomes []Outcome
	Author   crypto.MemberID // the voter whose entry carried the state
	Written  time.Time       // the author's clock
	Entry    log.Hash
	// Signers are the voters whose votes certify the state, in member-ID
	// order: a majority of the voters in force at Index.
	Signers []crypto.MemberID
	wire    checkpointWire // the state's part, to carry it in snapshots
	votes   []voteWire
}

// checkpointWire is the payload of a checkpoint entry. A voter's checkpoint
// carries the state (State, Outcomes) and its vote; a vote alone
// (State absent) names the checkpoint it agrees with by Digest.
type checkpointWire struct {
	State    []byte        `cbor:"1,keyasint,omitempty"`
	Term     uint64        `cbor:"2,keyasint"`
	Index    uint64        `cbor:"3,keyasint"`
	Outcomes []outcomeWire `cbor:"4,keyasint,omitempty"`
	Roster   uint64        `cbor:"5,keyasint,omitempty"`
	Digest   []byte        `cbor:"6,keyasint,omitempty"`
	// Older is the hash of the outcomes the state machine remembers
	// before Outcomes, Updates the hash of the roster updates it applied:
	// both are part of what a vote certifies (see digestOf).
	Older   []byte     `cbor:"7,keyasint,omitempty"`
	Updates []byte     `cbor:"8,keyasint,omitempty"`
	Votes   []voteWire `cbor:"9,keyasint,omitempty"`
}

// A voteWire is one voter's signature over a checkpoint's statement.
type voteWire struct {
	Voter []byte `cbor:"1,keyasint"`
	Sig   []byte `cbor:"2,keyasint"`
}

// statementWire is what a voter signs (context crypto.ContextCheckpoint):
// that the state machine of network, after applying Raft index Index of
// term Term under roster version Roster, holds the state whose digest is
// Digest.
type statementWire struct {
	Network []byte `cbor:"1,keyasint"`
	Term    uint64 `cbor:"2,keyasint"`
	Index   uint64 `cbor:"3,keyasint"`
	Roster  uint64 `cbor:"4,keyasint"`
	Digest  []byte `cbor:"5,keyasint"`
}

func statementBytes(network crypto.NetworkID, term, index, roster uint64, digest [32]byte) []byte {
	b, err := crypto.MarshalCanonical(&statementWire{Network: network[:], Term: term, Index: index, Roster: roster, Digest: digest[:]})
	if err != nil {
		panic(fmt.Sprintf("consensus: encode a statement: %v", err)) // fixed-shape struct: cannot fail
	}
	return b
}

type digestWire struct {
	State    []byte        `cbor:"1,keyasint"`
	Outcomes []outcomeWire `cbor:"2,keyasint,omitempty"`
	Older    []byte        `cbor:"3,keyasint,omitempty"`
	Updates  []byte        `cbor:"4,keyasint,omitempty"`
}

// digest is the hash a vote certifies: of the state, the recent outcomes,
// the older outcomes' hash and the roster updates' hash — everything that
// decides what the state machine does next.
func (w *checkpointWire) digest() [32]byte {
	b, err := crypto.MarshalCanonical(&digestWire{State: w.State, Outcomes: w.Outcomes, Older: w.Older, Updates: w.Updates})
	if err != nil {
		panic(fmt.Sprintf("consensus: encode a digest: %v", err))
	}
	return sha256.Sum256(b)
}

// checkpointOutcomes is how many of the newest outcomes a checkpoint
// carries in full.
const checkpointOutcomes = 64

// hashOutcomes hashes outcomes in a fixed layout (cheaper than CBOR: the
// state machine hashes up to maxOutcomes of them after every apply).
func hashOutcomes(os []Outcome) []byte {
	h := sha256.New()
	var n [8]byte
	for _, o := range os {
		h.Write(o.ID[:])
		binary.BigEndian.PutUint64(n[:], o.Term)
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], o.Index)
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(len(o.Refused)))
		h.Write(n[:])
		h.Write([]byte(o.Refused))
	}
	return h.Sum(nil)
}

func hashUpdates(us [][]byte) []byte {
	h := sha256.New()
	for _, u := range us {
		s := sha256.Sum256(u)
		h.Write(s[:])
	}
	return h.Sum(nil)
}

func outcomesWire(os []Outcome) []outcomeWire {
	var out []outcomeWire
	for _, o := range os {
		out = append(out, outcomeWire{ID: o.ID[:], Term: o.Term, Index: o.Index, Refused: o.Refused})
	}
	return out
}

func outcomesFromWire(ws []outcomeWire) ([]Outcome, error) {
	var out []Outcome
	for _, o := range ws {
		if len(o.ID) != len(crisis.ID{}) {
			return nil, errors.New("an outcome with a malformed command ID")
		}
		out = append(out, Outcome{ID: crisis.ID(o.ID), Term: o.Term, Index: o.Index, Refused: o.Refused})
	}
	return out, nil
}

// certWire returns what a checkpoint of the current state carries, with
// its digest; the caller holds f.mu (read).
func (f *fsm) certWireLocked() (checkpointWire, error) {
	st, err := f.state.MarshalBinary()
	if err != nil {
		return checkpointWire{}, err
	}
	split := max(0, len(f.outcomes)-checkpointOutcomes)
	w := checkpointWire{State: st, Term: f.term, Index: f.applied, Roster: f.roster.Version(),
		Outcomes: outcomesWire(f.outcomes[split:]), Older: hashOutcomes(f.outcomes[:split]), Updates: hashUpdates(f.updates)}
	d := w.digest()
	w.Digest = d[:]
	return w, nil
}

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
		cp.wire.Votes = nil
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
	e.fsm.mu.RLock()
	defer e.fsm.mu.RUnlock()
	if e.fsm.roster.IsVoter(me) {
		return me
	}
	return crypto.MemberID{}
}

// voteDue writes this voter's vote for every claimed state it has applied
// itself and found identical: same index, term, roster version and
// digest. A voter votes at most once per index, and only forwards.
//
// Only as many votes as a majority needs are written at once: the voters
// other than the checkpoint's author, in member-ID order, vote at once
// while their rank is below what is missing; the others hold back for
// holdBack and vote then only if the state is still not certified (a
// voter ahead of them is down or cut off). With 5 voters a round costs
// the checkpoint and 2 votes instead of 4, about 14 KB less on every link.
func (e *Engine) voteDue() {
	holdBack := 2 * e.cfg.CheckpointEvery
	e.mu.Lock()
	var due []ballotKey
	for k, since := range e.toVote {
		if k.index <= e.lastVoted {
			delete(e.toVote, k)
			continue
		}
		if b := e.ballots[k]; b != nil && b.cp != nil && time.Since(since) < holdBack && !e.voteNeededLocked(k, b) {
			continue // enough voters ahead of this one: wait
		}
		due = append(due, k)
	}
	e.mu.Unlock()
	slices.SortFunc(due, func(a, b ballotKey) int { return cmp.Compare(a.index, b.index) })
	for _, k := range due {
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
	w := checkpointWire{Term: term, Index: index, Roster: roster, Digest: digest[:], Votes: []voteWire{v}}
	if err := e.appendCheckpoint(&w); err != nil {
		return err
	}
	e.mu.Lock()
	e.lastVoted = max(e.lastVoted, index)
	e.mu.Unlock()
	return nil
}

// advanceBase hands the newest certified checkpoint to the state machine,
// which moves its snapshot base there once it has applied that index.
func (e *Engine) advanceBase() {
	e.mu.Lock()
	cp := e.checkpoint
	if cp == nil || cp.Index <= e.baseTried {
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.fsm.mu.RLock()
	done := e.fsm.cert != nil && e.fsm.cert.Index >= cp.Index
	behind := e.fsm.applied < cp.Index
	e.fsm.mu.RUnlock()
	if done || behind {
		return
	}
	e.mu.Lock()
	e.baseTried = cp.Index
	e.mu.Unlock()
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

// voteNeededLocked reports whether this voter is among the first voters
// (in member-ID order, the checkpoint's author left out) that a majority
// of the roster version's voters needs. The caller holds e.mu.
func (e *Engine) voteNeededLocked(k ballotKey, b *ballot) bool {
	roster, ok := e.rosterAt(k.roster)
	if !ok {
		return true
	}
	me := e.cfg.Identity.ID()
	voters := roster.Voters() // sorted by member ID
	need := len(voters)/2 + 1 - len(b.votes)
	rank := 0
	for _, v := range voters {
		if v == me {
			return rank < need
		}
		if _, voted := b.votes[v]; !voted && v != b.cp.Author {
			rank++
		}
	}
	return true
}

// DescribeCheckpoint says in words what a checkpoint entry's payload holds:
// a state with its votes, or one voter's vote.
func DescribeCheckpoint(payload []byte) string {
	var w checkpointWire
	if err := crypto.UnmarshalCanonical(payload, &w); err != nil {
		return "checkpoint (unreadable)"
	}
	if w.State == nil {
		return fmt.Sprintf("vote for the crisis state at index %d (term %d)", w.Index, w.Term)
	}
	return fmt.Sprintf("crisis state at index %d (term %d), with %d vote(s); believed once a majority of the voters signed it", w.Index, w.Term, len(w.Votes))
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

// CheckpointPayload encodes what a voter writes into a checkpoint entry:
// st as the state at index of term under roster version roster, and
// voter's vote for it (no outcomes). The engine writes its own from its
// state machine; this is for tools that write one from outside (the
// simulator plays a hostile voter with it). A state that no majority of
// the voters signs is never believed.
func CheckpointPayload(voter *crypto.Identity, network crypto.NetworkID, st crisis.State, term, index, roster uint64) ([]byte, error) {
	raw, err := st.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w := checkpointWire{State: raw, Term: term, Index: index, Roster: roster, Older: hashOutcomes(nil), Updates: hashUpdates(nil)}
	d := w.digest()
	w.Digest = d[:]
	sig, err := voter.Sign(crypto.ContextCheckpoint, statementBytes(network, term, index, roster, d))
	if err != nil {
		return nil, err
	}
	me := voter.ID()
	w.Votes = []voteWire{{Voter: me[:], Sig: sig}}
	return crypto.MarshalCanonical(&w)
}
