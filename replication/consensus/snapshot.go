package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// Snapshots
//
// A snapshot does not ask to be trusted. It carries the newest quorum
// certificate the state machine verified (the checkpoint with its votes,
// the outcomes and roster updates at its index) and every Raft entry
// applied after it (signed commands and admin-signed roster updates). The
// node that restores it checks the certificate, re-applies the entries
// itself, and installs the result only if it is the state the snapshot
// claims; otherwise Restore fails naming the rule, and Raft keeps the
// node where it was (the leader retries; nothing wrong is installed).
//
// Before any certificate, the base is the genesis state at index 0. A
// snapshot of an earlier version (state only) is accepted from this
// node's own disk at start, never from a leader.

// ErrSnapshotRefused is the class of every refused snapshot.
var ErrSnapshotRefused = errors.New("consensus: snapshot refused")

// The rules a snapshot is refused by.
const (
	RuleSnapshotMalformed   = "snapshot-malformed"
	RuleSnapshotUncertified = "snapshot-uncertified" // an earlier version's snapshot, from a leader
	RuleSnapshotCertificate = "snapshot-certificate" // the certificate does not verify
	RuleSnapshotTail        = "snapshot-tail"        // the entries after it do not follow it
	RuleSnapshotMismatch    = "snapshot-mismatch"    // the re-derived state is not the claimed one
)

func snapshotRefused(rule, format string, args ...any) error {
	return fmt.Errorf("%w (%s): %s", ErrSnapshotRefused, rule, fmt.Sprintf(format, args...))
}

type snapshotWire struct {
	State    []byte        `cbor:"1,keyasint"`
	Updates  [][]byte      `cbor:"2,keyasint,omitempty"`
	Outcomes []outcomeWire `cbor:"3,keyasint,omitempty"`
	// Applied and Term: the Raft index and term the state is at (a
	// restored member reports them before it applies anything new).
	Applied uint64 `cbor:"4,keyasint,omitempty"`
	Term    uint64 `cbor:"5,keyasint,omitempty"`
	// Derivable marks a snapshot of this version: Cert (absent: the
	// genesis at index 0), the outcomes and roster updates at the
	// certificate's index, and Tail, every Raft entry applied after it.
	Derivable    bool            `cbor:"6,keyasint,omitempty"`
	Cert         *checkpointWire `cbor:"7,keyasint,omitempty"`
	CertOutcomes []outcomeWire   `cbor:"8,keyasint,omitempty"`
	CertUpdates  [][]byte        `cbor:"9,keyasint,omitempty"`
	Tail         []tailWire      `cbor:"10,keyasint,omitempty"`
}

// tailWire is one applied Raft entry as the state machine saw it.
type tailWire struct {
	Index      uint64 `cbor:"1,keyasint"`
	Term       uint64 `cbor:"2,keyasint"`
	Data       []byte `cbor:"3,keyasint"`
	AppendedAt int64  `cbor:"4,keyasint,omitempty"` // Unix nanoseconds
}

func (t tailWire) log() *raft.Log {
	l := &raft.Log{Index: t.Index, Term: t.Term, Type: raft.LogCommand, Data: t.Data}
	if t.AppendedAt != 0 {
		l.AppendedAt = time.Unix(0, t.AppendedAt).UTC()
	}
	return l
}

// cloneLocked copies the machine part of f (state, roster, updates,
// outcomes, index): a scratch state machine to replay entries on. The
// caller holds f.mu (read).
func (f *fsm) cloneLocked() *fsm {
	c := newFSM(f.genesis)
	c.state, c.roster = f.state.Clone(), f.roster
	c.updates, c.outcomes = slices.Clone(f.updates), slices.Clone(f.outcomes)
	c.applied, c.term = f.applied, f.term
	return c
}

