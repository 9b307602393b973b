package transport

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
)

// The reconnect loop. libp2p dials a peer only when asked, and after a
// failure it refuses to redial for up to 5 minutes (swarm dial backoff):
// far too long for a crisis network healing from a partition. So one
// goroutine keeps every roster member (and static peer and relay)
// connected, with its own backoff: exponential from the profile's
// ReconnectBase to its ReconnectMax, with "equal jitter" (a wait in
// [b/2, b)) so that the nodes of a healed partition do not all dial at
// the same instant. It clears libp2p's backoff before each of its dials.

// relayRenewBefore is how long before its expiry a relay reservation is
// renewed (libp2p's reservations last an hour).
const relayRenewBefore = 5 * time.Minute

type dialState struct {
	backoff time.Duration // 0: none
	next    time.Time     // no dial before this
	dialing bool
	since   time.Time // connected since; zero when not connected
}

type loopResult struct {
	p       peer.ID
	reserve bool      // a relay reservation, not a dial
	expiry  time.Time // of the reservation
	err     error
}

// wake asks the loop to look at p now; reset also forgets p's backoff.
// It never blocks: libp2p's notifiers and mDNS call it.
func (t *Host) wake(p peer.ID, reset bool) {
	t.wakeMu.Lock()
	t.woken[p] = t.woken[p] || reset
	t.wakeMu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// wakeAll wakes every target; with reset, it also clears libp2p's dial
// backoff and the loop's, so that all dial at once (after a heal).
func (t *Host) wakeAll(reset bool) {
	for p := range t.targets() {
		if reset {
			t.clearSwarmBackoff(p)
		}
		t.wake(p, reset)
	}
}

func (t *Host) takeWoken() map[peer.ID]bool {
	t.wakeMu.Lock()
	defer t.wakeMu.Unlock()
	w := t.woken
	t.woken = map[peer.ID]bool{}
	return w
}

func (t *Host) clearSwarmBackoff(p peer.ID) {
	if sw, ok := t.h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}

// targets are the peers the loop keeps connected: active roster members,
// static peers and relays that the gate admits.
func (t *Host) targets() map[peer.ID]bool {
	out := map[peer.ID]bool{}
	for _, m := range t.Roster().Members() {
		if p := m.Card.PeerID(); !m.Revoked && p != t.self {
			out[p] = true
		}
	}
	for _, ai := range append(append([]peer.AddrInfo(nil), t.static...), t.relays...) {
		if ai.ID != t.self && t.gate.admits(ai.ID) {
			out[ai.ID] = true
		}
	}
	return out
}

func (t *Host) maintain() {
	defer t.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the dials in flight; Close waits for them
	rng := rand.New(rand.NewPCG(t.cfg.JitterSeed, t.cfg.JitterSeed>>1|1))
	states := map[peer.ID]*dialState{}
	resv := map[peer.ID]*dialState{}
	results := make(chan loopResult)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var probe <-chan time.Time
	if t.cfg.RTTProbeInterval > 0 {
		tk := time.NewTicker(t.cfg.RTTProbeInterval)
		defer tk.Stop()
		probe = tk.C
	}
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-timer.C:
		case <-t.kick:
		case r := <-results:
			if r.reserve {
				t.reserved(resv, r, rng)
			} else {
				t.dialed(states, r, rng)
			}
		case <-probe:
			t.probeRTTs(ctx)
		case <-sweep.C:
			t.sweepGroups()
		}
		next := t.pass(ctx, states, results, rng)
		if t.cfg.Relay.Client {
			next = min(next, t.reservePass(ctx, resv, results))
		}
		timer.Reset(max(next, 0))
	}
}

// pass starts the dials that are due and returns how long until the next.
func (t *Host) pass(ctx context.Context, states map[peer.ID]*dialState, results chan<- loopResult, rng *rand.Rand) time.Duration {
	now := time.Now()
	next := now.Add(time.Minute) // look again at least this often
	woken := t.takeWoken()
	targets := t.targets()
	for p := range states {
		if !targets[p] {
			delete(states, p)
		}
	}
	for p := range targets {
		st := states[p]
		if st == nil {
			st = &dialState{}
			states[p] = st
		}
		prof := t.ProfileFor(p)
		if reset, ok := woken[p]; ok {
			st.next = now
			if reset {
				st.backoff = 0
			}
		}
		if t.h.Network().Connectedness(p) == network.Connected {
			if st.since.IsZero() {
				st.since = now
			}
			if st.backoff > 0 && now.Sub(st.since) >= prof.ReconnectMax {
				st.backoff = 0 // stable again
			}
			continue
		}
		if !st.since.IsZero() { // the connection was just lost
			if now.Sub(st.since) < prof.ReconnectMax {
				// It did not last: a flapping peer must not be
				// redialled at full speed.
				st.backoff = grow(st.backoff, prof)
				st.next = now.Add(jitter(st.backoff, rng))
			} else {
				st.backoff = 0
			}
			st.since = time.Time{}
		}
		if st.dialing {
			continue
		}
		if len(t.h.Peerstore().Addrs(p)) == 0 {
			continue // mDNS, AddPeer or identify will wake the loop
		}
		if now.Before(st.next) {
			next = earliest(next, st.next)
			continue
		}
		st.dialing = true
		t.stats.dials.Add(1)
		t.wg.Add(1)
		go t.dial(ctx, p, prof.DialTimeout, results)
	}
	return time.Until(next)
}

