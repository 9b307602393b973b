package consensus

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// Raft entries as the state machine decodes them: never a panic; what
// decodes re-encodes to the same bytes; an undecodable entry changes no
// state (every node refuses it alike).
func FuzzRaftEntry(f *testing.F) {
	c := newCast(f, 3)
	open := command(f, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindOpen, Title: "x", Level: 1})
	seed, _ := encodeEntry(entryCommand, open.Bytes(), t0)
	f.Add(seed)
	f.Add([]byte{0xa1, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newFSM(c.genesis)
		res := m.Apply(&raft.Log{Index: 1, Term: 1, Data: data, AppendedAt: t0}).(*ApplyResult)
		var w entryWire
		if err := crypto.UnmarshalCanonical(data, &w); err == nil {
			again, err := crypto.MarshalCanonical(&w)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatalf("decoded entry re-encodes differently: %x", again)
			}
		} else if res.Err == nil {
			t.Fatal("an undecodable entry applied without error")
		}
		if res.Err != nil && m.state.Status != crisis.StatusNone {
			t.Fatal("a refused entry changed the state")
		}
	})
}

// Snapshots from a leader: never a panic; a refused one changes nothing;
// an accepted one is exactly what re-applying its entries gives.
func FuzzSnapshotRestore(f *testing.F) {
	s := newSnapFixture(f)
	honest := snapshotBytes(f, s.f)
	f.Add(honest)
	if moved, _ := s.f.advanceBase(s.certAt7(f, "enisa", "cyclone-fr")); !moved {
		f.Fatal("no base")
	}
	f.Add(snapshotBytes(f, s.f))
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := started(s.c)
		if err := restore(r, data); err != nil {
			if r.applied != 0 || r.state.Status != crisis.StatusNone || r.base != nil {
				t.Fatalf("a refused snapshot changed the state machine: %v", err)
			}
			return
		}
		// Accepted: its state is the one its own entries give.
		again := started(s.c)
		if err := restore(again, snapshotBytes(t, r)); err != nil {
			t.Fatalf("the snapshot of a restored state machine is refused: %v", err)
		}
		a, _ := r.state.MarshalBinary()
		b, _ := again.state.MarshalBinary()
		if !bytes.Equal(a, b) || r.applied != again.applied {
			t.Fatal("restoring twice gives two states")
		}
	})
}

// Checkpoint payloads: never a panic; what decodes re-encodes to the same
// bytes; votes count only from voters whose signature verifies.
func FuzzCheckpointPayload(f *testing.F) {
	s := newSnapFixture(f)
	cert := s.certAt7(f, "enisa", "cyclone-fr")
	good, _ := crypto.MarshalCanonical(cert)
	f.Add(good)
	vote := *cert
	vote.State, vote.Outcomes, vote.Older, vote.Updates = nil, nil, nil, nil
	v, _ := crypto.MarshalCanonical(&vote)
	f.Add(v)
	f.Fuzz(func(t *testing.T, data []byte) {
		var w checkpointWire
		if err := crypto.UnmarshalCanonical(data, &w); err != nil {
			return
		}
		again, err := crypto.MarshalCanonical(&w)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded checkpoint re-encodes differently")
		}
		_ = w.digest()
		ids, _ := validVoters(s.c.genesis.NetworkID(), s.c.genesis.Roster(), &w)
		n := len(ids)
		if n > len(s.c.genesis.Roster().Voters()) {
			t.Fatalf("%d votes counted, %d voters", n, len(s.c.genesis.Roster().Voters()))
		}
		if !bytes.Equal(data, good) && n >= 2 && w.Index == cert.Index && !bytes.Equal(w.Digest, cert.Digest) {
			t.Fatal("votes for one digest counted for another")
		}
	})
}
