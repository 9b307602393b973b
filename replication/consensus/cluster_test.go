package consensus

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	gosync "sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// cast is a network of seven members; the first n are Raft voters.
type cast struct {
	ids     []*crypto.Identity
	byName  map[string]*crypto.Identity
	genesis *crypto.Genesis
	keyEnt  *log.Entry
}

var (
	castMu sync1
	casts  = map[int]*cast{}
)

type sync1 = gosync.Mutex

var members = []struct {
	name  string
	roles []crypto.Role
}{
	{"enisa", []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}},
	{"cyclone-fr", []crypto.Role{crypto.RoleCyclone}},
	{"presidency", []crypto.Role{crypto.RolePresidency}},
	{"cert-lu", []crypto.Role{crypto.RoleCSIRT}},
	{"cert-de", []crypto.Role{crypto.RoleCSIRT}},
	{"commission", []crypto.Role{crypto.RoleCommission}},
	{"observer", []crypto.Role{crypto.RoleObserver}},
}

func newCast(t testing.TB, voters int) *cast {
	t.Helper()
	castMu.Lock()
	defer castMu.Unlock()
	if c, ok := casts[voters]; ok {
		return c
	}
	c := &cast{byName: map[string]*crypto.Identity{}}
	var ms []crypto.Member
	var vs []crypto.MemberID
	var recips []crypto.Recipient
	for i, m := range members {
		id, err := crypto.NewIdentity(m.name, t0)
		if err != nil {
			t.Fatal(err)
		}
		c.ids = append(c.ids, id)
		c.byName[m.name] = id
		ms = append(ms, crypto.Member{Card: id.Card(), Roles: m.roles})
		if i < voters {
			vs = append(vs, id.ID())
		}
		recips = append(recips, id.Card().Recipient())
	}
	admin := c.ids[0]
	g, err := crypto.NewGenesis(crypto.GenesisSpec{Network: "raft-test", Created: t0, Members: ms, Voters: vs, Admins: vs[:1]}, admin)
	if err != nil {
		t.Fatal(err)
	}
	c.genesis = g
	key, _ := crypto.NewGroupKey("all", 1)
	ke, err := crypto.NewKeyEnvelope(g.NetworkID(), key, recips)
	if err != nil {
		t.Fatal(err)
	}
	es, err := log.Build(admin, g.NetworkID(), log.Tip{}, 0, t0, []log.Draft{{Body: log.Body{Kind: log.KindKey, TLP: log.TLPClear, Payload: ke.Bytes()}}})
	if err != nil {
		t.Fatal(err)
	}
	c.keyEnt = es[0]
	casts[voters] = c
	return c
}

// member is one node of a test cluster.
type member struct {
	id    *crypto.Identity
	store *store.Store
	trans *raft.InmemTransport
	eng   *Engine
}

type cluster struct {
	t       testing.TB
	c       *cast
	members []*member
}

// clusterOpts varies the members of a test cluster.
type clusterOpts struct {
	// now returns member i's clock (nil: time.Now).
	now func(i int) func() time.Time
	// freeSpace returns member i's FreeSpace hook; with it, Raft's log
	// and stable store are the (in-memory) badger store's, under its
	// disk-full guard, instead of raft.InmemStore.
	freeSpace func(i int) func() (uint64, error)
	// trailingLogs: Config.TrailingLogs.
	trailingLogs uint64
}

// newCluster starts nodes for the first n members of the cast (voters and
// non-voters alike), connected all to all with Raft's in-memory transport.
func newCluster(t testing.TB, c *cast, n int) *cluster {
	t.Helper()
	return newClusterWith(t, c, n, clusterOpts{})
}

