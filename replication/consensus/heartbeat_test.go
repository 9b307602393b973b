package consensus

import (
	"errors"
	"io"
	"net"
	gosync "sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/replication/store"
)

// TestHeartbeatsDoNotLowerTheTerm: the heartbeats of two leaders (terms
// T+1 and T+2) reach a node in term T at once, each on its own connection
// of raft.NetworkTransport, as in production. The node must end in term
// T+2, in memory and in its stable store, whatever order the two are
// handled in.
//
// The interleaving that lowered the term is forced: the store holds the
// write of term T+1 until term T+2 has been written (or 300 ms have
// passed). When heartbeats run concurrently (the transport's fast path,
// which hashicorp/raft v1.8.0 runs beside its main goroutine) both pass
// the "newer term?" check against T, T+2 is stored first and T+1 last:
// the node ends in T+1. This is the "Raft term 5 after 6" the 50-node
// scenario saw on node47. Handled in order, T+2 waits for T+1.
func TestHeartbeatsDoNotLowerTheTerm(t *testing.T) {
	c := newCast(t, 3)
	id := c.ids[6] // the observer: not a voter, it never campaigns (node47 was one too)
	st, err := store.Open("", c.genesis, id, store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pn := newPipeNet()
	node := raft.NewNetworkTransport(pn.listen("node"), 3, 2*time.Second, io.Discard)
	leaders := raft.NewNetworkTransport(pn.listen("leaders"), 3, 2*time.Second, io.Discard)
	defer leaders.Close()
	mem := raft.NewInmemStore()
	stable := &gatedTermStore{InmemStore: mem, started: make(chan struct{}), written: make(chan struct{})}
	eng, err := New(Config{Store: st, Identity: id, Genesis: c.genesis, Transport: node,
		Snapshots: raft.NewInmemSnapshotStore(), RaftLogs: mem, RaftStable: stable})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	term := eng.Raft().CurrentTerm()
	stable.hold(term+1, term+2)

	heartbeat := func(term uint64, leader string) error {
		req := &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(leader), Addr: []byte("leaders")},
			Term:      term,
		}
		var resp raft.AppendEntriesResponse
		return leaders.AppendEntries(raft.ServerID(id.Card().PeerID().String()), "node", req, &resp)
	}
	first := make(chan error, 1)
	go func() { first <- heartbeat(term+1, "deposed-leader") }()
	select {
	case <-stable.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the heartbeat of the first leader never reached the node's stable store")
	}
	if err := heartbeat(term+2, "new-leader"); err != nil {
		t.Fatalf("heartbeat of term %d: %v", term+2, err)
	}
	if err := <-first; err != nil {
		t.Fatalf("heartbeat of term %d: %v", term+1, err)
	}
	if got := eng.Raft().CurrentTerm(); got != term+2 {
		t.Errorf("term %d after the heartbeats of terms %d and %d: it went back", got, term+1, term+2)
	}
	if got, err := mem.GetUint64([]byte("CurrentTerm")); err != nil || got != term+2 {
		t.Errorf("stable store holds term %d (%v), want %d", got, err, term+2)
	}
}

// TestWithoutHeartbeatFastPathKeepsPreVote: hiding the fast path keeps
// what Raft asks a transport for (pre-vote; closing on shutdown).
func TestWithoutHeartbeatFastPathKeepsPreVote(t *testing.T) {
	_, inmem := raft.NewInmemTransport("a")
	if _, ok := withoutHeartbeatFastPath(inmem).(raft.WithPreVote); !ok {
		t.Error("pre-vote lost")
	}
	if _, ok := withoutHeartbeatFastPath(inmem).(raft.WithClose); !ok {
		t.Error("close lost")
	}
	if _, ok := withoutHeartbeatFastPath(noPreVote{inmem}).(raft.WithPreVote); ok {
		t.Error("pre-vote offered by a transport without it")
	}
}

type noPreVote struct{ raft.Transport }

// gatedTermStore holds the write of one term (hold) until a later one
// has been written, or 300 ms.
type gatedTermStore struct {
	*raft.InmemStore
	mu          gosync.Mutex
	held, later uint64
	started     chan struct{} // closed when the held write begins
	written     chan struct{} // closed when the later term is written
	startOnce   gosync.Once
	writtenOnce gosync.Once
}

func (g *gatedTermStore) hold(held, later uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held, g.later = held, later
}

func (g *gatedTermStore) SetUint64(key []byte, v uint64) error {
	g.mu.Lock()
	held, later := g.held, g.later
	g.mu.Unlock()
	if string(key) != "CurrentTerm" || held == 0 {
		return g.InmemStore.SetUint64(key, v)
	}
	if v == held {
		g.startOnce.Do(func() { close(g.started) })
		select {
		case <-g.written:
		case <-time.After(300 * time.Millisecond):
		}
	}
	err := g.InmemStore.SetUint64(key, v)
	if v >= later {
		g.writtenOnce.Do(func() { close(g.written) })
	}
	return err
}

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
