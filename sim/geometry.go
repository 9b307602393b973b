package sim

import (
	"math/rand/v2"
	"slices"
)

// The fault geometry: which links each fault family cuts, computed once
// for both layers (see the package doc, "Fault geometry"). Pure functions
// of the node count and the schedule's generator.

// A cutSet is the set of directed cuts in force: {a, b} means that what a
// sends no longer reaches b. A partition cuts both directions of a link.
type cutSet map[[2]int]bool

// cutBoth cuts (or, with cut false, restores) both directions between
// every node of as and every node of bs; a node is never cut from itself.
func (c cutSet) cutBoth(as, bs []int, cut bool) {
	for _, a := range as {
		for _, b := range bs {
			if a == b {
				continue
			}
			for _, k := range [][2]int{{a, b}, {b, a}} {
				if cut {
					c[k] = true
				} else {
					delete(c, k)
				}
			}
		}
	}
}

// reaches returns, for each of n nodes, the nodes it reaches in both
// directions under c, itself included.
func (c cutSet) reaches(n int) [][]int {
	out := make([][]int, n)
	for a := range n {
		for b := range n {
			if a == b || (!c[[2]int{a, b}] && !c[[2]int{b, a}]) {
				out[a] = append(out[a], b)
			}
		}
	}
	return out
}

// indexes returns 0, 1, …, n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// allPairs lists every pair of nodes among idx, in order.
func allPairs(idx []int) [][2]int {
	var out [][2]int
	for a := 0; a < len(idx); a++ {
		for b := a + 1; b < len(idx); b++ {
			out = append(out, [2]int{idx[a], idx[b]})
		}
	}
	return out
}

// ringMin is the smallest network a majority ring exists in: among 3
// nodes, each reaching a majority (itself and one other) over symmetric
// links without any reaching all would take a pairing of 3 nodes.
const ringMin = 4

// ringKeep is how many neighbours on each side a node of a majority ring
// of n nodes keeps: ⌈⌊n/2⌋/2⌉, so that it reaches at least ⌊n/2⌋ others,
// a majority counting itself.
func ringKeep(n int) int { return (n/2 + 1) / 2 }

// ringCuts lays out a majority ring of n nodes (n ≥ ringMin) in index
// order: each node keeps the ringKeep(n) nearest nodes on either side and
// is cut from every other. Every node reaches a majority counting itself,
// none reaches all (2·ringKeep(n)+1 < n), and no two reach the same set.
func ringCuts(n int) cutSet {
	keep := ringKeep(n)
	c := cutSet{}
	for a := range n {
		for b := range n {
			if d := min((a-b+n)%n, (b-a+n)%n); d > keep {
				c[[2]int{a, b}] = true
			}
		}
	}
	return c
}

// bridgeHalves splits every node but the bridge, in index order, into two
// sides as even as possible: the first ⌊(n-1)/2⌋ nodes, then the rest.
func bridgeHalves(n, bridge int) (left, right []int) {
	rest := slices.DeleteFunc(indexes(n), func(i int) bool { return i == bridge })
	return rest[:len(rest)/2], rest[len(rest)/2:]
}

// bridgeCuts cuts the two sides of a bridge apart: only the bridge reaches
// both.
func bridgeCuts(n, bridge int) cutSet {
	left, right := bridgeHalves(n, bridge)
	c := cutSet{}
	c.cutBoth(left, right, true)
	return c
}

// flapHalves draws two random halves of n nodes from rng: a permutation,
// its first ⌊n/2⌋ nodes against the rest, each side in index order.
func flapHalves(rng *rand.Rand, n int) (a, b []int) {
	p := rng.Perm(n)
	a, b = p[:n/2], p[n/2:]
	slices.Sort(a)
	slices.Sort(b)
	return a, b
}

// swizzleOrder returns every link among n nodes in an order drawn from
// rng.
func swizzleOrder(rng *rand.Rand, n int) [][2]int {
	links := allPairs(indexes(n))
	out := make([][2]int, len(links))
	for k, p := range rng.Perm(len(links)) {
		out[k] = links[p]
	}
	return out
}