func (t *Host) dial(ctx context.Context, p peer.ID, timeout time.Duration, results chan<- loopResult) {
	defer t.wg.Done()
	t.clearSwarmBackoff(p)
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The swarm's own dial timeout is the slowest profile's; this peer's
	// profile may want less.
	dctx = network.WithDialPeerTimeout(dctx, timeout)
	if t.h.Network().Connectedness(p) == network.Limited {
		// Only relayed: try for a direct connection. (A peer with no
		// connection at all is dialled by any route, relays included.)
		dctx = network.WithForceDirectDial(dctx, "crisismesh reconnect")
	}
	err := t.h.Connect(dctx, peer.AddrInfo{ID: p})
	if err == nil && t.h.Network().Connectedness(p) != network.Connected {
		// Connected through a relay only: keep trying for a direct
		// connection, at the backoff's pace rather than at once.
		err = errLimitedOnly
	}
	select {
	case results <- loopResult{p: p, err: err}:
	case <-ctx.Done():
	}
}

// errLimitedOnly: the peer is reachable through a relay only.
var errLimitedOnly = errors.New("transport: only a relayed (limited) connection")

func (t *Host) dialed(states map[peer.ID]*dialState, r loopResult, rng *rand.Rand) {
	st := states[r.p]
	if st == nil {
		return
	}
	st.dialing = false
	if r.err == nil {
		st.next = time.Now()
		return
	}
	t.stats.dialFailures.Add(1)
	st.backoff = grow(st.backoff, t.ProfileFor(r.p))
	wait := jitter(st.backoff, rng)
	st.next = time.Now().Add(wait)
	t.log.Debug("dial failed", "remote", r.p, "retry_in", wait, "err", r.err)
}

// reservePass keeps a reservation on every configured relay.
func (t *Host) reservePass(ctx context.Context, resv map[peer.ID]*dialState, results chan<- loopResult) time.Duration {
	now := time.Now()
	next := now.Add(time.Minute)
	for _, ai := range t.relays {
		st := resv[ai.ID]
		if st == nil {
			st = &dialState{}
			resv[ai.ID] = st
		}
		if st.dialing {
			continue
		}
		t.resvMu.Lock()
		exp, ok := t.resv[ai.ID]
		t.resvMu.Unlock()
		due := st.next
		if ok && exp.Add(-relayRenewBefore).After(due) {
			due = exp.Add(-relayRenewBefore)
		}
		// A reservation dies with the connection to the relay.
		if ok && t.h.Network().Connectedness(ai.ID) != network.Connected {
			due = st.next
		}
		if now.Before(due) {
			next = earliest(next, due)
			continue
		}
		st.dialing = true
		t.wg.Add(1)
		go func(ai peer.AddrInfo, timeout time.Duration) {
			defer t.wg.Done()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			r, err := client.Reserve(rctx, t.h, ai)
			cancel()
			res := loopResult{p: ai.ID, reserve: true, err: err}
			if err == nil {
				res.expiry = r.Expiration
			}
			select {
			case results <- res:
			case <-ctx.Done():
			}
		}(ai, t.ProfileFor(ai.ID).DialTimeout)
	}
	return time.Until(next)
}

func (t *Host) reserved(resv map[peer.ID]*dialState, r loopResult, rng *rand.Rand) {
	st := resv[r.p]
	if st == nil {
		return
	}
	st.dialing = false
	t.resvMu.Lock()
	defer t.resvMu.Unlock()
	if r.err != nil {
		delete(t.resv, r.p)
		st.backoff = grow(st.backoff, t.ProfileFor(r.p))
		st.next = time.Now().Add(jitter(st.backoff, rng))
		t.log.Warn("relay reservation failed", "relay", r.p, "retry_in", time.Until(st.next), "err", r.err)
		return
	}
	st.backoff = 0
	st.next = time.Now()
	t.resv[r.p] = r.expiry
	t.log.Info("relay reservation", "relay", r.p, "expires", r.expiry)
}

// probeRTTs measures the round trip to every connected target, one probe
// round at a time.
func (t *Host) probeRTTs(ctx context.Context) {
	if t.probing.Swap(true) {
		return
	}
	var peers []peer.ID
	for p := range t.targets() {
		if t.h.Network().Connectedness(p) == network.Connected {
			peers = append(peers, p)
		}
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.probing.Store(false)
		for _, p := range peers {
			pctx, cancel := context.WithTimeout(ctx, t.ProfileFor(p).DialTimeout)
			if rtt, err := t.MeasureRTT(pctx, p); err == nil {
				t.log.Debug("round trip", "remote", p, "rtt", rtt, "profile", t.ProfileFor(p).Name)
			}
			cancel()
		}
	}()
}

func (t *Host) sweepGroups() {
	live := map[connKey]bool{}
	for _, c := range t.h.Network().Conns() {
		live[keyOfNetworkConn(c)] = true
	}
	t.groups.sweep(live, 30*time.Second)
}

func grow(b time.Duration, prof Profile) time.Duration {
	if b <= 0 {
		return prof.ReconnectBase
	}
	return min(2*b, prof.ReconnectMax)
}

// jitter returns a wait in [b/2, b).
func jitter(b time.Duration, rng *rand.Rand) time.Duration {
	if b <= 1 {
		return b
	}
	return b/2 + time.Duration(rng.Int64N(int64(b/2)))
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
