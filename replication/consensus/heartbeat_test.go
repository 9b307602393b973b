package consensus

import (
	"errors"
	"io"
	"net"
	"slices"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/replication/store"
)

// raftNode is one engine on raft.NetworkTransport (as in production,
// over an in-memory stream layer), whose stable store can hold the write
// of a term and whose log store can hold a write, and a transport to send
// it RPCs from "leaders".
type raftNode struct {
	eng     *Engine
	id      raft.ServerID
	leaders *raft.NetworkTransport
	stable  *gatedTermStore
	logs    *gatedLogStore
	term    uint64 // the term after start
}

func newRaftNode(t *testing.T) *raftNode {
	t.Helper()
	c := newCast(t, 3)
	id := c.ids[6] // the observer: not a voter, it never campaigns (node47 was one too)
	st, err := store.Open("", c.genesis, id, store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pn := newPipeNet()
	node := raft.NewNetworkTransport(pn.listen("node"), 3, 2*time.Second, io.Discard)
	leaders := raft.NewNetworkTransport(pn.listen("leaders"), 3, 2*time.Second, io.Discard)
	t.Cleanup(func() { leaders.Close() })
	mem := raft.NewInmemStore()
	n := &raftNode{id: ServerID(id.Card()), leaders: leaders,
		stable: &gatedTermStore{InmemStore: mem, started: make(chan struct{}), written: make(chan struct{})},
		logs:   &gatedLogStore{InmemStore: mem, release: make(chan struct{})}}
	n.eng, err = New(Config{Store: st, Identity: id, Genesis: c.genesis, Transport: node,
		Snapshots: raft.NewInmemSnapshotStore(), RaftLogs: n.logs, RaftStable: n.stable})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.eng.Close() })
	n.term = n.eng.Raft().CurrentTerm()
	return n
}

// heartbeat sends a heartbeat of term from leader (what raft.NetworkTransport
// takes for one: no previous entry, no entries, no commit index).
func (n *raftNode) heartbeat(term uint64, leader string) (raft.AppendEntriesResponse, error) {
	req := &raft.AppendEntriesRequest{RPCHeader: n.header(leader), Term: term}
	var resp raft.AppendEntriesResponse
	err := n.leaders.AppendEntries(n.id, "node", req, &resp)
	return resp, err
}

// appendEntries sends an append entries of term after the bootstrap entry
// (index 1, term 1): Raft's main goroutine handles it.
func (n *raftNode) appendEntries(term uint64, leader string, entries ...*raft.Log) (raft.AppendEntriesResponse, error) {
	req := &raft.AppendEntriesRequest{RPCHeader: n.header(leader), Term: term, PrevLogEntry: 1, PrevLogTerm: 1, Entries: entries}
	var resp raft.AppendEntriesResponse
	err := n.leaders.AppendEntries(n.id, "node", req, &resp)
	return resp, err
}

func (n *raftNode) header(leader string) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(leader), Addr: []byte("leaders")}
}

