package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/transport"
)

// links of the network faults beyond partitions.
var namedLinks = map[string]func() transport.Link{
	"satellite": transport.SatelliteLink,
	// narrow: a thin terrestrial backup line (an ISDN-era leased line,
	// a congested VPN): 64 kbit/s, 50 ms each way.
	"narrow": func() transport.Link { return transport.Link{Latency: 50 * time.Millisecond, Bandwidth: 64_000} },
	// internet: a long-distance path with room to spare.
	"internet": func() transport.Link { return transport.Link{Latency: 20 * time.Millisecond, Bandwidth: 10_000_000} },
}

// linkOf is the link a "link" step lays.
func linkOf(st Step) transport.Link {
	if st.Link == "custom" {
		return transport.Link{Latency: st.Latency.Duration, Bandwidth: st.Bandwidth, Loss: st.Loss}
	}
	return namedLinks[st.Link]()
}

// ringCuts returns the pairs a majority ring cuts among n nodes: each node
// keeps the nodes within keep ring steps on either side, the fewest that
// make a majority with itself (for 5 nodes, its two neighbours), so that
// every node sees a majority and no two see the same one.
func ringCuts(n int) [][2]int {
	keep := (n/2 + 1) / 2
	var cuts [][2]int
	for a := 0; a < n; a++ {
		for b := a + 1; b < n; b++ {
			d := min(b-a, n-(b-a))
			if d > keep {
				cuts = append(cuts, [2]int{a, b})
			}
		}
	}
	return cuts
}

// bridgeHalves splits every node but the bridge into two halves.
func bridgeHalves(n, bridge int) (left, right []int) {
	var rest []int
	for i := 0; i < n; i++ {
		if i != bridge {
			rest = append(rest, i)
		}
	}
	return rest[:len(rest)/2], rest[len(rest)/2:]
}

// allPairs lists every pair of nodes among idx.
func allPairs(idx []int) [][2]int {
	var out [][2]int
	for a := 0; a < len(idx); a++ {
		for b := a + 1; b < len(idx); b++ {
			out = append(out, [2]int{idx[a], idx[b]})
		}
	}
	return out
}

func (r *Run) all() []int {
	out := make([]int, len(r.specs))
	for i := range out {
		out[i] = i
	}
	return out
}

func (r *Run) cut(a, b int) {
	r.faults.Partition([]peer.ID{peerOf(r.specs[a])}, []peer.ID{peerOf(r.specs[b])})
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitUntil polls cond until it holds, d passes or ctx ends.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", d)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// networkFault runs the fault steps that act on links; handled is false
// for any other step.
func (r *Run) networkFault(ctx context.Context, st Step, nodes []int) (handled bool, err error) {
	switch st.Do {
	case DoOneWay:
		from, to := nodes[0], nodes[1]
		r.faults.CutOneWay(peerOf(r.specs[from]), peerOf(r.specs[to]))
		r.openSpan(spanNetwork, fmt.Sprintf("one-way cut node%d→node%d", from, to), 0)
	case DoRing:
		for _, c := range ringCuts(len(r.specs)) {
			r.cut(c[0], c[1])
		}
		r.openSpan(spanNetwork, "majority ring", 0)
	case DoBridge:
		left, right := bridgeHalves(len(r.specs), nodes[0])
		r.faults.Partition(r.peers(left), r.peers(right))
		r.openSpan(spanNetwork, fmt.Sprintf("bridge node%d between %v and %v", nodes[0], left, right), 0)
	case DoSwizzle:
		return true, r.swizzle(ctx, st)
	case DoFlap:
		return true, r.flap(ctx, st)
	case DoOutage:
		others := nodes[1:]
		if len(others) == 0 {
			for i := range r.specs {
				if i != nodes[0] {
					others = append(others, i)
				}
			}
		}
		for _, o := range others {
			r.faults.Stall(peerOf(r.specs[nodes[0]]), peerOf(r.specs[o]), st.For.Duration)
		}
		r.openSpan(spanTimed, fmt.Sprintf("outage node%d–%v %s", nodes[0], others, st.For.Duration), st.For.Duration)
	case DoPause:
		for _, i := range nodes {
			for j := range r.specs {
				if j != i {
					r.faults.Stall(peerOf(r.specs[i]), peerOf(r.specs[j]), st.For.Duration)
				}
			}
			r.setPaused(i, st.For.Duration)
		}
		r.openSpan(spanTimed, fmt.Sprintf("node%v paused %s", nodes, st.For.Duration), st.For.Duration)
	default:
		return false, nil
	}
	return true, nil
}

// swizzle cuts every link one by one, Every apart, in a random order, then
// restores them one by one in another random order.
func (r *Run) swizzle(ctx context.Context, st Step) error {
	every := st.Every.Duration
	if every == 0 {
		every = 200 * time.Millisecond
	}
	pairs := allPairs(r.all())
	r.rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
	r.openSpan(spanNetwork, "swizzle", 0)
	for _, p := range pairs {
		r.cut(p[0], p[1])
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
	r.rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
	for _, p := range pairs {
		r.faults.Reconnect(peerOf(r.specs[p[0]]), peerOf(r.specs[p[1]]))
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
	r.closeSpans(spanNetwork)
	return nil
}

// flap cuts the network into two random halves and heals it, alternately,
// every Every for For; it ends healed.
func (r *Run) flap(ctx context.Context, st Step) error {
	every := st.Every.Duration
	if every == 0 {
		every = time.Second
	}
	end := time.Now().Add(st.For.Duration)
	cutNow := true
	for time.Now().Before(end) {
		if cutNow {
			idx := r.all()
			r.rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			k := 1 + r.rng.IntN(len(idx)-1)
			r.faults.Partition(r.peers(idx[:k]), r.peers(idx[k:]))
			r.openSpan(spanNetwork, fmt.Sprintf("flap %v|%v", idx[:k], idx[k:]), 0)
		} else {
			r.faults.Heal()
			r.closeSpans(spanNetwork)
		}
		cutNow = !cutNow
		if err := sleep(ctx, every); err != nil {
			return err
		}
	}
	r.faults.Heal()
	r.closeSpans(spanNetwork)
	return nil
}
