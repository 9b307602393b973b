package consensus

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/store"
)

// sameRaftLogs fails the test unless every entry b holds is the one a
// holds at the same index (b may hold fewer).
func sameRaftLogs(t *testing.T, a, b *member) uint64 {
	t.Helper()
	ra, rb := a.store.Raft(), b.store.Raft()
	first, _ := rb.FirstIndex()
	last, _ := rb.LastIndex()
	for i := first; i <= last && i > 0; i++ {
		var la, lb raft.Log
		if err := rb.GetLog(i, &lb); err != nil {
			t.Fatalf("%s: entry %d: %v", b.id.Name(), i, err)
		}
		if err := ra.GetLog(i, &la); err != nil {
			t.Fatalf("%s: entry %d: %v", a.id.Name(), i, err)
		}
		if la.Term != lb.Term || la.Type != lb.Type || !bytes.Equal(la.Data, lb.Data) {
			t.Fatalf("entry %d differs: %s has term %d, %s has term %d", i, a.id.Name(), la.Term, b.id.Name(), lb.Term)
		}
	}
	return last
}

// waitApplied waits (in virtual time) until every member applied index.
func waitApplied(t *testing.T, cl *cluster, index uint64) {
	t.Helper()
	for _, m := range cl.members {
		for i := 0; m.eng.Raft().AppliedIndex() < index; i++ {
			if i > 400 {
				t.Fatalf("%s applied %d, want %d", m.id.Name(), m.eng.Raft().AppliedIndex(), index)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// sameStates fails the test unless every member's FSM holds the same
// state.
func sameStates(t *testing.T, cl *cluster) {
	t.Helper()
	var want []byte
	for i, m := range cl.members {
		got, _ := m.eng.fsm.current(0).state.MarshalBinary()
		if i == 0 {
			want = got
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s applied another state than %s", m.id.Name(), cl.members[0].id.Name())
		}
	}
}

// Raft with the badger log on a full disk (hashicorp/raft v1.8.0).
//
// A follower that cannot store: its StoreLogs fails, raft answers the
// AppendEntries RPC with failure and keeps its log; the leader commits
// with the other follower, retries, and the follower catches up with an
// identical log once space is back.
//
// A leader that cannot store: raft fails the futures of the entries it
// could not store (Propose returns ErrDiskFull) and steps down; nothing it
// could not store is committed anywhere; another member leads, and the
// old leader catches up once space is back.
func TestRaftOnFullDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCast(t, 3)
		var free [3]atomic.Uint64
		for i := range free {
			free[i].Store(1 << 40)
		}
		cl := newClusterWith(t, c, 3, clusterOpts{freeSpace: func(i int) func() (uint64, error) {
			return func() (uint64, error) { return free[i].Load(), nil }
		}})
		defer cl.close()
		ctx := context.Background()
		net := c.genesis.NetworkID()
		affected := func(id crisis.ID, state string) *crisis.SignedCommand {
			return command(t, c.byName["cert-lu"], net, crisis.Command{Kind: crisis.KindAffected, Crisis: id, Add: []string{state}})
		}
		l := cl.leader()
		res, err := l.eng.Propose(ctx, openCmd(t, c, "cert-lu"))
		if err != nil {
			t.Fatal(err)
		}
		crisisID := res.State.Crisis
		index := func(m *member) int {
			for i, o := range cl.members {
				if o == m {
					return i
				}
			}
			return -1
		}

		// A follower's disk is full.
		var f *member
		for _, m := range cl.members {
			if m != l {
				f = m
				break
			}
		}
		free[index(f)].Store(0)
		fLast, _ := f.store.Raft().LastIndex()
		term := l.eng.Raft().CurrentTerm()
		for _, st := range []string{"AT", "BE", "BG", "HR"} {
			if res, err = l.eng.Propose(ctx, affected(crisisID, st)); err != nil {
				t.Fatalf("commit with a follower on a full disk: %v", err)
			}
		}
		time.Sleep(2 * time.Second) // replication retries to f
		if last, _ := f.store.Raft().LastIndex(); last != fLast {
			t.Errorf("the full follower's log moved from %d to %d", fLast, last)
		}
		if got := f.eng.Raft().AppliedIndex(); got >= res.Index {
			t.Errorf("the full follower applied %d ≥ %d", got, res.Index)
		}
		sameRaftLogs(t, l, f)
		if !l.eng.IsLeader() || l.eng.Raft().CurrentTerm() != term {
			t.Errorf("a follower's full disk disturbed the leader: leader %v, term %d → %d", l.eng.IsLeader(), term, l.eng.Raft().CurrentTerm())
		}
		free[index(f)].Store(1 << 40)
		waitApplied(t, cl, res.Index)
		for _, m := range cl.members {
			if last := sameRaftLogs(t, l, m); last < res.Index {
				t.Errorf("%s holds up to %d, want %d", m.id.Name(), last, res.Index)
			}
		}
		sameStates(t, cl)

		// The leader's disk is full.
		free[index(l)].Store(0)
		lost := affected(crisisID, "DE")
		_, err = l.eng.Propose(ctx, lost)
		if !errors.Is(err, store.ErrDiskFull) {
			t.Fatalf("propose on a leader with a full disk: %v, want ErrDiskFull", err)
		}
		// raft answers the future, then steps down.
		for i := 0; l.eng.IsLeader() && i < 100; i++ {
			time.Sleep(time.Millisecond)
		}
		if l.eng.IsLeader() {
			t.Error("the leader that cannot store still leads")
		}
		var others []*member
		for _, m := range cl.members {
			if m != l {
				others = append(others, m)
			}
		}
		nl := cl.leader(others...)
		res, err = nl.eng.Propose(ctx, affected(crisisID, "FR"))
		if err != nil {
			t.Fatalf("commit on the new leader: %v", err)
		}
		free[index(l)].Store(1 << 40)
		waitApplied(t, cl, res.Index)
		for _, m := range cl.members {
			if o, ok := m.eng.Outcome(lost.ID()); ok {
				t.Errorf("%s knows an outcome of the command the full leader could not store: %+v", m.id.Name(), o)
			}
			sameRaftLogs(t, nl, m)
		}
		sameStates(t, cl)
		if st := nl.eng.Local().State; len(st.Affected) != 5 {
			t.Errorf("affected states %v, want AT BE BG HR FR", st.Affected)
		}
	})
}