// TestHeartbeatsDoNotLowerTheTerm: a node in term T gets the heartbeat of
// a leader of term T+1 and, at the same time, an RPC of a leader of term
// T+2: another heartbeat (each on its own connection), or an append
// entries (handled by Raft's main goroutine). It must end in T+2, and its
// term must never go back, in memory or in its stable store.
//
// The interleaving that lowered it is forced: the stable store holds the
// write of term T+1 until T+2 has been written (or 300 ms). On
// hashicorp/raft's unguarded fast path, the heartbeat of T+1 passes the
// "newer term?" check against T, T+2 is written meanwhile, and T+1 is
// written last: the node ends in T+1. That is the "Raft term 5 after 6"
// the 50-node scenario saw on node47. Gated, the heartbeat of T+1 goes to
// the main goroutine, and T+2 waits for it.
func TestHeartbeatsDoNotLowerTheTerm(t *testing.T) {
	for _, second := range []string{"heartbeat", "append entries"} {
		t.Run("then "+second, func(t *testing.T) {
			n := newRaftNode(t)
			n.stable.hold(n.term+1, n.term+2)
			first := make(chan error, 1)
			go func() {
				_, err := n.heartbeat(n.term+1, "deposed-leader")
				first <- err
			}()
			select {
			case <-n.stable.started:
			case <-time.After(5 * time.Second):
				t.Fatal("the heartbeat of the first leader never reached the stable store")
			}
			var err error
			if second == "heartbeat" {
				_, err = n.heartbeat(n.term+2, "new-leader")
			} else {
				_, err = n.appendEntries(n.term+2, "new-leader")
			}
			if err != nil {
				t.Fatalf("%s of term %d: %v", second, n.term+2, err)
			}
			if err := <-first; err != nil {
				t.Fatalf("heartbeat of term %d: %v", n.term+1, err)
			}
			writes := n.stable.terms()
			for i := 1; i < len(writes); i++ {
				if writes[i] < writes[i-1] {
					t.Errorf("terms written to the stable store, in order: %v: it went back", writes)
					break
				}
			}
			newest := n.term
			if len(writes) > 0 {
				newest = max(newest, slices.Max(writes))
			}
			if got := n.eng.Raft().CurrentTerm(); got != newest {
				t.Errorf("term %d after %v were written: it went back", got, writes)
			}
			if got, err := n.stable.GetUint64([]byte(keyCurrentTerm)); err != nil || got != newest {
				t.Errorf("stable store holds term %d (%v) after %v were written", got, err, writes)
			}
			if newest != n.term+2 {
				t.Errorf("term %d after the %s of term %d", newest, second, n.term+2)
			}
		})
	}
}

// TestSteadyHeartbeatsAnsweredWhileRaftIsBusy: the heartbeats of the
// leader a follower follows are answered while Raft's main goroutine is
// busy writing entries, as before: a leader that does not hear from a
// quorum within its lease (250 ms on a LAN) steps down, and handing every
// heartbeat to the main goroutine multiplied the elections of the 50-node
// scenario.
func TestSteadyHeartbeatsAnsweredWhileRaftIsBusy(t *testing.T) {
	n := newRaftNode(t)
	term := n.term + 1
	if resp, err := n.appendEntries(term, "leader"); err != nil || !resp.Success {
		t.Fatalf("append entries of term %d: %v, success %v", term, err, resp.Success)
	}
	n.logs.block()
	busy := make(chan error, 1)
	go func() {
		_, err := n.appendEntries(term, "leader", &raft.Log{Index: 2, Term: term, Type: raft.LogNoop})
		busy <- err
	}()
	select {
	case <-n.logs.blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the append entries never reached the log store")
	}
	start := time.Now()
	resp, err := n.heartbeat(term, "leader")
	took := time.Since(start)
	close(n.logs.release)
	if err != nil || !resp.Success {
		t.Fatalf("heartbeat of the leader's term while Raft writes: %v, success %v", err, resp.Success)
	}
	if took > 200*time.Millisecond {
		t.Errorf("heartbeat answered in %s while Raft wrote entries: it waited for the write", took)
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
}

// TestGatedTransportKeepsPreVote: the gate keeps what Raft asks a
// transport for (pre-vote; closing on shutdown).
func TestGatedTransportKeepsPreVote(t *testing.T) {
	g := newHeartbeatGate()
	defer g.close()
	_, inmem := raft.NewInmemTransport("a")
	if _, ok := g.transport(inmem).(raft.WithPreVote); !ok {
		t.Error("pre-vote lost")
	}
	if _, ok := g.transport(inmem).(raft.WithClose); !ok {
		t.Error("close lost")
	}
	if _, ok := g.transport(noPreVote{inmem}).(raft.WithPreVote); ok {
		t.Error("pre-vote offered by a transport without it")
	}
}

type noPreVote struct{ raft.Transport }

// gatedTermStore holds the write of one term (held) until a later one
// has been written, or 300 ms; it records the terms written, in order.
type gatedTermStore struct {
	*raft.InmemStore
	mu          gosync.Mutex
	held, later uint64
	written     chan struct{} // closed when the later term is written
	started     chan struct{} // closed when the held write begins
	startOnce   gosync.Once
	writtenOnce gosync.Once
	log         []uint64
}

func (g *gatedTermStore) hold(held, later uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held, g.later, g.log = held, later, nil
}

func (g *gatedTermStore) terms() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.log)
}