// replay applies entries after c's index to c, in order.
func (c *fsm) replay(tail []tailWire) error {
	for _, t := range tail {
		if t.Index <= c.applied {
			return snapshotRefused(RuleSnapshotTail, "entry %d does not follow index %d", t.Index, c.applied)
		}
		c.Apply(t.log())
	}
	return nil
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st, err := f.state.MarshalBinary()
	if err != nil {
		return nil, err
	}
	w := snapshotWire{State: st, Updates: slices.Clone(f.updates), Outcomes: outcomesWire(f.outcomes), Applied: f.applied, Term: f.term}
	if !f.legacy {
		w.Derivable, w.Cert, w.Tail = true, f.cert, f.tail
		if b := f.base; b != nil && f.cert != nil {
			w.CertOutcomes, w.CertUpdates = outcomesWire(b.outcomes), b.updates
		}
	}
	b, err := crypto.MarshalCanonical(&w)
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 256<<20))
	if err != nil {
		return err
	}
	var w snapshotWire
	if err := crypto.UnmarshalCanonical(b, &w); err != nil {
		return snapshotRefused(RuleSnapshotMalformed, "%v", err)
	}
	f.mu.RLock()
	started := f.started
	f.mu.RUnlock()
	if !w.Derivable {
		if started {
			return snapshotRefused(RuleSnapshotUncertified, "a snapshot without certificate and entries (an earlier version's) is read only from this node's own disk at start")
		}
		return f.restoreLegacy(&w)
	}
	base, err := f.certifiedBase(&w)
	if err != nil {
		return err
	}
	got := base.cloneLocked()
	if err := got.replay(w.Tail); err != nil {
		return err
	}
	claimed, err := f.claimed(&w)
	if err != nil {
		return err
	}
	gw, err := got.certWireLocked()
	if err != nil {
		return snapshotRefused(RuleSnapshotMalformed, "%v", err)
	}
	cw, err := claimed.certWireLocked()
	if err != nil {
		return snapshotRefused(RuleSnapshotMalformed, "%v", err)
	}
	if got.applied != w.Applied || got.term != w.Term || !bytes.Equal(gw.Digest, cw.Digest) {
		return snapshotRefused(RuleSnapshotMismatch, "re-applying the %d entries after the certified index %d gives another state (index %d term %d) than the snapshot claims (index %d term %d)",
			len(w.Tail), base.applied, got.applied, got.term, w.Applied, w.Term)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.roster, f.updates, f.outcomes = got.state, got.roster, got.updates, got.outcomes
	f.applied, f.term = got.applied, got.term
	f.base, f.cert, f.tail, f.legacy = base, w.Cert, slices.Clone(w.Tail), false
	return nil
}

// certifiedBase builds the state machine at the snapshot's certificate
// (the genesis at index 0 without one) and checks the certificate: the
// state, outcomes and roster updates hash to the digest a majority of the
// voters of that roster version signed.
func (f *fsm) certifiedBase(w *snapshotWire) (*fsm, error) {
	base := newFSM(f.genesis)
	c := w.Cert
	if c == nil {
		return base, nil
	}
	r, err := rosterAfter(f.genesis.Roster(), w.CertUpdates, RuleSnapshotCertificate)
	if err != nil {
		return nil, err
	}
	st, err := crisis.UnmarshalState(c.State)
	if err != nil {
		return nil, snapshotRefused(RuleSnapshotCertificate, "state: %v", err)
	}
	outs, err := outcomesFromWire(w.CertOutcomes)
	if err != nil {
		return nil, snapshotRefused(RuleSnapshotCertificate, "%v", err)
	}
	base.state, base.roster, base.updates, base.outcomes = st, r, w.CertUpdates, outs
	base.applied, base.term = c.Index, c.Term
	bw, err := base.certWireLocked()
	if err != nil {
		return nil, snapshotRefused(RuleSnapshotCertificate, "%v", err)
	}
	if len(c.Digest) != 32 || !bytes.Equal(bw.Digest, c.Digest) || bw.Roster != c.Roster {
		return nil, snapshotRefused(RuleSnapshotCertificate, "the state at index %d does not hash to the digest its votes sign", c.Index)
	}
	signers, err := validVoters(f.genesis.NetworkID(), r, c)
	if err != nil {
		return nil, err
	}
	var now *crypto.Roster
	if f.floor != nil {
		now = f.floor()
	}
	if !quorum(signers, r, now) {
		return nil, snapshotRefused(RuleSnapshotCertificate, "%d valid votes of voters for index %d: not a majority of the voters at roster version %d and of those this node knows now", len(signers), c.Index, c.Roster)
	}
	return base, nil
}

