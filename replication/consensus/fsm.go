package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	gosync "sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// Raft entry types.
const (
	entryCommand = 1 // a crisis.SignedCommand
	entryRoster  = 2 // a crypto.ApprovedUpdate (an update with the approvals it needed)
)

type entryWire struct {
	Type    uint8  `cbor:"1,keyasint"`
	Payload []byte `cbor:"2,keyasint"`
	// Time is the submitting leader's clock (Config.Now), Unix
	// milliseconds; absent in entries of earlier versions, which use the
	// time hashicorp/raft stamps (AppendedAt, the leader's process clock).
	Time int64 `cbor:"3,keyasint,omitempty"`
}

// encodeEntry encodes a Raft entry stamped with time at (none if zero).
func encodeEntry(t uint8, payload []byte, at time.Time) ([]byte, error) {
	w := entryWire{Type: t, Payload: payload}
	if !at.IsZero() {
		w.Time = at.UnixMilli()
	}
	return crypto.MarshalCanonical(&w)
}

// entryTime is the committed time of a command entry: the time the leader
// stamped (AppendedAt for entries without one), but never earlier than
// the time of the last committed command, so that a leader whose clock is
// behind cannot move the crisis back in time. Every node computes it from
// the same entry and the same state, so they agree.
func entryTime(w *entryWire, l *raft.Log, last time.Time) time.Time {
	at := l.AppendedAt
	if w.Time != 0 {
		at = time.UnixMilli(w.Time).UTC()
	}
	if at.Before(last) {
		return last
	}
	return at
}

// An Outcome is what became of one command.
type Outcome struct {
	ID      crisis.ID
	Term    uint64
	Index   uint64
	Refused string // the refusal, or "" if committed
}

// maxOutcomes bounds the outcomes the FSM remembers.
const maxOutcomes = 1024

// fsm is the Raft state machine: the crisis state, the roster in Raft
// order, and recent outcomes. Raft calls Apply, Snapshot and Restore from
// one goroutine; readers take mu.
type fsm struct {
	genesis *crypto.Genesis

	mu       gosync.RWMutex
	state    crisis.State
	roster   *crypto.Roster
	updates  [][]byte // roster updates applied, in order
	outcomes []Outcome
	applied  uint64 // last applied index
	term     uint64
	notify   chan struct{} // signalled (non-blocking) after each apply
	// base is the state machine at the newest certified checkpoint it
	// verified against its own history (a fresh state machine at index 0
	// before any), cert that checkpoint with its votes (nil at index 0),
	// and tail every Raft entry applied since: a snapshot carries them so
	// that whoever restores it re-derives the state (see snapshot.go).
	base *fsm
	cert *checkpointWire
	tail []tailWire
	// legacy: the base is a snapshot of an earlier version read from
	// this node's own disk at start, without certificate or tail.
	legacy bool
	// started: Raft has started; a snapshot restored from now on comes
	// from a leader, never from this node's own disk.
	started bool
	// floor returns the roster this node holds now (the engine's store):
	// a snapshot's certificate must be a majority of its voters too (see
	// quorum). Nil in tests of the state machine alone.
	floor func() *crypto.Roster
}

// A histEntry is what a voter certifies of the state machine after one
// index.
type histEntry struct {
	index, term, roster uint64
	digest              [32]byte
}

// history returns what the state machine was after applying index: from
// the current state, or by replaying the tail since the base on a copy
// (votes are written about once a second, and the tail since the last
// certificate is short; computing a digest after every apply instead
// would cost the commit path a full encoding of the state each time).
func (f *fsm) history(index uint64) (histEntry, bool) {
	f.mu.RLock()
	if index == f.applied {
		w, err := f.certWireLocked()
		f.mu.RUnlock()
		if err != nil {
			return histEntry{}, false
		}
		return histEntry{index: w.Index, term: w.Term, roster: w.Roster, digest: [32]byte(w.Digest)}, true
	}
	base, tail := f.base, f.tail
	var scratch *fsm
	if base == nil {
		scratch = newFSM(f.genesis)
	} else {
		scratch = base.cloneLocked()
	}
	if index < scratch.applied || index > f.applied {
		f.mu.RUnlock()
		return histEntry{}, false
	}
	n := 0
	for n < len(tail) && tail[n].Index <= index {
		n++
	}
	tail = slices.Clone(tail[:n])
	f.mu.RUnlock()
	if scratch.replay(tail) != nil || scratch.applied != index {
		return histEntry{}, false // no Raft entry of ours at that index
	}
	w, err := scratch.certWireLocked()
	if err != nil {
		return histEntry{}, false
	}
	return histEntry{index: w.Index, term: w.Term, roster: w.Roster, digest: [32]byte(w.Digest)}, true
}