func (g *gatedTermStore) SetUint64(key []byte, v uint64) error {
	g.mu.Lock()
	held, later := g.held, g.later
	g.mu.Unlock()
	if string(key) != keyCurrentTerm || held == 0 {
		return g.InmemStore.SetUint64(key, v)
	}
	if v == held {
		g.startOnce.Do(func() { close(g.started) })
		select {
		case <-g.written:
		case <-time.After(300 * time.Millisecond):
		}
	}
	g.mu.Lock()
	err := g.InmemStore.SetUint64(key, v)
	g.log = append(g.log, v)
	g.mu.Unlock()
	if v >= later {
		g.writtenOnce.Do(func() { close(g.written) })
	}
	return err
}

// gatedLogStore blocks StoreLogs, once block was called, until release
// is closed.
type gatedLogStore struct {
	*raft.InmemStore
	on      atomic.Bool
	blocked chan struct{}
	release chan struct{}
}

func (g *gatedLogStore) block() {
	g.blocked = make(chan struct{})
	g.on.Store(true)
}

func (g *gatedLogStore) StoreLogs(logs []*raft.Log) error {
	if g.on.CompareAndSwap(true, false) {
		close(g.blocked)
		<-g.release
	}
	return g.InmemStore.StoreLogs(logs)
}

func (g *gatedLogStore) StoreLog(l *raft.Log) error { return g.StoreLogs([]*raft.Log{l}) }

// pipeNet is a raft.StreamLayer network in memory (net.Pipe).
type pipeNet struct {
	mu sync1
	ls map[string]*pipeLayer
}

func newPipeNet() *pipeNet { return &pipeNet{ls: map[string]*pipeLayer{}} }

func (n *pipeNet) listen(addr string) *pipeLayer {
	l := &pipeLayer{net: n, addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
	n.mu.Lock()
	n.ls[addr] = l
	n.mu.Unlock()
	return l
}

type pipeLayer struct {
	net   *pipeNet
	addr  string
	conns chan net.Conn
	done  chan struct{}
	once  gosync.Once
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

func (l *pipeLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeLayer) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeLayer) Addr() net.Addr { return pipeAddr(l.addr) }

func (l *pipeLayer) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	l.net.mu.Lock()
	dst := l.net.ls[string(a)]
	l.net.mu.Unlock()
	if dst == nil {
		return nil, errors.New("pipe: no such address " + string(a))
	}
	mine, theirs := net.Pipe()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case dst.conns <- theirs:
		return mine, nil
	case <-dst.done:
	case <-t.C:
	}
	mine.Close()
	theirs.Close()
	return nil, errors.New("pipe: cannot reach " + string(a))
}

// TestClosedGateAnswersWithTheRightType: an RPC that arrives as the node
// stops is answered with an error and an empty response of its type
// (raft.InmemTransport's pipeline panicked on a nil one).
func TestClosedGateAnswersWithTheRightType(t *testing.T) {
	g := newHeartbeatGate()
	g.close()
	respCh := make(chan raft.RPCResponse, 1)
	g.heartbeat(func(raft.RPC) { t.Error("the fast path took a heartbeat with no Raft behind it") },
		raft.RPC{Command: &raft.AppendEntriesRequest{Term: 1}, RespChan: respCh})
	resp := <-respCh
	if _, ok := resp.Response.(*raft.AppendEntriesResponse); !ok || !errors.Is(resp.Error, errTransportClosed) {
		t.Errorf("answer %T, %v", resp.Response, resp.Error)
	}
}
