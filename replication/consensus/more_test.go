package consensus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	gosync "sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// Through random isolations and heals, no two nodes ever claim leadership
// in the same term, and the minority never commits.
func TestOneLeaderPerTerm(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	synctest.Test(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(seed, 3))
		c, cl := startCluster(t, 5, 5)
		var mu gosync.Mutex
		leaders := map[uint64]raft.ServerID{}
		var conflict string
		for _, m := range cl.members {
			id := ServerID(m.id.Card())
			// The filter runs in Raft's own goroutine as the state changes,
			// so CurrentTerm is the term it became leader in.
			m.eng.Raft().RegisterObserver(raft.NewObserver(make(chan raft.Observation, 1), false, func(o *raft.Observation) bool {
				if st, ok := o.Data.(raft.RaftState); ok && st == raft.Leader {
					term := o.Raft.CurrentTerm()
					mu.Lock()
					if prev, ok := leaders[term]; ok && prev != id {
						conflict = string(prev) + " and " + string(id)
					}
					leaders[term] = id
					mu.Unlock()
				}
				return false
			}))
		}
		committed := 0
		for round := 0; round < 6; round++ {
			l := cl.leader()
			switch r.IntN(2) {
			case 0:
				cl.isolate(l)
			default:
				// Cut two random members away: the other three still commit.
				p := r.Perm(5)
				cl.isolate(cl.members[p[0]])
				cl.isolate(cl.members[p[1]])
			}
			time.Sleep(3 * time.Second)
			cl.heal()
			l = cl.leader()
			sc := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindOpen, Title: "t", Level: 1})
			if _, err := l.eng.Propose(context.Background(), sc); err == nil {
				committed++
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if conflict != "" {
			t.Fatalf("two leaders in one term: %s", conflict)
		}
		if committed == 0 {
			t.Error("nothing committed")
		}
		if len(leaders) < 2 {
			t.Errorf("observed leaders in %d terms; the test needs several elections", len(leaders))
		}
	})
}

// A roster update in the crisis log reaches Raft through the leader, and
// from then on every node refuses the revoked member's commands.
func TestRosterUpdateThroughRaft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 3)
		l := cl.leader()
		cl.adminUpdate(crypto.UpdateSpec{Op: crypto.OpRevoke, Target: c.byName["cert-lu"].ID(), Reason: "device lost", Created: t0})
		for i := 0; i < 100; i++ {
			bridgeLogs(t, cl.members...)
			time.Sleep(100 * time.Millisecond)
			v := l.eng.fsm.status().roster.Version()
			if v == 1 {
				break
			}
		}
		_, err := l.eng.Propose(context.Background(), openCmd(t, c, "cert-lu"))
		if !errors.Is(err, crisis.ErrRefused) {
			t.Fatalf("a revoked member's command: got %v, want a refusal", err)
		}
	})
}

