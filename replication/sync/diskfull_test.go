package sync

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// statsOf returns what n's sync service knows of p.
func statsOf(n *node, p peer.ID) PeerStats {
	for _, ps := range n.svc.Peers() {
		if ps.Peer == p {
			return ps
		}
	}
	return PeerStats{Peer: p}
}

// A node whose disk is full stores nothing from its peers, never counts
// that against them, asks none of them for entries, turns away their
// sessions without being blamed either, and catches up by itself once
// space is back.
func TestDiskFullPausesSync(t *testing.T) {
	w := newWorld(t)
	var free atomic.Uint64
	free.Store(1 << 40)
	a := w.node(t, "enisa", nodeOpt{})
	b := w.node(t, "cert-lu", nodeOpt{freeSpace: func() (uint64, error) { return free.Load(), nil }})
	acked := a.post(t, w, 5, log.Routine)
	free.Store(0)
	before := b.store.Digest()

	connect(t, a, b)
	ctx := context.Background()
	// b asks for nothing: its own sessions stop before the first message.
	_, err := b.svc.SyncWith(ctx, a.host.ID())
	if !errors.Is(err, store.ErrDiskFull) {
		t.Fatalf("b's session on a full disk: %v, want ErrDiskFull", err)
	}
	// a's session is turned away with a reason.
	var aerr error
	waitFor(t, 10*time.Second, "a session from a to run", func() bool {
		_, aerr = a.svc.SyncWith(ctx, b.host.ID())
		return !errors.Is(aerr, errBusy)
	})
	if aerr == nil || !strings.Contains(aerr.Error(), "disk full") {
		t.Fatalf("a's session with the full node: %v, want a disk-full refusal", aerr)
	}
	// A push is dropped; an ingest that fails is b's trouble, not a's.
	acked = append(acked, a.post(t, w, 2, log.Flash)...)
	added, _, err := b.svc.ingest(a.host.ID(), pathSessionStarted, acked)
	if !errors.Is(err, store.ErrDiskFull) || added != 0 {
		t.Fatalf("ingest on a full disk: added %d, %v", added, err)
	}
	if b.store.Digest() != before {
		t.Fatal("b stored entries on a full disk")
	}
	if ps := statsOf(b, a.host.ID()); ps.Offences != 0 {
		t.Errorf("b counted %d offences against a for its own full disk (last error %q)", ps.Offences, ps.LastError)
	}
	if ps := statsOf(a, b.host.ID()); ps.Offences != 0 {
		t.Errorf("a counted %d offences against b for turning it away (last error %q)", ps.Offences, ps.LastError)
	}
	if ps := statsOf(b, a.host.ID()); ps.Failures != 0 {
		t.Errorf("b counted %d failed sessions with a for its own full disk", ps.Failures)
	}
	if !b.svc.paused.Load() {
		t.Error("b's sync is not paused")
	}

	// Space is back: b resumes by itself (its anti-entropy interval is an
	// hour: the disk recheck does it) and fetches everything.
	free.Store(1 << 40)
	waitFor(t, 20*time.Second, "b to catch up once space is back", func() bool { return converged(a, b) })
	holdsAll(t, b, acked)
	if b.svc.paused.Load() {
		t.Error("b's sync still paused")
	}
	if ps := statsOf(b, a.host.ID()); ps.Offences != 0 {
		t.Errorf("offences against a: %d", ps.Offences)
	}
}
