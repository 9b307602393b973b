package node

import (
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/transport"
)

// Regression: when two nodes connected, each service kicked an
// anti-entropy session with the other, and both sessions sent the whole
// backlog (BenchmarkSatelliteBacklog/mode=connect measured 2.0 × the
// backlog on the wire). Now only the side with the lower peer ID starts one.
// Over a 16 Mbit/s emulated link, so two sessions would overlap every time.
func TestConnectMovesBacklogOnce(t *testing.T) {
	seed := itSeed(t)
	c := newITCast(t, 2, 1)
	faults := transport.NewFaults(seed, nil)
	tlog := newITLog(t)
	o := itOpts{Faults: faults, Seed: seed, NoConsensus: true}
	holder, lacker := newITStack(t, c, 0, o, tlog), newITStack(t, c, 1, o, tlog)
	faults.SetLink(holder.peerID(), lacker.peerID(), transport.Link{Latency: 5 * time.Millisecond, Bandwidth: 16_000_000})
	backlog, _ := itAppendBacklog(t, holder, c.key, 2<<20, 1024, 64)
	holder.start()
	lacker.start()
	if err := lacker.host.AddPeer(holder.addrInfo()); err != nil {
		t.Fatal(err)
	}
	itWaitFor(t, time.Minute, "convergence", func() bool { return lacker.store.Digest() == holder.store.Digest() })
	// The sessions of the connect, and one periodic round at least (2 s on
	// the LAN profile), have finished once each side counts two.
	itWaitFor(t, time.Minute, "the sessions to finish", func() bool {
		return itPeerStats(lacker.sync, holder.peerID()).Sessions >= 2 && itPeerStats(holder.sync, lacker.peerID()).Sessions >= 2
	})
	ps := itPeerStats(lacker.sync, holder.peerID())
	if ratio := float64(ps.BytesRecv) / float64(backlog); ratio > 1.10 {
		t.Errorf("%d sessions moved %d B for a %d B backlog: %.2f × the backlog, want ≤ 1.10", ps.Sessions, ps.BytesRecv, backlog, ratio)
	}
}