// newClusterWith is newCluster with options.
func newClusterWith(t testing.TB, c *cast, n int, o clusterOpts) *cluster {
	t.Helper()
	cl := &cluster{t: t, c: c}
	for i := 0; i < n; i++ {
		id := c.ids[i]
		sopts := store.Options{InMemory: true}
		if o.freeSpace != nil {
			sopts.FreeSpace = o.freeSpace(i)
		}
		st, err := store.Open("", c.genesis, id, sopts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Ingest(context.Background(), c.keyEnt); err != nil {
			t.Fatal(err)
		}
		_, trans := raft.NewInmemTransport(raft.ServerAddress(ServerID(id.Card())))
		cl.members = append(cl.members, &member{id: id, store: st, trans: trans})
	}
	for _, a := range cl.members {
		for _, b := range cl.members {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
	for i, m := range cl.members {
		cfg := Config{Store: m.store, Identity: m.id, Genesis: c.genesis, Transport: m.trans,
			Snapshots: raft.NewInmemSnapshotStore(), CheckpointEvery: 200 * time.Millisecond, TrailingLogs: o.trailingLogs}
		if o.freeSpace == nil {
			logs := raft.NewInmemStore()
			cfg.RaftLogs, cfg.RaftStable = logs, logs
		}
		if o.now != nil {
			cfg.Now = o.now(i)
		}
		eng, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.eng = eng
	}
	return cl
}

// startCluster starts nodes for the first n members of a cast with the
// given number of voters, as newCluster does, and closes them when the
// test ends.
func startCluster(t *testing.T, voters, n int) (*cast, *cluster) {
	t.Helper()
	c := newCast(t, voters)
	cl := newCluster(t, c, n)
	t.Cleanup(cl.close)
	return c, cl
}

// adminUpdate has the admin, enisa (the first member), write the roster
// update spec into its log.
func (cl *cluster) adminUpdate(spec crypto.UpdateSpec) {
	cl.t.Helper()
	admin := cl.members[0]
	u, err := crypto.NewUpdate(admin.store.Roster(), spec, admin.id)
	if err != nil {
		cl.t.Fatal(err)
	}
	if _, err := admin.store.AppendRosterUpdate(context.Background(), u); err != nil {
		cl.t.Fatal(err)
	}
}

// openCrisis has l propose cert-lu's opening of a crisis and returns the
// committed result.
func openCrisis(t testing.TB, c *cast, l *member) Result {
	t.Helper()
	res, err := l.eng.Propose(context.Background(), openCmd(t, c, "cert-lu"))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (cl *cluster) close() {
	for _, m := range cl.members {
		m.eng.Close()
		m.store.Close()
	}
}

// isolate cuts m off from every other member (both ways).
func (cl *cluster) isolate(m *member) {
	for _, o := range cl.members {
		if o != m {
			m.trans.Disconnect(o.trans.LocalAddr())
			o.trans.Disconnect(m.trans.LocalAddr())
		}
	}
}

func (cl *cluster) heal() {
	for _, a := range cl.members {
		for _, b := range cl.members {
			if a != b {
				a.trans.Connect(b.trans.LocalAddr(), b.trans)
			}
		}
	}
}

// leader waits (in virtual time) for exactly one leader among ms.
func (cl *cluster) leader(ms ...*member) *member {
	cl.t.Helper()
	if len(ms) == 0 {
		ms = cl.members
	}
	for i := 0; i < 200; i++ {
		var leaders []*member
		for _, m := range ms {
			if m.eng.IsLeader() {
				leaders = append(leaders, m)
			}
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	cl.t.Fatal("no single leader elected")
	return nil
}

// bridgeLogs copies every entry between the stores of ms, as sync would.
func bridgeLogs(t testing.TB, ms ...*member) {
	t.Helper()
	for _, a := range ms {
		es, err := a.store.Entries(nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range ms {
			if a != b {
				if _, err := b.store.Ingest(context.Background(), es...); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func command(t testing.TB, who *crypto.Identity, net crypto.NetworkID, cmd crisis.Command) *crisis.SignedCommand {
	t.Helper()
	if _, err := rand.Read(cmd.ID[:]); err != nil {
		t.Fatal(err)
	}
	sc, err := crisis.Sign(who, net, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func openCmd(t testing.TB, c *cast, who string) *crisis.SignedCommand {
	return command(t, c.byName[who], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindOpen, Title: "ransomware wave", Level: 1})
}

func TestElectAndCommit(t *testing.T) {
	for _, voters := range []int{3, 5} {
		t.Run(fmt.Sprintf("voters=%d", voters), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCast(t, voters)
				cl := newCluster(t, c, voters)
				defer cl.close()
				l := cl.leader()
				res, err := l.eng.Propose(context.Background(), openCmd(t, c, "cert-lu"))
				if err != nil {
					t.Fatalf("propose on the leader: %v", err)
				}
				if res.State.Status != crisis.StatusOpen || res.Index == 0 {
					t.Fatalf("committed state: %+v", res.State)
				}
				// Every member applies the same state at the same index.
				for _, m := range cl.members {
					for i := 0; m.eng.Local().Index < res.Index && i < 100; i++ {
						time.Sleep(50 * time.Millisecond)
					}
					v := m.eng.Local()
					if v.Index < res.Index || v.State.Crisis != res.State.Crisis || v.State.Level != 1 {
						t.Errorf("%s: index %d, state %+v", m.id.Name(), v.Index, v.State.Status)
					}
				}
				// A refusal names the rule and does not change the state.
				esc := command(t, c.byName["cert-lu"], c.genesis.NetworkID(), crisis.Command{Kind: crisis.KindEscalateLevel3, Crisis: res.State.Crisis})
				_, err = l.eng.Propose(context.Background(), esc)
				if !errors.Is(err, crisis.ErrRefused) {
					t.Errorf("csirt escalating to 3: got %v, want a refusal", err)
				}
				lin, err := l.eng.Linearizable(context.Background())
				if err != nil || lin.State.Level != 1 {
					t.Errorf("linearizable read: %v, level %d", err, lin.State.Level)
				}
			})
		})
	}
}

// An isolated leader loses leadership; the majority elects another and
// commits; the minority cannot; after heal everyone agrees.
func TestIsolatedLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 3)
		old := cl.leader()
		cl.isolate(old)
		var rest []*member
		for _, m := range cl.members {
			if m != old {
				rest = append(rest, m)
			}
		}
		nl := cl.leader(rest...)
		res, err := nl.eng.Propose(context.Background(), openCmd(t, c, "cert-lu"))
		if err != nil {
			t.Fatalf("majority commit: %v", err)
		}
		// The isolated node cannot commit: it is no longer leader, or its
		// apply fails for want of a quorum.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = old.eng.apply(ctx, entryCommand, openCmd(t, c, "cert-de").Bytes())
		cancel()
		if err == nil {
			t.Fatal("the isolated old leader committed a command")
		}
		if _, err := old.eng.Linearizable(context.Background()); err == nil {
			t.Error("the isolated node served a linearizable read")
		}
		v := old.eng.Local()
		if v.State.Status == crisis.StatusOpen {
			t.Error("the isolated node shows an uncommitted state")
		}
		cl.heal()
		for i := 0; old.eng.Local().Index < res.Index && i < 200; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if got := old.eng.Local(); got.State.Crisis != res.State.Crisis {
			t.Errorf("after heal the old leader has %+v", got.State.Status)
		}
	})
}

// A proposal made where there is no leader contact travels in the crisis
// log, and the leader commits it; the proposer sees it provisional first.
func TestProposalThroughTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, cl := startCluster(t, 3, 4) // three voters and a non-voter
		l := cl.leader()
		far := cl.members[3]
		cl.isolate(far)
		sc := openCmd(t, c, "cert-lu")
		if _, err := far.eng.Propose(context.Background(), sc); !errors.Is(err, ErrProposed) {
			t.Fatalf("got %v, want ErrProposed", err)
		}
		if v := far.eng.Local(); len(v.Provisional) != 1 {
			t.Fatalf("provisional: %d, want 1", len(v.Provisional))
		}
		// The log travels (sync), Raft does not reach far.
		var o Outcome
		for i := 0; i < 100; i++ {
			bridgeLogs(t, cl.members...)
			time.Sleep(200 * time.Millisecond)
			var ok bool
			if o, ok = l.eng.Outcome(sc.ID()); ok {
				break
			}
		}
		if o.Index == 0 || o.Refused != "" {
			t.Fatalf("outcome on the leader: %+v", o)
		}
		// far learns the committed state from the leader's checkpoint.
		for i := 0; i < 100; i++ {
			bridgeLogs(t, cl.members...)
			time.Sleep(200 * time.Millisecond)
			if v := far.eng.Local(); v.Source == "checkpoint" && v.State.Status == crisis.StatusOpen {
				break
			}
		}
		v := far.eng.Local()
		if v.Source != "checkpoint" || v.State.Status != crisis.StatusOpen || len(v.Provisional) != 0 {
			t.Fatalf("far view: source %s status %v provisional %d", v.Source, v.State.Status, len(v.Provisional))
		}
		if v.Age <= 0 {
			t.Errorf("far view does not say how old it is: age %s", v.Age)
		}
	})
}