// validVoters returns the distinct voters of r whose votes in c verify.
func validVoters(network crypto.NetworkID, r *crypto.Roster, c *checkpointWire) ([]crypto.MemberID, error) {
	if len(c.Digest) != 32 {
		return nil, snapshotRefused(RuleSnapshotCertificate, "no digest")
	}
	stmt := statementBytes(network, c.Term, c.Index, c.Roster, [32]byte(c.Digest))
	seen := map[crypto.MemberID]bool{}
	var out []crypto.MemberID
	for _, v := range c.Votes {
		if len(v.Voter) != len(crypto.MemberID{}) {
			continue
		}
		id := crypto.MemberID(v.Voter)
		m, ok := r.Member(id)
		if seen[id] || !ok || !r.IsVoter(id) || m.Card.Verify(crypto.ContextCheckpoint, stmt, v.Sig) != nil {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// claimed is the state machine as the snapshot says it is.
func (f *fsm) claimed(w *snapshotWire) (*fsm, error) {
	c := newFSM(f.genesis)
	st, err := crisis.UnmarshalState(w.State)
	if err != nil {
		return nil, snapshotRefused(RuleSnapshotMalformed, "state: %v", err)
	}
	outs, err := outcomesFromWire(w.Outcomes)
	if err != nil {
		return nil, snapshotRefused(RuleSnapshotMalformed, "%v", err)
	}
	c.state, c.updates, c.outcomes, c.applied, c.term = st, w.Updates, outs, w.Applied, w.Term
	r, err := rosterAfter(f.genesis.Roster(), w.Updates, RuleSnapshotMalformed)
	if err != nil {
		return nil, err
	}
	c.roster = r
	return c, nil
}

// rosterAfter applies the approved roster updates a snapshot carries, in
// order, to r; a refusal names rule.
func rosterAfter(r *crypto.Roster, updates [][]byte, rule string) (*crypto.Roster, error) {
	for i, raw := range updates {
		u, err := crypto.ParseApprovedUpdate(raw)
		if err != nil {
			return nil, snapshotRefused(rule, "roster update %d: %v", i, err)
		}
		if r, err = r.ApplyApprovedUpdate(u, 0); err != nil {
			return nil, snapshotRefused(rule, "roster update %d: %v", i, err)
		}
	}
	return r, nil
}

// restoreLegacy installs an earlier version's snapshot from this node's
// own disk: it becomes the base, uncertified, until a certificate moves
// the base on (advanceBase); until then this node's own snapshots are of
// the earlier kind, which other nodes refuse.
func (f *fsm) restoreLegacy(w *snapshotWire) error {
	c, err := f.claimed(w)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.roster, f.updates, f.outcomes = c.state, c.roster, c.updates, c.outcomes
	f.applied, f.term = c.applied, c.term
	f.base, f.cert, f.tail, f.legacy = c.cloneLocked(), nil, nil, true
	return nil
}

// advanceBase moves the base to a certified checkpoint at or below the
// applied index whose state this state machine computed itself: it
// replays the tail up to the checkpoint's index on a copy of the base and
// keeps the result only if it hashes to the certified digest. The tail
// before it is dropped, so snapshots stay small. It reports whether the
// base moved, and whether the certified state contradicts the one this
// state machine computed at that index.
func (f *fsm) advanceBase(cert *checkpointWire) (moved, contradicts bool) {
	f.mu.RLock()
	base, tail, applied := f.base, slices.Clone(f.tail), f.applied
	f.mu.RUnlock()
	if cert == nil || cert.Index > applied || (base != nil && cert.Index <= base.applied) {
		return false, false
	}
	var next *fsm
	if base == nil {
		next = newFSM(f.genesis)
	} else {
		next = base.cloneLocked()
	}
	n := 0
	for n < len(tail) && tail[n].Index <= cert.Index {
		n++
	}
	if next.replay(tail[:n]) != nil {
		return false, false
	}
	nw, err := next.certWireLocked()
	if err != nil {
		return false, false
	}
	if next.applied != cert.Index || !bytes.Equal(nw.Digest, cert.Digest) {
		return false, true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.base != base {
		return false, false // moved meanwhile (a restore): try with the next certificate
	}
	f.base, f.cert, f.legacy = next, cert, false
	f.tail = slices.Clone(f.tail[n:])
	return true, false
}
