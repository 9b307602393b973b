package sync

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// A peer that sends garbage is refused, scored down and, after repeated
// offences, disconnected; nothing invalid is stored and the node keeps
// serving others.
func TestMalformedPeer(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{})
	evil := w.node(t, "cert-de", nodeOpt{noStart: true})
	good := w.node(t, "cert-lu", nodeOpt{})
	before := a.store.Digest()

	frames := map[string][]byte{
		"garbage":         append(binary.AppendUvarint(nil, 5), []byte("xxxxx")...),
		"oversized frame": binary.AppendUvarint(nil, maxFrame+1),
		"no hello":        frame(t, &message{Type: msgEnd}),
	}
	connect(t, evil, a)
	offences := 0
	for name, f := range frames {
		s, err := evil.host.NewStream(context.Background(), a.host.ID(), ProtocolSync)
		if err != nil {
			if offences >= 3 {
				break // disconnected, as it should be
			}
			t.Fatalf("%s: %v", name, err)
		}
		s.Write(f)
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		if _, err := s.Read(buf); err == nil {
			t.Errorf("%s: the session went on", name)
		}
		s.Reset()
		offences++
	}
	waitFor(t, 10*time.Second, "offences to be counted", func() bool {
		for _, ps := range a.svc.Peers() {
			if ps.Peer == evil.host.ID() && ps.Offences >= 3 {
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "the bad peer to be disconnected", func() bool {
		return a.host.Network().Connectedness(evil.host.ID()) != network.Connected
	})
	if a.store.Digest() != before {
		t.Error("a bad peer changed the store")
	}
	// The node keeps serving others.
	es := good.post(t, w, 3, log.Routine)
	connect(t, good, a)
	waitFor(t, 10*time.Second, "a good peer to sync", func() bool { return converged(a, good) })
	holdsAll(t, a, es)
}

// A tampered entry inside a proper session is an offence; it is not stored.
func TestTamperedEntryRefused(t *testing.T) {
	w := newWorld(t)
	a := w.node(t, "enisa", nodeOpt{})
	evil := w.node(t, "cert-de", nodeOpt{noStart: true})
	e := evil.post(t, w, 1, log.Routine)[0]
	raw := bytes.Clone(e.Bytes())
	raw[len(raw)-10] ^= 1 // inside the signature
	connect(t, evil, a)
	// a may start a session with evil on connect (evil has no handler, so
	// it fails): startSession waits for it to end, or a would answer "busy".
	s, c := startSession(t, evil, a)
	defer s.Reset()
	c.send(&message{Type: msgFrontier})
	c.send(&message{Type: msgEntries, Entries: [][]byte{raw}})
	c.send(&message{Type: msgEnd})
	waitFor(t, 10*time.Second, "the offence", func() bool {
		for _, ps := range a.svc.Peers() {
			if ps.Peer == evil.host.ID() && ps.Offences >= 1 {
				return true
			}
		}
		return false
	})
	if _, err := a.store.Get(e.ID()); err == nil {
		t.Error("a tampered entry was stored")
	}
}

func frame(t testing.TB, m *message) []byte {
	t.Helper()
	b, err := crypto.MarshalCanonical(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}