func newFSM(g *crypto.Genesis) *fsm {
	return &fsm{genesis: g, roster: g.Roster(), notify: make(chan struct{}, 1)}
}

// ApplyResult is what Apply returns to the proposer through Raft.
type ApplyResult struct {
	State crisis.State
	Term  uint64
	Index uint64
	Err   error // a *crisis.Refusal, or a roster refusal
}

func (f *fsm) Apply(l *raft.Log) any {
	var w entryWire
	res := &ApplyResult{Term: l.Term, Index: l.Index}
	err := crypto.UnmarshalCanonical(l.Data, &w)
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		f.applied, f.term = l.Index, l.Term
		f.tail = append(f.tail, tailWire{Index: l.Index, Term: l.Term, Data: bytes.Clone(l.Data), AppendedAt: l.AppendedAt.UnixNano()})
		res.State = f.state.Clone()
		select {
		case f.notify <- struct{}{}:
		default:
		}
	}()
	if err != nil {
		res.Err = fmt.Errorf("consensus: undecodable Raft entry %d: %w", l.Index, err)
		return res
	}
	switch w.Type {
	case entryCommand:
		sc, err := crisis.ParseSigned(w.Payload)
		if err != nil {
			res.Err = err
			return res
		}
		if o, known := f.outcomeLocked(sc.ID()); known && o.Refused != "" {
			// Refused before. A second copy (a proposal resubmitted by a
			// leader whose state machine had not applied the refusal yet)
			// must not be judged again against a state that has moved on:
			// the first outcome stands, refusals included. (The state's own
			// duplicate check knows only the commands it applied.)
			res.Err = &crisis.Refusal{Rule: crisis.RuleDuplicate,
				Detail: fmt.Sprintf("command %s was already refused at index %d: %s", sc.ID(), o.Index, o.Refused)}
			return res
		}
		at := entryTime(&w, l, f.state.Updated)
		next, err := crisis.Apply(f.state, sc, f.roster, crisis.Meta{Time: at, Term: l.Term, Index: l.Index})
		o := Outcome{ID: sc.ID(), Term: l.Term, Index: l.Index}
		if err != nil {
			res.Err = err
			o.Refused = err.Error()
			if errors.Is(err, crisis.ErrBadCall) {
				// A host bug (e.g. no entry time) must not split the state:
				// every node sees the same entry and refuses alike.
				o.Refused = "bad call: " + err.Error()
			}
		} else {
			f.state = next
		}
		var ref *crisis.Refusal
		if errors.As(err, &ref) && ref.Rule == crisis.RuleDuplicate {
			// A second copy of a command already decided (e.g. submitted
			// directly and again as a proposal): the first outcome stands.
			if _, known := f.outcomeLocked(sc.ID()); known {
				return res
			}
		}
		f.remember(o)
	case entryRoster:
		au, err := crypto.ParseApprovedUpdate(w.Payload)
		if err != nil {
			res.Err = err
			return res
		}
		next, err := f.roster.ApplyApprovedUpdate(au, 0)
		if err != nil {
			res.Err = err
			return res
		}
		f.roster = next
		f.updates = append(f.updates, w.Payload)
	default:
		res.Err = fmt.Errorf("consensus: unknown Raft entry type %d at %d", w.Type, l.Index)
	}
	return res
}

// remember records an outcome; the caller holds mu.
func (f *fsm) remember(o Outcome) {
	f.outcomes = append(f.outcomes, o)
	if len(f.outcomes) > maxOutcomes {
		f.outcomes = f.outcomes[len(f.outcomes)-maxOutcomes:]
	}
}

func (f *fsm) outcome(id crisis.ID) (Outcome, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.outcomeLocked(id)
}

// outcomeLocked finds the outcome of id; the caller holds mu.
func (f *fsm) outcomeLocked(id crisis.ID) (Outcome, bool) {
	for i := len(f.outcomes) - 1; i >= 0; i-- {
		if f.outcomes[i].ID == id {
			return f.outcomes[i], true
		}
	}
	return Outcome{}, false
}

type outcomeWire struct {
	ID      []byte `cbor:"1,keyasint"`
	Term    uint64 `cbor:"2,keyasint"`
	Index   uint64 `cbor:"3,keyasint"`
	Refused string `cbor:"4,keyasint,omitempty"`
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := io.Copy(sink, bytes.NewReader(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshot) Release() {}
