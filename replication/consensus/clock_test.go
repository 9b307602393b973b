package consensus

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/replication/crisis"
)

// reserveRequest is a Reserve request by cert-lu in crisis id.
func reserveRequest(t testing.TB, c *cast, id crisis.ID, sector string) *crisis.SignedCommand {
	return command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindReserveRequest, Crisis: id, Sector: sector, Services: []string{"incident response"}})
}

// request returns the Reserve request made by command id.
func request(t testing.TB, s crisis.State, id crisis.ID) crisis.Request {
	t.Helper()
	for _, r := range s.Requests {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no Reserve request %s in the state", id.Short())
	return crisis.Request{}
}

// A leader whose clock is five minutes slow takes over: committed times
// stay monotonic (it stamps the last committed time, not its clock), a
// Reserve deadline stays 24 h after its request's committed time, and
// every member applies the same state. Once its clock is right again it
// stamps its clock.
func TestSlowLeaderKeepsCommittedTimeMonotonic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCast(t, 3)
		var skew [3]atomic.Int64
		cl := newClusterWith(t, c, 3, clusterOpts{now: func(i int) func() time.Time {
			return func() time.Time { return time.Now().Add(time.Duration(skew[i].Load())) }
		}})
		defer cl.close()
		ctx := context.Background()
		l := cl.leader()
		res, err := l.eng.Propose(ctx, openCmd(t, c, "cert-lu"))
		if err != nil {
			t.Fatal(err)
		}
		crisisID := res.State.Crisis
		req1 := reserveRequest(t, c, crisisID, "energy")
		res1, err := l.eng.Propose(ctx, req1)
		if err != nil {
			t.Fatal(err)
		}
		r1 := request(t, res1.State, req1.ID())
		if !r1.At.Equal(res1.State.Updated) || !r1.Deadline.Equal(r1.At.Add(crisis.ReserveDeadline)) {
			t.Fatalf("request under a correct clock: at %v deadline %v, committed %v", r1.At, r1.Deadline, res1.State.Updated)
		}
		if d := time.Since(r1.At); d < 0 || d > time.Second {
			t.Fatalf("request time %v is not the leader's clock %v", r1.At, time.Now())
		}

		// The slow member takes over.
		var slow *member
		si := 0
		for i, m := range cl.members {
			if m != l {
				slow, si = m, i
				break
			}
		}
		skew[si].Store(int64(-5 * time.Minute))
		sid := ServerID(slow.id.Card())
		if err := l.eng.Raft().LeadershipTransferToServer(sid, raft.ServerAddress(sid)).Error(); err != nil {
			t.Fatalf("leadership transfer: %v", err)
		}
		if got := cl.leader(); got != slow {
			t.Fatalf("%s leads, want %s", got.id.Name(), slow.id.Name())
		}
		aff := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindAffected, Crisis: crisisID, Add: []string{"LU"}})
		resA, err := slow.eng.Propose(ctx, aff)
		if err != nil {
			t.Fatal(err)
		}
		req2 := reserveRequest(t, c, crisisID, "health")
		res2, err := slow.eng.Propose(ctx, req2)
		if err != nil {
			t.Fatal(err)
		}
		r2 := request(t, res2.State, req2.ID())
		slowNow := slow.eng.cfg.Now()
		if !r2.At.After(slowNow.Add(4 * time.Minute)) {
			t.Errorf("request under the slow leader at %v: its clock (%v), not the committed time", r2.At, slowNow)
		}
		if r2.At.Before(r1.At) || resA.State.Updated.Before(res1.State.Updated) || res2.State.Updated.Before(resA.State.Updated) {
			t.Errorf("committed time went back: %v, %v, %v", res1.State.Updated, resA.State.Updated, res2.State.Updated)
		}
		if !r2.At.Equal(res2.State.Updated) || !r2.Deadline.Equal(r2.At.Add(crisis.ReserveDeadline)) {
			t.Errorf("request under the slow leader: at %v deadline %v, committed %v", r2.At, r2.Deadline, res2.State.Updated)
		}

		// Its clock is right again: it stamps its clock.
		skew[si].Store(0)
		time.Sleep(time.Second)
		aff2 := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindAffected, Crisis: crisisID, Add: []string{"DE"}})
		res3, err := slow.eng.Propose(ctx, aff2)
		if err != nil {
			t.Fatal(err)
		}
		if !res3.State.Updated.After(res2.State.Updated) {
			t.Errorf("after the clock is fixed: committed %v, not after %v", res3.State.Updated, res2.State.Updated)
		}

		// Decisions are in non-decreasing time, and all members agree.
		h := res3.State.History
		for i := 1; i < len(h); i++ {
			if h[i].At.Before(h[i-1].At) {
				t.Errorf("decision %d at %v before decision %d at %v", i, h[i].At, i-1, h[i-1].At)
			}
		}
		want, _ := res3.State.MarshalBinary()
		for _, m := range cl.members {
			for i := 0; m.eng.Local().Index < res3.Index && i < 100; i++ {
				time.Sleep(50 * time.Millisecond)
			}
			got, _ := m.eng.fsm.current(0).state.MarshalBinary()
			if !bytes.Equal(got, want) {
				t.Errorf("%s applied another state", m.id.Name())
			}
		}
	})
}

// The FSM alone keeps committed time monotonic, whatever the entries
// say (leaders of several terms, stamps in any order), and entries of
// earlier versions fall back to hashicorp/raft's AppendedAt.
func TestFSMCommittedTimeMonotonic(t *testing.T) {
	c := newCast(t, 3)
	net := c.genesis.NetworkID()
	f := newFSM(c.genesis)
	open := command(t, c.byName["cert-lu"], net, crisis.Command{Kind: crisis.KindOpen, Title: "x", Level: 1})
	apply := func(i uint64, sc *crisis.SignedCommand, stamp, appended time.Time) *ApplyResult {
		t.Helper()
		data, err := encodeEntry(entryCommand, sc.Bytes(), stamp)
		if err != nil {
			t.Fatal(err)
		}
		res := f.Apply(&raft.Log{Index: i, Term: 1, Data: data, AppendedAt: appended}).(*ApplyResult)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return res
	}
	// An entry of an earlier version: AppendedAt.
	res := apply(1, open, time.Time{}, t0)
	if !res.State.Opened.Equal(t0) {
		t.Fatalf("opened at %v, want AppendedAt %v", res.State.Opened, t0)
	}
	id := res.State.Crisis
	// The stamp wins over AppendedAt.
	req := reserveRequest(t, c, id, "energy")
	res = apply(2, req, t0.Add(time.Hour), t0)
	if r := request(t, res.State, req.ID()); !r.At.Equal(t0.Add(time.Hour)) {
		t.Fatalf("request at %v, want the stamp %v", r.At, t0.Add(time.Hour))
	}
	// A stamp five minutes earlier: the committed time stays.
	req2 := reserveRequest(t, c, id, "health")
	res = apply(3, req2, t0.Add(55*time.Minute), t0)
	r2 := request(t, res.State, req2.ID())
	if !r2.At.Equal(t0.Add(time.Hour)) || !r2.Deadline.Equal(t0.Add(time.Hour+crisis.ReserveDeadline)) {
		t.Fatalf("request stamped before the committed time: at %v deadline %v, want %v and 24 h later", r2.At, r2.Deadline, t0.Add(time.Hour))
	}
	if !res.State.Updated.Equal(t0.Add(time.Hour)) {
		t.Errorf("committed time %v, want %v", res.State.Updated, t0.Add(time.Hour))
	}
}
