package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// Offline use: what a tool with no running engine (replication/archive's
// verifier) needs to check checkpoints and replay committed commands,
// with the very code the engine uses. All of it is pure.

// A Claim is a checkpoint entry's payload as read from outside the
// engine: a claimed state (State set: the checkpoint a voter wrote) or a
// vote for one (State nil), with the votes it carries.
type Claim struct {
	Term, Index, Roster uint64
	Digest              [32]byte
	State               []byte // the encoded crisis.State, nil in a vote
	Votes               []Vote
	// Tail is what the writer's state machine applied after its snapshot
	// base up to Index (see checkpointWire), in index order.
	Tail []Committed
}

// A Vote is one voter's signature over a claim's statement.
type Vote struct {
	Voter crypto.MemberID
	Sig   []byte
}

// ErrClaim is the class of checkpoint payloads ParseClaim refuses.
var ErrClaim = errors.New("consensus: checkpoint payload")

// ParseClaim decodes a checkpoint entry's payload and checks that the
// state it carries, if any, hashes to the digest its votes sign. It does
// not check the votes: see [Claim.VerifyVote].
func ParseClaim(payload []byte) (Claim, error) {
	var w checkpointWire
	if err := crypto.UnmarshalCanonical(payload, &w); err != nil || len(w.Digest) != 32 {
		return Claim{}, fmt.Errorf("%w: %w", ErrClaim, errCheckpointMalformed)
	}
	c := Claim{Term: w.Term, Index: w.Index, Roster: w.Roster, Digest: [32]byte(w.Digest), State: w.State}
	if w.State != nil {
		if w.digest() != c.Digest {
			return Claim{}, fmt.Errorf("%w: %w", ErrClaim, errCheckpointDigest)
		}
		if _, err := crisis.UnmarshalState(w.State); err != nil {
			return Claim{}, fmt.Errorf("%w: %w: %w", ErrClaim, errCheckpointMalformed, err)
		}
	}
	for _, t := range w.Tail {
		if t.Index > c.Index || len(c.Tail) > 0 && t.Index <= c.Tail[len(c.Tail)-1].Index {
			return Claim{}, fmt.Errorf("%w: %w: its Raft entries are not in index order up to %d", ErrClaim, errCheckpointMalformed, c.Index)
		}
		c.Tail = append(c.Tail, Committed{Index: t.Index, Term: t.Term, Data: t.Data, AppendedAt: t.log().AppendedAt})
	}
	for _, v := range w.Votes {
		if len(v.Voter) != len(crypto.MemberID{}) {
			return Claim{}, fmt.Errorf("%w: %w", ErrClaim, errCheckpointMalformed)
		}
		c.Votes = append(c.Votes, Vote{Voter: crypto.MemberID(v.Voter), Sig: v.Sig})
	}
	return c, nil
}

// VerifyVote checks v against roster, the roster of the version the claim
// names: the voter must be one of its voters and the signature its
// signature over the claim's statement for network.
func (c Claim) VerifyVote(network crypto.NetworkID, v Vote, roster *crypto.Roster) error {
	m, ok := roster.Member(v.Voter)
	if !ok || !roster.IsVoter(v.Voter) {
		return fmt.Errorf("%w: %s is no voter at roster version %d", errCheckpointForged, v.Voter.Short(), roster.Version())
	}
	if err := m.Card.Verify(crypto.ContextCheckpoint, statementBytes(network, c.Term, c.Index, c.Roster, c.Digest), v.Sig); err != nil {
		return fmt.Errorf("%w: %w", errCheckpointForged, err)
	}
	return nil
}

// Certifies reports whether signers (voters whose votes verified) are a
// majority of the voters of at, the roster version a claim names.
func Certifies(signers []crypto.MemberID, at *crypto.Roster) bool {
	return quorum(signers, at, nil)
}

// A Committed is one Raft command entry as the state machine applies it:
// its index, term, data (a command or a roster update, stamped with the
// leader's clock) and hashicorp/raft's AppendedAt.
type Committed struct {
	Index, Term uint64
	Data        []byte
	AppendedAt  time.Time
}

