package consensus

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// forgeCheckpoint writes, as a hostile voter would with its own key, a
// checkpoint entry into m's own feed claiming st at index (with the
// voter's vote over it, the best a lone voter can give).
func forgeCheckpoint(t testing.TB, m *member, st crisis.State, term, index uint64) *log.Entry {
	t.Helper()
	raw, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	w := checkpointWire{State: raw, Term: term, Index: index, Roster: m.store.Roster().Version()}
	d := w.digest()
	sig, err := m.id.Sign(crypto.ContextCheckpoint, statementBytes(m.store.Network(), term, index, w.Roster, d))
	if err != nil {
		t.Fatal(err)
	}
	w.Votes = []voteWire{{Voter: idBytes(m.id.ID()), Sig: sig}}
	payload, err := crypto.MarshalCanonical(&w)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := m.store.CurrentKey("all")
	if !ok {
		t.Fatal("no network key")
	}
	es, err := m.store.Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindCheckpoint, TLP: log.TLPAmber, Payload: payload}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return es[0]
}

// openedWithHostileVoter starts three voters and a non-voter, opens a
// crisis on the leader, and names a voter other than the leader that
// turns hostile.
func openedWithHostileVoter(t *testing.T) (*cluster, *member, Result, *member) {
	t.Helper()
	c := newCast(t, 3)
	cl := newCluster(t, c, 4)
	l := cl.leader()
	res, err := l.eng.Propose(context.Background(), openCmd(t, c, "cert-lu"))
	if err != nil {
		cl.close()
		t.Fatal(err)
	}
	return cl, l, res, without(cl.members[:3], l)[0]
}

// waitFor polls cond in virtual time.
func waitFor(t testing.TB, what string, bridge []*member, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if bridge != nil {
			bridgeLogs(t, bridge...)
		}
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("not within 20 s (virtual): %s", what)
}

// Finding 1 of issue 11: one voter's checkpoint at a huge index saying
// "closed" was believed by every node, and even the leader's linearizable
// read returned it. A checkpoint is believed only with the votes of a
// majority of the voters behind it.
func TestForgedCheckpointNotBelieved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl, l, res, hostile := openedWithHostileVoter(t)
		defer cl.close()
		forged := res.State.Clone()
		forged.Status = crisis.StatusClosed
		forged.Level = 0
		forgeCheckpoint(t, hostile, forged, res.Term, 1<<62)
		bridgeLogs(t, cl.members...)
		time.Sleep(time.Second) // let every engine observe it (virtual time)
		for _, m := range cl.members {
			if v := m.eng.Local(); v.State.Status != crisis.StatusOpen || v.Index >= 1<<62 {
				t.Errorf("%s shows status %v at index %d (source %s): a lone voter's checkpoint was believed", m.id.Name(), v.State.Status, v.Index, v.Source)
			}
		}
		lin, err := l.eng.Linearizable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if lin.State.Status != crisis.StatusOpen || lin.Index >= 1<<62 {
			t.Errorf("the leader's linearizable read returned status %v at index %d", lin.State.Status, lin.Index)
		}
	})
}

// An honest checkpoint gathers the votes of a majority of the voters
// through the log, and a non-voter that Raft does not reach believes it,
// naming its signers.
func TestCertifiedCheckpointReachesFarNonVoter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 4)
		far := cl.members[3]
		cl.isolate(far)
		l := cl.leader(cl.members[:3]...)
		res := openCrisis(t, c, l)
		waitFor(t, "the far non-voter believes the committed state", cl.members, func() bool {
			v := far.eng.Local()
			return v.Source == SourceCheckpoint && v.Index >= res.Index && v.State.Status == crisis.StatusOpen
		})
		v := far.eng.Local()
		if len(v.Signers) < 2 {
			t.Errorf("signers %v: want a majority of the three voters", v.Signers)
		}
		for _, s := range v.Signers {
			if !c.genesis.Roster().IsVoter(s) {
				t.Errorf("signer %s is not a voter", s.Short())
			}
		}
	})
}

