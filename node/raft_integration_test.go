package node

// Real-libp2p integration tests of the crisis state (issue 5): Raft over
// libp2p streams between real hosts on 127.0.0.1 (TLS 1.3, roster gate),
// badger-backed Raft logs, sync carrying proposals and checkpoints.

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	msync "github.com/crisismesh/crisismesh/replication/sync"
	"github.com/crisismesh/crisismesh/transport"
)

// 3 voters and 2 non-voters over TCP and QUIC: a leader is elected, the
// non-voters join the Raft configuration as non-voters, a command
// committed on the leader is applied on all five; the leader is killed, a
// new one is elected among the two voters left and the next command
// commits.
func TestRaftOverLibp2pFailover(t *testing.T) {
	seed := itSeed(t)
	c := newITCast(t, 5, 3)
	started := time.Now()
	cl := newITCluster(t, c, 5, itOpts{QUIC: true, Seed: seed}, nil)
	defer cl.close()
	l := cl.waitLeader(30 * time.Second)
	t.Logf("%s leads, %v after the stacks started", l.name, time.Since(started).Round(time.Millisecond))

	// The leader's duties add every member that is not a voter as a Raft
	// non-voter.
	want := map[raft.ServerID]raft.ServerSuffrage{}
	for _, s := range cl.stacks {
		suffrage := raft.Nonvoter
		if c.genesis.Roster().IsVoter(s.id.ID()) {
			suffrage = raft.Voter
		}
		want[consensus.ServerID(s.id.Card())] = suffrage
	}
	var got map[raft.ServerID]raft.ServerSuffrage
	itWaitFor(t, 20*time.Second, "the non-voters in the Raft configuration", func() bool {
		f := l.eng.Raft().GetConfiguration()
		if f.Error() != nil {
			return false
		}
		got = map[raft.ServerID]raft.ServerSuffrage{}
		for _, s := range f.Configuration().Servers {
			got[s.ID] = s.Suffrage
		}
		return len(got) == len(want)
	})
	for id, w := range want {
		if got[id] != w {
			t.Errorf("server %s: suffrage %v, want %v", id, got[id], w)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := c.sign(t, "cert-lu", itOpen())
	res, err := l.eng.Propose(ctx, open)
	if err != nil {
		t.Fatalf("propose on the leader: %v", err)
	}
	if res.State.Status != crisis.StatusOpen || res.State.Crisis != open.ID() || res.Index == 0 {
		t.Fatalf("committed: status %v crisis %s index %d, want open %s", res.State.Status, res.State.Crisis.Short(), res.Index, open.ID().Short())
	}
	// Every member applies it through Raft, the non-voters too.
	for _, s := range cl.stacks {
		itWaitFor(t, 20*time.Second, s.name+" applying the command through Raft", func() bool {
			v := s.eng.Local()
			return v.Source == "raft" && v.Index >= res.Index
		})
		if v := s.eng.Local(); v.State.Crisis != open.ID() || v.State.Level != 1 {
			t.Errorf("%s: crisis %s level %d, want %s level 1", s.name, v.State.Crisis.Short(), v.State.Level, open.ID().Short())
		}
	}

	// Kill the leader: close its engine, sync, host and store.
	old := l
	f, err := cl.killLeader(t, ctx, c, old, open)
	res2, nl, sc2, elected, failover := f.res, f.leader, f.cmd, f.elected, f.took
	if err != nil {
		t.Fatalf("after killing leader %s: %v", old.name, err)
	}
	t.Logf("failover: %s killed, %s elected after %v, next command committed after %v (target on a LAN: ≤ 1.5 s; heartbeat timeout %v)",
		old.name, nl.name, elected.Round(time.Millisecond), failover.Round(time.Millisecond), old.prof.HeartbeatTimeout)
	if nl == old || !c.genesis.Roster().IsVoter(nl.id.ID()) {
		t.Fatalf("new leader %s: want one of the two voters left", nl.name)
	}
	if res2.Index <= res.Index {
		t.Errorf("next command at index %d, want after %d", res2.Index, res.Index)
	}
	for _, s := range cl.alive() {
		itWaitFor(t, 20*time.Second, s.name+" applying the next command", func() bool {
			v := s.eng.Local()
			return v.Index >= res2.Index && len(v.State.Affected) == 1
		})
		if o, ok := s.eng.Outcome(sc2.ID()); !ok || o.Index != res2.Index || o.Refused != "" {
			t.Errorf("%s: outcome %+v (known %v), want committed at %d", s.name, o, ok, res2.Index)
		}
	}
}

// A voter cut off from the other two (a minority) proposes: the command
// goes into its crisis log as a proposal and shows as provisional; after
// heal, sync carries the proposal to the leader, which commits it, and the
// proposer sees the outcome and the state.
func TestMinorityProposalCommitsAfterHeal(t *testing.T) {
	seed := itSeed(t)
	c := newITCast(t, 3, 3)
	faults := transport.NewFaults(seed, nil)
	cl := newITCluster(t, c, 3, itOpts{Faults: faults, Seed: seed}, nil)
	defer cl.close()
	l := cl.waitLeader(30 * time.Second)
	var v *itStack
	var majority []*itStack
	var majorityIDs []peer.ID
	for _, s := range cl.stacks {
		if s != l && v == nil {
			v = s
			continue
		}
		majority = append(majority, s)
		majorityIDs = append(majorityIDs, s.peerID())
	}
	// v must have heard from the leader before the cut: a node that never
	// had contact reports no age (LeaderContact zero means never), and the
	// wait below would never end.
	itWaitFor(t, 10*time.Second, v.name+" hearing from the leader", func() bool {
		return v.eng.Raft().Leader() != "" && !v.eng.Local().LeaderContact.IsZero()
	})
	t.Logf("leader %s; %s is cut off", l.name, v.name)
	faults.Partition([]peer.ID{v.peerID()}, majorityIDs)
	itWaitFor(t, 10*time.Second, v.name+" disconnected", func() bool {
		return !v.connected(majority[0]) && !v.connected(majority[1])
	})
	// Wait until v itself knows it has lost the leader: its view must say
	// how old it is.
	itWaitFor(t, 20*time.Second, v.name+" losing leader contact", func() bool {
		return v.eng.Raft().Leader() == "" && v.eng.Local().Age > v.prof.HeartbeatTimeout
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc := c.sign(t, v.name, itOpen())
	if _, err := v.eng.Propose(ctx, sc); !errors.Is(err, consensus.ErrProposed) {
		t.Fatalf("propose on the cut-off voter: got %v, want ErrProposed", err)
	}
	view := v.eng.Local()
	if len(view.Provisional) != 1 || view.Provisional[0].Command.ID != sc.ID() {
		t.Fatalf("provisional on %s: %d decisions, want the proposal %s", v.name, len(view.Provisional), sc.ID().Short())
	}
	if view.State.Status == crisis.StatusOpen {
		t.Fatalf("%s shows the uncommitted proposal as the state", v.name)
	}
	if _, ok := v.eng.Outcome(sc.ID()); ok {
		t.Fatal("the proposal has an outcome before it reached the quorum")
	}
	for _, s := range majority {
		if _, ok := s.eng.Outcome(sc.ID()); ok {
			t.Fatalf("%s knows the outcome of a proposal it cannot have seen", s.name)
		}
	}

	healed := time.Now()
	faults.Heal()
	var o consensus.Outcome
	itWaitFor(t, 45*time.Second, "the majority committing the proposal", func() bool {
		for _, s := range majority {
			var ok bool
			if o, ok = s.eng.Outcome(sc.ID()); ok {
				return true
			}
		}
		return false
	})
	committed := time.Since(healed)
	if o.Refused != "" || o.Index == 0 {
		t.Fatalf("outcome on the majority: %+v, want committed", o)
	}
	itWaitFor(t, 45*time.Second, v.name+" learning the outcome and the state", func() bool {
		got, ok := v.eng.Outcome(sc.ID())
		view := v.eng.Local()
		return ok && got.Index == o.Index && view.State.Crisis == sc.ID() && len(view.Provisional) == 0
	})
	got, _ := v.eng.Outcome(sc.ID())
	if got != o {
		t.Errorf("proposer's outcome %+v, want the majority's %+v", got, o)
	}
	view = v.eng.Local()
	if view.State.Status != crisis.StatusOpen || view.Index < o.Index {
		t.Errorf("proposer's view: status %v index %d, want open at ≥ %d", view.State.Status, view.Index, o.Index)
	}
	t.Logf("after heal: committed at term %d index %d after %v; %s saw it (source %s) after %v",
		o.Term, o.Index, committed.Round(time.Millisecond), v.name, view.Source, time.Since(healed).Round(time.Millisecond))
}

// A non-voter N that can reach only member M (itself a non-voter), while
// M reaches everyone, learns the committed state from the leader's
// checkpoint entry, carried by sync through M.
func TestNonVoterLearnsCheckpointThroughThirdNode(t *testing.T) {
	seed := itSeed(t)
	c := newITCast(t, 5, 3)
	faults := transport.NewFaults(seed, nil)
	var n, m *itStack
	cl := newITCluster(t, c, 5, itOpts{Faults: faults, Seed: seed}, func(cl *itCluster) {
		n, m = cl.byName["cert-de"], cl.byName["presidency"]
		var voters []peer.ID
		for _, s := range cl.voters() {
			voters = append(voters, s.peerID())
		}
		faults.Partition([]peer.ID{n.peerID()}, voters)
	})
	defer cl.close()
	if !n.connected(m) {
		t.Fatalf("%s and %s are not connected", n.name, m.name)
	}
	l := cl.waitLeader(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := c.sign(t, "cyclone-fr", itOpen())
	res, err := l.eng.Propose(ctx, open)
	if err != nil {
		t.Fatalf("propose on leader %s: %v", l.name, err)
	}
	committed := time.Now()
	itWaitFor(t, 30*time.Second, n.name+" learning the state from a checkpoint", func() bool {
		v := n.eng.Local()
		return v.Source == "checkpoint" && v.Index >= res.Index
	})
	v := n.eng.Local()
	t.Logf("%s learned index %d from a checkpoint %v after the commit; age %v", n.name, v.Index, time.Since(committed).Round(time.Millisecond), v.Age.Round(time.Millisecond))
	if v.Index != res.Index || v.Term != res.Term {
		t.Errorf("checkpoint at term %d index %d, want %d/%d", v.Term, v.Index, res.Term, res.Index)
	}
	if v.State.Crisis != open.ID() || v.State.Status != crisis.StatusOpen || v.State.Level != 1 {
		t.Errorf("state: crisis %s status %v level %d, want %s open level 1", v.State.Crisis.Short(), v.State.Status, v.State.Level, open.ID().Short())
	}
	if v.Age <= 0 || v.Age > time.Minute || v.LeaderContact.IsZero() {
		t.Errorf("age %v (leader contact %v): want how old the checkpoint is", v.Age, v.LeaderContact)
	}
	if v.Leader || len(v.Provisional) != 0 {
		t.Errorf("leader %v, %d provisional: want a follower's view with nothing pending", v.Leader, len(v.Provisional))
	}
	if o, ok := n.eng.Outcome(open.ID()); !ok || o.Index != res.Index || o.Refused != "" {
		t.Errorf("outcome on %s: %+v (known %v), want committed at %d", n.name, o, ok, res.Index)
	}
	// It came through M: N never reached a voter, and Raft never reached N.
	if !n.eng.Raft().LastContact().IsZero() || n.eng.Raft().AppliedIndex() >= res.Index {
		t.Errorf("%s heard from a leader directly (last contact %v, applied %d)", n.name, n.eng.Raft().LastContact(), n.eng.Raft().AppliedIndex())
	}
	for _, s := range cl.voters() {
		if n.connected(s) {
			t.Errorf("%s is connected to voter %s", n.name, s.name)
		}
	}
	i := slices.IndexFunc(n.sync.Peers(), func(p msync.PeerStats) bool { return p.Peer == m.peerID() })
	if i < 0 || n.sync.Peers()[i].EntriesRecv == 0 {
		t.Errorf("%s received no entries from %s", n.name, m.name)
	}
}

// Submitting a command that already committed again (what a second
// leader does with a proposal whose commit it has not applied yet, or a
// client retry) is refused as a duplicate, and Outcome still reports the
// commit. (Until 2dbd7f0 the duplicate refusal was remembered as the
// newest outcome and Outcome reported the committed command refused;
// fsm.Apply now keeps the first outcome.)
func TestOutcomeSurvivesDuplicateSubmission(t *testing.T) {
	seed := itSeed(t)
	c := newITCast(t, 3, 3)
	cl := newITCluster(t, c, 3, itOpts{Seed: seed}, nil)
	defer cl.close()
	l := cl.waitLeader(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc := c.sign(t, "cert-lu", itOpen())
	res, err := l.eng.Propose(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.eng.Propose(ctx, sc); !errors.Is(err, crisis.ErrRefused) {
		t.Fatalf("second submission: got %v, want a duplicate refusal", err)
	}
	o, ok := l.eng.Outcome(sc.ID())
	if !ok || o.Refused != "" || o.Index != res.Index {
		t.Errorf("Outcome after a duplicate submission: %+v, want committed at index %d", o, res.Index)
	}
}
