package sync

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/crisismesh/crisismesh/replication/log"
)

// In a mesh, every peer that learns an entry relays it on; before push/2
// each receiver got a copy from the author and one from every relay (the
// relays could not know the receiver held it). Relays now offer, and the
// receiver says what it holds or is already receiving, after waiting
// briefly for the author's own push (authorFirst): each entry crosses
// into each receiver about once (1.07–1.11× its size with the offers'
// and heads' framing; 1.2–1.6× before authorFirst, when a relay's offer
// often arrived before the author's push).
func TestRelayedEntriesReachEachPeerOnce(t *testing.T) {
	w := newWorld(t)
	names := []string{"enisa", "cert-lu", "cert-fr", "cert-de"}
	var ns []*node
	for _, name := range names {
		ns = append(ns, w.node(t, name, nodeOpt{}))
	}
	for i := range ns {
		for j := i + 1; j < len(ns); j++ {
			connect(t, ns[i], ns[j])
		}
	}
	waitFor(t, 20*time.Second, "initial convergence", func() bool { return converged(ns...) })
	into := func(r *node) int64 { // bytes the others sent r
		var sum int64
		for _, s := range ns {
			if s != r {
				sum += statsOf(s, r.host.ID()).BytesSent
			}
		}
		return sum
	}
	var before []int64
	for _, r := range ns {
		before = append(before, into(r))
	}
	author := ns[0]
	var acked []*log.Entry
	size := 0
	for range 30 {
		es := author.post(t, w, 1, log.Routine)
		acked = append(acked, es...)
		size += es[0].Size()
		// One at a time, as people post: each is its own push.
		waitFor(t, 10*time.Second, "the entry everywhere", func() bool { return converged(ns...) })
	}
	for i, r := range ns[1:] {
		holdsAll(t, r, acked)
		got := into(r) - before[i+1]
		ratio := float64(got) / float64(size)
		t.Logf("%s received %d bytes for %d bytes of entries: %.2f× traffic %+v", r.name, got, size, ratio, r.svc.Traffic())
		if ratio > 1.25 {
			t.Errorf("%s received %.2f× the entries' bytes, want about 1× (≤ 1.25×)", r.name, ratio)
		}
	}
}

// The heads a push announces count as incoming while its entries travel:
// a session or offer meanwhile is told we hold them (and does not send
// them again); when the push ends short, the peers told so are asked for
// a session.
func TestPushHeadsCountAsIncoming(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	// x serves pushes only: its kick channel stays ours to read.
	x := w.node(t, "cert-lu", nodeOpt{noStart: true})
	x.host.SetStreamHandler(ProtocolPush, x.svc.handlePush)
	pusher := w.node(t, "cert-fr", nodeOpt{noStart: true})
	a.post(t, w, 5, log.Routine)
	theirs := a.store.Frontier()
	author := a.id.ID()
	connect(t, pusher, x)
	s, err := pusher.host.NewStream(context.Background(), x.host.ID(), ProtocolPush)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := s.Write(frame(t, &message{Type: msgHeads, Frontier: encodeFrontier(log.Frontier{author: theirs[author]})})); err != nil {
		t.Fatal(err)
	}
	other := x.svc.newTransfer() // a session with peer-two
	waitFor(t, 10*time.Second, "the announced heads to count as incoming", func() bool {
		return x.svc.advertised(other, "peer-two")[author] == theirs[author]
	})
	// An offer of the same entries from another relay gets "I have them".
	if got := x.svc.claim(x.svc.newTransfer(), "peer-three", log.Frontier{author: theirs[author]})[author]; got != theirs[author] {
		t.Errorf("an offer while the push runs: answered %+v, want %+v", got, theirs[author])
	}
	s.Reset() // the push dies before its entries
	waitFor(t, 10*time.Second, "the dead push to be forgotten", func() bool {
		return x.svc.advertised(other, "peer-two")[author] == x.store.Frontier()[author]
	})
	kicked := map[string]bool{}
	for len(kicked) < 2 {
		select {
		case p := <-x.svc.kick:
			kicked[string(p)] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("peers told x was receiving a's feed were not all asked again: %v", kicked)
		}
	}
	if !kicked["peer-two"] || !kicked["peer-three"] {
		t.Errorf("kicked %v, want peer-two and peer-three", kicked)
	}
}