// A genuine but older certificate never moves a node back.
func TestStaleCertificateDoesNotRollBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 4)
		far := cl.members[3]
		cl.isolate(far)
		voters := cl.members[:3]
		l := cl.leader(voters...)
		res := openCrisis(t, c, l)
		waitFor(t, "the first state certified among the voters", voters, func() bool {
			v := far.eng.Local()
			bridgeLogs(t, append(voters, far)...)
			return v.Index >= res.Index && v.Source == SourceCheckpoint
		})
		old, err := far.store.Entries(nil, 0) // everything the first certificate rests on
		if err != nil {
			t.Fatal(err)
		}
		adv := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindAdviseLevel2, Crisis: res.State.Crisis})
		res2, err := l.eng.Propose(context.Background(), adv)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the far node at level 2", cl.members, func() bool {
			v := far.eng.Local()
			return v.Index >= res2.Index && v.State.Level == 2
		})
		// Observing the older certificate's entries again (as a slow
		// voter's late vote would bring them) changes nothing.
		for _, en := range old {
			far.eng.observe(en)
		}
		if v := far.eng.Local(); v.State.Level != 2 || v.Index < res2.Index {
			t.Errorf("after an old certificate: level %d at index %d", v.State.Level, v.Index)
		}
	})
}

func idBytes(id crypto.MemberID) []byte { return id[:] }

// Votes that do not count: a non-voter's, the same voter twice, a
// signature over another statement. One voter and such votes certify
// nothing.
func TestVotesThatDoNotCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cl, l, res, hostile := openedWithHostileVoter(t)
		defer cl.close()
		nonVoter := cl.members[3]
		forged := res.State.Clone()
		forged.Status = crisis.StatusClosed
		raw, _ := forged.MarshalBinary()
		net := hostile.store.Network()
		w := checkpointWire{State: raw, Term: res.Term, Index: res.Index + 100, Roster: 0}
		d := w.digest()
		w.Digest = d[:]
		sign := func(id *crypto.Identity, index uint64) voteWire {
			sig, err := id.Sign(crypto.ContextCheckpoint, statementBytes(net, w.Term, index, 0, d))
			if err != nil {
				t.Fatal(err)
			}
			return voteWire{Voter: idBytes(id.ID()), Sig: sig}
		}
		own := sign(hostile.id, w.Index)
		w.Votes = []voteWire{own, own, sign(nonVoter.id, w.Index)}
		// The leader's key, but a signature over another index.
		other := sign(l.id, w.Index+1)
		other.Voter = idBytes(l.id.ID())
		w.Votes = append(w.Votes, other)
		payload, err := crypto.MarshalCanonical(&w)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := hostile.store.CurrentKey("all")
		if _, err := hostile.store.Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindCheckpoint, TLP: log.TLPAmber, Payload: payload}, Key: key}); err != nil {
			t.Fatal(err)
		}
		bridgeLogs(t, cl.members...)
		time.Sleep(time.Second)
		for _, m := range cl.members {
			if v := m.eng.Local(); v.State.Status != crisis.StatusOpen {
				t.Errorf("%s shows status %v at index %d, signers %d", m.id.Name(), v.State.Status, v.Index, len(v.Signers))
			}
			// The forged votes cost their author, on every node.
			charged := false
			for _, o := range m.store.Offences() {
				if o.Author == hostile.id.ID() && o.Rule == OffenceCheckpoint {
					charged = true
				}
				if o.Author != hostile.id.ID() {
					t.Errorf("%s charges %s (%s), an honest member", m.id.Name(), o.Author.Short(), o.Rule)
				}
			}
			if !charged {
				t.Errorf("%s does not charge %s for its forged votes", m.id.Name(), hostile.id.Name())
			}
		}
	})
}

