package consensus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// snapFixture is a state machine that applied open (index 7) and advise
// (index 8), and its raw entries.
type snapFixture struct {
	c    *cast
	f    *fsm
	logs []*raft.Log
}

func newSnapFixture(t testing.TB) *snapFixture {
	t.Helper()
	c := newCast(t, 3)
	f := newFSM(c.genesis)
	net := c.genesis.NetworkID()
	open := command(t, c.byName["cert-lu"], net, crisis.Command{Kind: crisis.KindOpen, Title: "x", Level: 1})
	var logs []*raft.Log
	for i, sc := range []*crisis.SignedCommand{open} {
		data, _ := encodeEntry(entryCommand, sc.Bytes(), t0.Add(time.Duration(i)*time.Second))
		logs = append(logs, &raft.Log{Index: uint64(i + 7), Term: 2, Data: data})
	}
	for _, l := range logs {
		if res := f.Apply(l).(*ApplyResult); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	adv := command(t, c.byName["cert-lu"], net, crisis.Command{Kind: crisis.KindAdviseLevel2, Crisis: f.state.Crisis})
	data, _ := encodeEntry(entryCommand, adv.Bytes(), t0.Add(time.Minute))
	l := &raft.Log{Index: 8, Term: 2, Data: data}
	if res := f.Apply(l).(*ApplyResult); res.Err != nil {
		t.Fatal(res.Err)
	}
	return &snapFixture{c: c, f: f, logs: append(logs, l)}
}

// certAt returns a certificate for the fixture's state at index 7 with the
// votes of the named members.
func (s *snapFixture) certAt7(t testing.TB, voters ...string) *checkpointWire {
	t.Helper()
	g := newFSM(s.c.genesis)
	if res := g.Apply(s.logs[0]).(*ApplyResult); res.Err != nil {
		t.Fatal(res.Err)
	}
	w, err := g.certWireLocked()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range voters {
		id := s.c.byName[name]
		sig, err := id.Sign(crypto.ContextCheckpoint, statementBytes(s.c.genesis.NetworkID(), w.Term, w.Index, w.Roster, [32]byte(w.Digest)))
		if err != nil {
			t.Fatal(err)
		}
		w.Votes = append(w.Votes, voteWire{Voter: idBytes(id.ID()), Sig: sig})
	}
	return &w
}

func snapshotBytes(t testing.TB, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&sink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// started is a state machine as a running node has it: a snapshot
// restored now comes from a leader.
func started(c *cast) *fsm {
	f := newFSM(c.genesis)
	f.started = true
	return f
}

func restore(f *fsm, b []byte) error { return f.Restore(io.NopCloser(bytes.NewReader(b))) }

// A snapshot is re-derived by whoever restores it: from the certificate
// the state machine verified and the entries after it.
func TestSnapshotReDerived(t *testing.T) {
	s := newSnapFixture(t)
	if moved, _ := s.f.advanceBase(s.certAt7(t, "enisa", "cyclone-fr")); !moved {
		t.Fatal("a certificate of the state at index 7 did not move the base")
	}
	if len(s.f.tail) != 1 || s.f.tail[0].Index != 8 {
		t.Fatalf("tail after the certificate: %d entries", len(s.f.tail))
	}
	r := started(s.c)
	if err := restore(r, snapshotBytes(t, s.f)); err != nil {
		t.Fatalf("an honest snapshot was refused: %v", err)
	}
	want, _ := s.f.state.MarshalBinary()
	got, _ := r.state.MarshalBinary()
	if !bytes.Equal(want, got) || r.applied != 8 || r.state.Level != 2 {
		t.Errorf("restored: level %d at index %d", r.state.Level, r.applied)
	}
	// And before any certificate: from the genesis.
	s2 := newSnapFixture(t)
	r2 := started(s2.c)
	if err := restore(r2, snapshotBytes(t, s2.f)); err != nil || r2.state.Level != 2 {
		t.Errorf("snapshot without certificate: %v, level %d", err, r2.state.Level)
	}
}

// Finding 1 of issue 11, snapshots: a leader could install any state with
// a snapshot. Each way of lying is refused by its rule and changes
// nothing.
func TestForgedSnapshotRefused(t *testing.T) {
	cases := []struct {
		name   string
		rule   string
		forge  func(t *testing.T, s *snapFixture, w *snapshotWire)
		legacy bool
	}{
		{"claimed state differs", RuleSnapshotMismatch, func(t *testing.T, s *snapFixture, w *snapshotWire) {
			st := s.f.state.Clone()
			st.Status = crisis.StatusClosed
			w.State, _ = st.MarshalBinary()
		}, false},
		{"an entry left out", RuleSnapshotMismatch, func(t *testing.T, s *snapFixture, w *snapshotWire) {
			w.Tail = w.Tail[:len(w.Tail)-1]
		}, false},
		{"entries out of order", RuleSnapshotTail, func(t *testing.T, s *snapFixture, w *snapshotWire) {
			w.Tail = append(w.Tail, w.Tail[0])
		}, false},
		{"one vote", RuleSnapshotCertificate, func(t *testing.T, s *snapFixture, w *snapshotWire) {
			w.Cert = s.certAt7(t, "enisa")
		}, false},
		{"a non-voter's vote", RuleSnapshotCertificate, func(t *testing.T, s *snapFixture, w *snapshotWire) {
			w.Cert = s.certAt7(t, "enisa", "cert-lu")
		}, false},
		{"the certified state altered", RuleSnapshotCertificate, func(t *testing.T, s *snapFixture, w *snapshotWire) {
			st, _ := crisis.UnmarshalState(w.Cert.State)
			st.Level = 4
			w.Cert.State, _ = st.MarshalBinary()
		}, false},
		{"an earlier version's snapshot from a leader", RuleSnapshotUncertified, func(t *testing.T, s *snapFixture, w *snapshotWire) {
			st := s.f.state.Clone()
			st.Status = crisis.StatusClosed
			w.State, _ = st.MarshalBinary()
			w.Derivable, w.Cert, w.Tail, w.CertOutcomes, w.CertUpdates = false, nil, nil, nil, nil
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSnapFixture(t)
			if moved, _ := s.f.advanceBase(s.certAt7(t, "enisa", "cyclone-fr")); !moved {
				t.Fatal("no base")
			}
			var w snapshotWire
			if err := crypto.UnmarshalCanonical(snapshotBytes(t, s.f), &w); err != nil {
				t.Fatal(err)
			}
			tc.forge(t, s, &w)
			b, err := crypto.MarshalCanonical(&w)
			if err != nil {
				t.Fatal(err)
			}
			r := started(s.c)
			err = restore(r, b)
			if !errors.Is(err, ErrSnapshotRefused) || !strings.Contains(err.Error(), "("+tc.rule+")") {
				t.Fatalf("got %v, want a refusal by rule %s", err, tc.rule)
			}
			if r.applied != 0 || r.state.Status != 0 {
				t.Errorf("a refused snapshot changed the state machine: index %d", r.applied)
			}
			if tc.legacy {
				// From this node's own disk at start it is read.
				if err := restore(newFSM(s.c.genesis), b); err != nil {
					t.Errorf("an earlier version's snapshot from our own disk: %v", err)
				}
			}
		})
	}
}

// A follower that Raft brings up to date with a snapshot (its log is gone
// from the leader) re-derives it and ends with the leader's state.
func TestFollowerInstallsDerivedSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCast(t, 3)
		cl := newClusterWith(t, c, 3, clusterOpts{trailingLogs: 1})
		defer cl.close()
		l := cl.leader()
		var behind *member
		for _, m := range cl.members {
			if m != l {
				behind = m
			}
		}
		cl.isolate(behind)
		l = cl.leader(without(cl.members, behind)...)
		res := openCrisis(t, c, l)
		adv := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindAdviseLevel2, Crisis: res.State.Crisis})
		res, err := l.eng.Propose(context.Background(), adv)
		if err != nil {
			t.Fatal(err)
		}
		// Raft refuses a snapshot while a configuration entry is not
		// applied yet ("cannot take snapshot now"): try until it takes one.
		waitFor(t, "the leader takes a snapshot", nil, func() bool { return l.eng.raft.Snapshot().Error() == nil })
		cl.heal()
		waitFor(t, "the follower behind at the leader's index", nil, func() bool {
			return behind.eng.view(false).Index >= res.Index
		})
		if v := behind.eng.view(false); v.State.Level != 2 {
			t.Errorf("after the snapshot: level %d", v.State.Level)
		}
		if s := behind.eng.raft.Stats()["last_snapshot_index"]; s == "0" || s == "" {
			t.Errorf("the follower caught up without a snapshot (last_snapshot_index %q): the test shows nothing", s)
		}
	})
}

func without(ms []*member, x *member) []*member {
	var out []*member
	for _, m := range ms {
		if m != x {
			out = append(out, m)
		}
	}
	return out
}