// FSM snapshots restore to the same state and roster; applying the same
// entries to two FSMs gives the same state.
func TestFSMSnapshotAndDeterminism(t *testing.T) {
	c := newCast(t, 3)
	a, b := newFSM(c.genesis), newFSM(c.genesis)
	net := c.genesis.NetworkID()
	open := command(t, c.byName["cert-lu"], net, crisis.Command{Kind: crisis.KindOpen, Title: "x", Level: 1})
	var logs []*raft.Log
	for i, sc := range []*crisis.SignedCommand{open} {
		data, _ := encodeEntry(entryCommand, sc.Bytes(), time.Time{})
		logs = append(logs, &raft.Log{Index: uint64(i + 7), Term: 2, Data: data, AppendedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	st := crisisStateAfter(t, open, logs, a)
	st2 := crisisStateAfter(t, open, logs, b)
	sa, _ := st.MarshalBinary()
	sb, _ := st2.MarshalBinary()
	if !bytes.Equal(sa, sb) {
		t.Fatal("two FSMs fed the same entries differ")
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&sink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	r := newFSM(c.genesis)
	if err := r.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	sr, _ := r.state.MarshalBinary()
	if !bytes.Equal(sa, sr) {
		t.Error("restored state differs")
	}
	if o, ok := r.outcome(open.ID()); !ok || o.Index != 7 {
		t.Error("outcome lost in the snapshot")
	}
	// The restored member knows the index and term its state is at (it
	// reported 0 before: a restored node looked as if it had applied
	// nothing).
	if r.applied != 7 || r.term != 2 {
		t.Errorf("restored FSM at index %d term %d, want 7 and 2", r.applied, r.term)
	}
	if err := newFSM(c.genesis).Restore(io.NopCloser(bytes.NewReader([]byte("junk")))); err == nil {
		t.Error("a junk snapshot restored")
	}
}

func crisisStateAfter(t *testing.T, _ *crisis.SignedCommand, logs []*raft.Log, f *fsm) crisis.State {
	t.Helper()
	for _, l := range logs {
		if res := f.Apply(l).(*ApplyResult); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	return f.state
}

type sink struct{ *bytes.Buffer }

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { return nil }
func (s *sink) Close() error  { return nil }

// A command submitted twice (directly, then again as a proposal after a
// leadership loss) keeps its first outcome.
func TestDuplicateKeepsFirstOutcome(t *testing.T) {
	c := newCast(t, 3)
	f := newFSM(c.genesis)
	open := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindOpen, Title: "x", Level: 1})
	data, _ := encodeEntry(entryCommand, open.Bytes(), time.Time{})
	if res := f.Apply(&raft.Log{Index: 1, Term: 1, Data: data, AppendedAt: t0}).(*ApplyResult); res.Err != nil {
		t.Fatal(res.Err)
	}
	res := f.Apply(&raft.Log{Index: 2, Term: 1, Data: data, AppendedAt: t0}).(*ApplyResult)
	if !errors.Is(res.Err, crisis.ErrRefused) {
		t.Fatalf("second copy: got %v, want a duplicate refusal", res.Err)
	}
	if o, ok := f.outcome(open.ID()); !ok || o.Index != 1 || o.Refused != "" {
		t.Errorf("outcome after a duplicate: %+v, want committed at 1", o)
	}
}

// A voter change in the roster becomes Raft's configuration: the leader
// adds the new voters (one at a time, as Raft does) and demotes the old.
func TestVoterChangeThroughRaft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, cl := startCluster(t, 1, 3)
		l := cl.leader()
		all := []crypto.MemberID{cl.members[0].id.ID(), cl.members[1].id.ID(), cl.members[2].id.ID()}
		cl.adminUpdate(crypto.UpdateSpec{Op: crypto.OpVoters, Members: all, Created: t0}) // enisa, the only voter
		voters := func() int {
			f := l.eng.Raft().GetConfiguration()
			if f.Error() != nil {
				return -1
			}
			n := 0
			for _, s := range f.Configuration().Servers {
				if s.Suffrage == raft.Voter {
					n++
				}
			}
			return n
		}
		waitFor(t, "Raft to have the 3 voters the roster names", cl.members, func() bool { return voters() == 3 })
	})
}

// A leader the roster demotes steps down and stays a working non-voter:
// Raft must not shut it down (hashicorp/raft's ShutdownOnRemove treats a
// leader that lost its vote as removed), so it keeps following the
// configuration, here a second voter change that gives its vote back.
func TestDemotedLeaderKeepsFollowing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, cl := startCluster(t, 3, 4)
		l := cl.leader()
		var others []crypto.MemberID
		for _, m := range cl.members {
			if m != l {
				others = append(others, m.id.ID())
			}
		}
		setVoters := func(voters []crypto.MemberID) {
			cl.adminUpdate(crypto.UpdateSpec{Op: crypto.OpVoters, Members: voters, Created: t0})
		}
		suffrage := func(on, of *member) (raft.ServerSuffrage, bool) {
			f := on.eng.Raft().GetConfiguration()
			if f.Error() != nil {
				return 0, false
			}
			for _, s := range f.Configuration().Servers {
				if s.ID == ServerID(of.id.Card()) {
					return s.Suffrage, true
				}
			}
			return 0, false
		}
		setVoters(others)
		waitFor(t, "the old leader to be a non-voter in its own configuration", cl.members, func() bool {
			s, ok := suffrage(l, l)
			return ok && s == raft.Nonvoter
		})
		if st := l.eng.Raft().State(); st == raft.Shutdown {
			t.Fatalf("the demoted leader's Raft is %v", st)
		}
		setVoters([]crypto.MemberID{cl.members[0].id.ID(), cl.members[1].id.ID(), cl.members[2].id.ID()})
		waitFor(t, "the old leader to learn it votes again", cl.members, func() bool {
			s, ok := suffrage(l, l)
			return ok && s == raft.Voter && l.eng.Raft().State() != raft.Shutdown
		})
	})
}