// An offer of entries the receiver holds is answered with its frontier,
// and the offerer sends nothing but end; an offer of new entries brings
// them.
func TestOfferSendsOnlyWhatIsLacking(t *testing.T) {
	w := newWorld(t)
	// Neither b nor c runs its own pushes or sessions: c only serves
	// pushes, b's are the test's.
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	b := w.node(t, "cert-lu", nodeOpt{noStart: true})
	c := w.node(t, "cert-fr", nodeOpt{noStart: true})
	c.host.SetStreamHandler(ProtocolPush, c.svc.handlePush)
	es := a.post(t, w, 4, log.Routine)
	mustIngestAll(t, b, es)
	mustIngestAll(t, c, es)
	connect(t, b, c)
	// Both hold all four; b offers them again: nothing but end.
	sent, n, err := b.svc.push(context.Background(), c.host.ID(), es, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 0 || n > 512 {
		t.Errorf("offer of held entries sent %d entries, %d bytes; want none, a few hundred bytes", len(sent), n)
	}
	more := a.post(t, w, 2, log.Routine)
	mustIngestAll(t, b, more)
	sent, _, err = b.svc.push(context.Background(), c.host.ID(), append(es, more...), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || sent[0].ID() != more[0].ID() {
		t.Errorf("offer of 2 new entries among held ones sent %d", len(sent))
	}
	waitFor(t, 10*time.Second, "the offered entries stored", func() bool { return converged(b, c) })
	holdsAll(t, c, more)
	if got := statsOf(c, b.host.ID()).Offences; got != 0 {
		t.Errorf("honest offers counted as %d offences", got)
	}
}

// A node still serves push/1 (entries only) for peers that do not speak
// push/2, and a push/2 stream that does not start with heads or an offer
// is an offence.
func TestPushV1ServedAndBadPush2Refused(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	x := w.node(t, "cert-lu", nodeOpt{})
	old := w.node(t, "cert-fr", nodeOpt{noStart: true})
	es := a.post(t, w, 2, log.Routine)
	mustIngestAll(t, old, es)
	connect(t, old, x)
	send := func(proto protocol.ID, m *message) {
		t.Helper()
		s, err := old.host.NewStream(context.Background(), x.host.ID(), proto)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(frame(t, m)); err != nil {
			t.Fatal(err)
		}
		s.CloseWrite()
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1)
		s.Read(buf) // until the handler closes or resets
		s.Close()
	}
	send(ProtocolPushV1, &message{Type: msgEntries, Entries: [][]byte{es[0].Bytes(), es[1].Bytes()}})
	waitFor(t, 10*time.Second, "the push/1 entries stored", func() bool {
		_, err := x.store.Get(es[1].ID())
		return err == nil
	})
	if got := statsOf(x, old.host.ID()).Offences; got != 0 {
		t.Fatalf("push/1 counted as %d offences", got)
	}
	send(ProtocolPush, &message{Type: msgEntries, Entries: [][]byte{es[0].Bytes()}})
	waitFor(t, 10*time.Second, "the bad push/2 counted as an offence", func() bool {
		return statsOf(x, old.host.ID()).Offences == 1
	})
	if x.host.Network().Connectedness(old.host.ID()) != network.Connected {
		t.Error("one offence disconnected the peer")
	}
}

// A push is in flight until the receiver has stored its entries: when push
// returns, the receiver holds them, so the next push to that peer never
// overlaps it (overlapping pushes of one feed were ingested out of order,
// refused as gaps, and sent again by sessions).
func TestPushReturnsOnceTheReceiverStoredIt(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{noStart: true})
	b := w.node(t, "cert-lu", nodeOpt{noStart: true})
	b.host.SetStreamHandler(ProtocolPush, b.svc.handlePush)
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for round := range 5 {
		es := a.post(t, w, 20, log.Routine)
		sent, _, err := a.svc.push(ctx, b.host.ID(), es, round%2 == 1) // plain pushes and offers
		if err != nil {
			t.Fatalf("round %d: push: %v", round, err)
		}
		if len(sent) != len(es) {
			t.Fatalf("round %d: sent %d of %d entries", round, len(sent), len(es))
		}
		holdsAll(t, b, es) // no waiting: push returned, so b stored them
	}
}

// A receiver that takes the entries but never says it stored them (a
// stalled process, a link cut one way) holds a push back for the push
// timeout only, not for the session timeout: the push then counts as
// sent, as it did before pushes waited for the receiver, and the next one
// may go.
func TestPushToASilentPeerHoldsBackOnlyThePushTimeout(t *testing.T) {
	w := newWorld(t)
	// The session timeout is far beyond the test's deadline: only the
	// push timeout can end the wait.
	a := w.node(t, "enisa", nodeOpt{noStart: true, timing: Timing{ChunkSize: 64 << 10, SessionTimeout: time.Hour, PushTimeout: 200 * time.Millisecond}})
	b := w.node(t, "cert-lu", nodeOpt{noStart: true})
	release := make(chan struct{})
	defer close(release)
	read := make(chan int, 4)
	b.host.SetStreamHandler(ProtocolPush, func(s network.Stream) {
		defer s.Reset()
		c := newConn(s, nil)
		n := 0
		for {
			m, err := c.recv()
			if err != nil {
				break // our side is closed for writing: the pusher waits for us
			}
			n += len(m.Entries)
		}
		read <- n
		<-release // never answer while the test runs
	})
	connect(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for round := range 2 {
		es := a.post(t, w, 3, log.Routine)
		sent, _, err := a.svc.push(ctx, b.host.ID(), es, false)
		if err != nil {
			t.Fatalf("round %d: push: %v, want it counted as sent", round, err)
		}
		if len(sent) != len(es) {
			t.Fatalf("round %d: sent %d of %d entries", round, len(sent), len(es))
		}
		if got := <-read; got != len(es) {
			t.Fatalf("round %d: the receiver read %d entries, want %d", round, got, len(es))
		}
	}
}