// A hostile voter poses as leader to one follower (a somewhat higher term,
// which Raft must accept) and has it apply a command it signed itself but
// that no quorum committed. Raft cannot prevent it (it tolerates crashes,
// not lies); the certificates expose it: the honest majority certifies
// another state at that index, and the follower says it diverged and
// shows the certified state instead of its own.
func TestFakeLeaderExposedByCertificates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 3)
		l := cl.leader()
		res := openCrisis(t, c, l)
		others := without(cl.members, l)
		h, f := others[0], others[1]
		waitFor(t, "the follower applied the open", nil, func() bool { return f.eng.view(false).Index >= res.Index })
		// The leader adds the members outside the cluster as non-voters,
		// one configuration entry each, on its own time; the fake entry
		// below must take the index of the honest majority's next entry,
		// so wait until those are in and f holds and applied them all.
		waitFor(t, "the Raft configuration settled and on the follower", nil, func() bool {
			cfg := l.eng.Raft().GetConfiguration()
			return cfg.Error() == nil && len(cfg.Configuration().Servers) == len(c.genesis.Roster().Members()) &&
				f.eng.raft.AppliedIndex() == l.eng.raft.LastIndex()
		})
		// h signs a command of its own (its role allows it) and feeds it
		// to f as the "leader" of the next term.
		bogus := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindAffected, Crisis: res.State.Crisis, Add: []string{"LU"}})
		data, err := encodeEntry(entryCommand, bogus.Bytes(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		last := f.eng.raft.LastIndex()
		var lastLog raft.Log
		if err := f.eng.cfg.RaftLogs.GetLog(last, &lastLog); err != nil {
			t.Fatal(err)
		}
		term := f.eng.raft.CurrentTerm() + 1
		req := &raft.AppendEntriesRequest{
			RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(ServerID(h.id.Card())), Addr: []byte(h.trans.LocalAddr())},
			Term:         term,
			PrevLogEntry: last, PrevLogTerm: lastLog.Term,
			Entries:           []*raft.Log{{Index: last + 1, Term: term, Type: raft.LogCommand, Data: data}},
			LeaderCommitIndex: last + 1,
		}
		var resp raft.AppendEntriesResponse
		if err := h.trans.AppendEntries(ServerID(f.id.Card()), f.trans.LocalAddr(), req, &resp); err != nil || !resp.Success {
			t.Fatalf("the fake leader's append: %v, success %v", err, resp.Success)
		}
		// f is cut off from Raft right away (else its higher term and
		// longer log could make it leader and spread the command); the
		// crisis log still reaches it.
		cl.isolate(f)
		waitFor(t, "the follower applied the bogus command", nil, func() bool {
			return slices.Contains(f.eng.view(false).State.Affected, "LU")
		})
		// The honest majority goes on at the same index; its certificate
		// reaches f through the log.
		adv := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindAdviseLevel2, Crisis: res.State.Crisis})
		honest := without(cl.members, f)
		if _, err := cl.leader(honest...).eng.Propose(context.Background(), adv); err != nil && !errors.Is(err, ErrProposed) {
			t.Fatal(err)
		}
		waitFor(t, "the advice committed", honest, func() bool {
			o, ok := cl.leader(honest...).eng.Outcome(adv.ID())
			return ok && o.Refused == ""
		})
		l = cl.leader(honest...)
		waitFor(t, "the follower sees that it diverged", cl.members, func() bool { return f.eng.Local().Diverged != 0 })
		v := f.eng.Local()
		if v.Source != SourceCheckpoint || slices.Contains(v.State.Affected, "LU") || len(v.Signers) < 2 {
			t.Errorf("diverged follower shows source %s, affected %v, %d signers: want the certified state", v.Source, v.State.Affected, len(v.Signers))
		}
		for _, m := range []*member{l, without(others, f)[0]} {
			if d := m.eng.Local().Diverged; d != 0 {
				t.Errorf("%s (honest) reports divergence at %d", m.id.Name(), d)
			}
		}
	})
}

