package consensus

import (
	"context"
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

// Checkpoints: what a checkpoint entry of the crisis log holds, and how
// this node writes one. How a node comes to believe one (votes, quorum
// certificates) is in certify.go.

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
	// Tail is every Raft entry the writer's state machine applied after
	// its snapshot base (the newest certified checkpoint it verified) up
	// to Index: each committed command with its member's signature, and
	// each roster update carried into Raft. Raft compacts its log; the
	// crisis log keeps these for the after-action archive, whose
	// verifier replays them from the genesis against the certified
	// digests (package replication/archive). Not part of the digest:
	// two voters' bases may differ, their states may not.
	Tail []tailWire `cbor:"10,keyasint,omitempty"`
}

// maxTail bounds the bytes of Raft entries a checkpoint carries (an
// entry is at most log.MaxEntrySize): beyond it, only the newest fit,
// and an archive relies on the other voters' tails or a Raft log.
const maxTail = 512 << 10

// tailUpTo returns the Raft entries applied after the base up to index,
// the newest maxTail bytes of them.
func (f *fsm) tailUpTo(index uint64) []tailWire {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for n < len(f.tail) && f.tail[n].Index <= index {
		n++
	}
	from, size := n, 0
	for from > 0 && size+len(f.tail[from-1].Data) <= maxTail {
		from--
		size += len(f.tail[from].Data)
	}
	return slices.Clone(f.tail[from:n])
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

// writeCheckpoint appends the committed state to the crisis log, with
// this voter's vote for it; the other voters add theirs (castVotes). It
// returns the index of the state written.
func (e *Engine) writeCheckpoint() (uint64, error) {
	w, err := e.fsm.checkpoint()
	if err != nil {
		return 0, err
	}
	w.Tail = e.fsm.tailUpTo(w.Index)
	if e.voterID() != (crypto.MemberID{}) {
		v, err := e.signStatement(w.Term, w.Index, w.Roster, [32]byte(w.Digest))
		if err != nil {
			return 0, err
		}
		w.Votes = []voteWire{v}
	}
	if err := e.appendCheckpoint(&w); err != nil {
		return 0, err
	}
	if len(w.Votes) > 0 {
		e.mu.Lock()
		e.lastVoted = max(e.lastVoted, w.Index)
		e.mu.Unlock()
	}
	return w.Index, nil
}

// appendCheckpoint writes a checkpoint entry (a checkpoint or a vote).
func (e *Engine) appendCheckpoint(w *checkpointWire) error {
	key, ok := e.sealKey()
	if !ok {
		return errors.New("no group key to seal the checkpoint")
	}
	payload, err := crypto.MarshalCanonical(w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = e.cfg.Store.Append(ctx, log.Draft{Body: log.Body{Kind: log.KindCheckpoint, TLP: log.TLPAmber, Payload: payload}, Key: key})
	return err
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
