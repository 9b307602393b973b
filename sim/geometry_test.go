package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The sizes every geometry is tested at: the smallest network, the one
// every shipped 5-node scenario has, the 7-node variants, and the 50-node
// networks.
var geometrySizes = []int{3, 5, 7, 50}

// A majority ring: every node reaches a majority counting itself, none
// reaches all, no two reach the same set; below ringMin nodes no such ring
// exists and Parse refuses the step.
func TestRingGeometry(t *testing.T) {
	for _, tc := range []struct {
		n, keep, reach, links int // reach: nodes each reaches, itself included; links cut
	}{
		{n: 3}, // refused: see below
		{n: 4, keep: 1, reach: 3, links: 2},
		{n: 5, keep: 1, reach: 3, links: 5},
		{n: 7, keep: 2, reach: 5, links: 7},
		{n: 50, keep: 13, reach: 27, links: 50*49/2 - 50*13},
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			if tc.n < ringMin {
				_, err := Parse(fmt.Sprintf("nodes = %d\nvoters = 3\n[[step]]\ndo = \"ring\"\n", tc.n))
				if err == nil || !strings.Contains(err.Error(), "ring needs at least 4 nodes") {
					t.Errorf("a ring of %d nodes: got %v, want it refused", tc.n, err)
				}
				return
			}
			if got := ringKeep(tc.n); got != tc.keep {
				t.Errorf("keeps %d neighbours per side, want %d", got, tc.keep)
			}
			c := ringCuts(tc.n)
			if len(c) != 2*tc.links {
				t.Errorf("cuts %d directed links, want %d links both ways", len(c), tc.links)
			}
			majority := tc.n/2 + 1
			seen := map[string]int{}
			for a, reach := range c.reaches(tc.n) {
				if len(reach) != tc.reach || len(reach) < majority || len(reach) == tc.n {
					t.Errorf("node%d reaches %d nodes %v: want %d, a majority (%d) but not all", a, len(reach), reach, tc.reach, majority)
				}
				if b, ok := seen[fmt.Sprint(reach)]; ok {
					t.Errorf("node%d and node%d reach the same nodes %v", b, a, reach)
				}
				seen[fmt.Sprint(reach)] = a
			}
			for k := range c {
				if !c[[2]int{k[1], k[0]}] {
					t.Errorf("link %v cut one way only", k)
				}
			}
		})
	}
	// The old test of the 5-node ring: each node keeps its two neighbours
	// (sees 3 of 5), so 5 of the 10 links are cut.
	cuts := ringCuts(5)
	for a := range 5 {
		for b := range 5 {
			d := min((a-b+5)%5, (b-a+5)%5)
			if cuts[[2]int{a, b}] != (d > 1) {
				t.Errorf("ring of 5: node%d–node%d cut %v", a, b, cuts[[2]int{a, b}])
			}
		}
	}
}

// A bridge: the others split in two sides as even as possible, in index
// order; only the bridge reaches both.
func TestBridgeGeometry(t *testing.T) {
	span := func(from, to int, skip int) []int {
		var out []int
		for i := from; i <= to; i++ {
			if i != skip {
				out = append(out, i)
			}
		}
		return out
	}
	for _, tc := range []struct {
		n, bridge   int
		left, right []int
	}{
		{3, 1, []int{0}, []int{2}},
		{3, 0, []int{1}, []int{2}},
		{5, 2, []int{0, 1}, []int{3, 4}},
		{5, 0, []int{1, 2}, []int{3, 4}},
		{7, 3, []int{0, 1, 2}, []int{4, 5, 6}},
		{7, 6, []int{0, 1, 2}, []int{3, 4, 5}},
		{50, 0, span(1, 24, -1), span(25, 49, -1)},
		{50, 30, span(0, 23, -1), span(24, 49, 30)},
	} {
		t.Run(fmt.Sprintf("%d-around-%d", tc.n, tc.bridge), func(t *testing.T) {
			left, right := bridgeHalves(tc.n, tc.bridge)
			if !slices.Equal(left, tc.left) || !slices.Equal(right, tc.right) {
				t.Errorf("halves %v | %v, want %v | %v", left, right, tc.left, tc.right)
			}
			if d := len(right) - len(left); d < 0 || d > 1 {
				t.Errorf("sides of %d and %d: not as even as possible", len(left), len(right))
			}
			reach := bridgeCuts(tc.n, tc.bridge).reaches(tc.n)
			if len(reach[tc.bridge]) != tc.n {
				t.Errorf("the bridge reaches %v, want everyone", reach[tc.bridge])
			}
			for _, a := range left {
				if want := append(slices.Clone(left), tc.bridge); !sameSet(reach[a], want) {
					t.Errorf("node%d reaches %v, want its side and the bridge %v", a, reach[a], want)
				}
			}
			for _, b := range right {
				if want := append(slices.Clone(right), tc.bridge); !sameSet(reach[b], want) {
					t.Errorf("node%d reaches %v, want its side and the bridge %v", b, reach[b], want)
				}
			}
		})
	}
}

func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Flapping cuts two halves drawn from the seed: ⌊n/2⌋ against the rest,
// covering every node once, the same halves for the same seed.
func TestFlapGeometry(t *testing.T) {
	for _, n := range geometrySizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(42, 0x5eed))
			again := rand.New(rand.NewPCG(42, 0x5eed))
			differ := false
			var first []int
			for k := range 20 {
				a, b := flapHalves(rng, n)
				a2, b2 := flapHalves(again, n)
				if !slices.Equal(a, a2) || !slices.Equal(b, b2) {
					t.Fatalf("draw %d: the same seed gave %v|%v and %v|%v", k, a, b, a2, b2)
				}
				if len(a) != n/2 || len(b) != n-n/2 || !sameSet(append(slices.Clone(a), b...), indexes(n)) {
					t.Errorf("draw %d: halves %v | %v of %d nodes", k, a, b, n)
				}
				if !slices.IsSorted(a) || !slices.IsSorted(b) {
					t.Errorf("draw %d: halves %v | %v not in index order", k, a, b)
				}
				if k == 0 {
					first = a
				} else if !slices.Equal(a, first) {
					differ = true
				}
			}
			if !differ {
				t.Errorf("20 draws gave the same halves %v", first)
			}
		})
	}
}

// Swizzling cuts every link once, in an order drawn from the seed.
func TestSwizzleGeometry(t *testing.T) {
	for _, n := range geometrySizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			order := swizzleOrder(rand.New(rand.NewPCG(7, 0x5eed)), n)
			again := swizzleOrder(rand.New(rand.NewPCG(7, 0x5eed)), n)
			if !slices.Equal(order, again) {
				t.Errorf("the same seed gave two orders")
			}
			want := allPairs(indexes(n))
			if len(order) != n*(n-1)/2 || len(order) != len(want) {
				t.Fatalf("%d links, want %d", len(order), n*(n-1)/2)
			}
			sorted := slices.Clone(order)
			slices.SortFunc(sorted, func(a, b [2]int) int {
				if a[0] != b[0] {
					return a[0] - b[0]
				}
				return a[1] - b[1]
			})
			if !slices.Equal(sorted, want) {
				t.Errorf("the order is not every link once: %v", order)
			}
			if n > 3 && slices.Equal(order, want) {
				t.Errorf("the order is not drawn: %v", order)
			}
		})
	}
}