// votesAt counts the vote entries (checkpoints without a state) for index
// in m's log, by author.
func votesAt(t testing.TB, m *member, index uint64) map[crypto.MemberID]int {
	t.Helper()
	es, err := m.store.Entries(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[crypto.MemberID]int{}
	for _, en := range es {
		body, err := m.store.Read(en)
		if err != nil || body.Kind != log.KindCheckpoint {
			continue
		}
		var w checkpointWire
		if crypto.UnmarshalCanonical(body.Payload, &w) == nil && w.State == nil && w.Index == index {
			out[en.Header.Author]++
		}
	}
	return out
}

// With three voters, the leader's checkpoint and one vote certify a
// state: the third voter holds its vote back and never writes it.
func TestOnlyTheVotesNeededAreWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 4)
		far := cl.members[3]
		l := cl.leader()
		res := openCrisis(t, c, l)
		waitFor(t, "a certificate", cl.members, func() bool { return far.eng.Local().Certified >= res.Index })
		cert := far.eng.Local().Certified
		for range 20 { // 10 s, well past the hold-back
			bridgeLogs(t, cl.members...)
			time.Sleep(500 * time.Millisecond)
		}
		if v := votesAt(t, far, cert); len(v) != 1 {
			t.Errorf("vote entries for index %d: %d voters wrote one (%v), want 1", cert, len(v), v)
		}
	})
}

// The voter first in line is cut off from the log: the next one votes
// after holding back, and the state is certified all the same.
func TestHeldBackVoteCoversAMissingVoter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 4)
		l := cl.leader()
		// The follower voters in member-ID order: the first would vote.
		var followers []*member
		for _, id := range c.genesis.Roster().Voters() {
			for _, m := range cl.members[:3] {
				if m.id.ID() == id && m != l {
					followers = append(followers, m)
				}
			}
		}
		first, second, far := followers[0], followers[1], cl.members[3]
		res := openCrisis(t, c, l)
		// The log moves among all but the first follower.
		waitFor(t, "a certificate without the first follower", []*member{l, second, far}, func() bool {
			return far.eng.Local().Certified >= res.Index
		})
		if v := votesAt(t, far, far.eng.Local().Certified); v[second.id.ID()] != 1 || v[first.id.ID()] != 0 {
			t.Errorf("votes %v: want the second follower's only", v)
		}
	})
}

// A certificate must be a majority of the voters at the roster version it
// names and of the roster the node holds now: naming an old version with
// one voter does not make one vote a majority.
func TestQuorumOfBothRosters(t *testing.T) {
	c := newCast(t, 3)
	var ms []crypto.Member
	for i, m := range members {
		ms = append(ms, crypto.Member{Card: c.ids[i].Card(), Roles: m.roles})
	}
	genesis := func(voters ...*crypto.Identity) *crypto.Roster {
		var vs []crypto.MemberID
		for _, v := range voters {
			vs = append(vs, v.ID())
		}
		g, err := crypto.NewGenesis(crypto.GenesisSpec{Network: "quorum-test", Created: t0, Members: ms, Voters: vs, Admins: vs[:1]}, c.ids[0])
		if err != nil {
			t.Fatal(err)
		}
		return g.Roster()
	}
	enisa, fr, pres := c.byName["enisa"], c.byName["cyclone-fr"], c.byName["presidency"]
	one, three := genesis(enisa), genesis(enisa, fr, pres)
	for _, tc := range []struct {
		name    string
		signers []*crypto.Identity
		at, now *crypto.Roster
		want    bool
	}{
		{"one voter of a one-voter version, three voters now", []*crypto.Identity{enisa}, one, three, false},
		{"one voter of a one-voter version, state machine alone", []*crypto.Identity{enisa}, one, nil, true},
		{"two of three", []*crypto.Identity{enisa, fr}, three, three, true},
		{"one of three", []*crypto.Identity{pres}, three, three, false},
	} {
		var ids []crypto.MemberID
		for _, s := range tc.signers {
			ids = append(ids, s.ID())
		}
		if got := quorum(ids, tc.at, tc.now); got != tc.want {
			t.Errorf("%s: quorum %v, want %v", tc.name, got, tc.want)
		}
	}
}