// Command returns the signed command c carries, or nil for a roster
// update; an error if c's data is not a Raft entry of ours.
func (c Committed) Command() (*crisis.SignedCommand, error) {
	var w entryWire
	if err := crypto.UnmarshalCanonical(c.Data, &w); err != nil {
		return nil, fmt.Errorf("consensus: Raft entry %d: %w", c.Index, err)
	}
	switch w.Type {
	case entryCommand:
		return crisis.ParseSigned(w.Payload)
	case entryRoster:
		return nil, nil
	}
	return nil, fmt.Errorf("consensus: unknown Raft entry type %d at %d", w.Type, c.Index)
}

// Stamped returns the time the leader stamped into c (AppendedAt for
// entries of earlier versions). The committed time is never earlier than
// the previous command's (see the package doc, Clocks).
func (c Committed) Stamped() time.Time {
	var w entryWire
	if crypto.UnmarshalCanonical(c.Data, &w) == nil && w.Time != 0 {
		return time.UnixMilli(w.Time).UTC()
	}
	return c.AppendedAt
}

// A Replayer is a state machine of its own that replays committed Raft
// entries from the genesis, as every node's state machine applied them,
// and says after each what a voter would certify. It is not safe for
// concurrent use.
type Replayer struct{ f *fsm }

// NewReplayer starts a state machine at the genesis (index 0).
func NewReplayer(g *crypto.Genesis) *Replayer { return &Replayer{f: newFSM(g)} }

// Apply applies c, which must follow the last index applied, and returns
// the refusal of a refused command (nil if it was applied).
func (r *Replayer) Apply(c Committed) (refusal error, err error) {
	if c.Index <= r.f.applied {
		return nil, fmt.Errorf("consensus: Raft entry %d does not follow index %d", c.Index, r.f.applied)
	}
	l := &raft.Log{Index: c.Index, Term: c.Term, Type: raft.LogCommand, Data: c.Data, AppendedAt: c.AppendedAt}
	res := r.f.Apply(l).(*ApplyResult)
	return res.Err, nil
}

// Clone returns a copy to try entries on.
func (r *Replayer) Clone() *Replayer {
	r.f.mu.RLock()
	defer r.f.mu.RUnlock()
	return &Replayer{f: r.f.cloneLocked()}
}

// Applied returns the last index applied.
func (r *Replayer) Applied() uint64 { return r.f.status().applied }

// Claim returns what a voter would sign after the last entry applied:
// term, index, roster version and digest (State set; no votes).
func (r *Replayer) Claim() (Claim, error) {
	w, err := r.f.checkpoint()
	if err != nil {
		return Claim{}, err
	}
	return Claim{Term: w.Term, Index: w.Index, Roster: w.Roster, Digest: [32]byte(w.Digest), State: w.State}, nil
}

// State returns the replayed crisis state and the roster in force.
func (r *Replayer) State() (crisis.State, *crypto.Roster) {
	cur := r.f.current(0)
	return cur.state, r.f.status().roster
}

// SameStatement reports whether a and b claim the same state at the same
// place: index, term, roster version and digest.
func SameStatement(a, b Claim) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Roster == b.Roster && bytes.Equal(a.Digest[:], b.Digest[:])
}

// Committed returns the command entries of the Raft log this node
// applied, in index order, as far back as the log still holds them (a
// snapshot compacts older ones away), and the first index the log holds.
func (e *Engine) Committed() ([]Committed, uint64, error) {
	first, err := e.logs.FirstIndex()
	if err != nil {
		return nil, 0, fmt.Errorf("consensus: Raft log: %w", err)
	}
	applied := e.fsm.status().applied
	var out []Committed
	for i := max(first, 1); i <= applied; i++ {
		var l raft.Log
		if err := e.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue // compacted meanwhile
			}
			return nil, first, fmt.Errorf("consensus: Raft log entry %d: %w", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		out = append(out, Committed{Index: l.Index, Term: l.Term, Data: l.Data, AppendedAt: l.AppendedAt})
	}
	return out, first, nil
}
