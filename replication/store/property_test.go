package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

var (
	propOnce    sync.Once
	propEntries []*log.Entry
)

// propLog is a fixed log of three authors: batches, single entries, refs
// to each other's entries and the admin's key entry.
func propLog(t testing.TB, n *testNet) []*log.Entry {
	propOnce.Do(func() {
		all := []*log.Entry{n.keyEntry}
		tips := map[crypto.MemberID]log.Tip{n.admin.ID(): {Seq: 1, ID: n.keyEntry.ID(), Lamport: n.keyEntry.Header.Lamport}}
		var maxLamport uint64 = n.keyEntry.Header.Lamport
		who := []*crypto.Identity{n.lu, n.fr, n.admin, n.lu, n.lu, n.fr}
		for i := 0; i < 18; i++ {
			id := who[i%len(who)]
			var drafts []log.Draft
			for j := 0; j <= i%3; j++ {
				d := n.msg(fmt.Sprintf("%d.%d", i, j))
				d.Refs = []log.Hash{all[len(all)-1].ID()}
				drafts = append(drafts, d)
			}
			es, err := log.Build(id, n.genesis.NetworkID(), tips[id.ID()], maxLamport*uint64(i%2), t0, drafts)
			if err != nil {
				panic(err)
			}
			last := es[len(es)-1]
			tips[id.ID()] = log.Tip{Seq: last.Header.Seq, ID: last.ID(), Lamport: last.Header.Lamport}
			maxLamport = max(maxLamport, last.Header.Lamport)
			all = append(all, es...)
		}
		propEntries = all
	})
	return propEntries
}

// Any interleaving, chunking and duplication of the same valid entries
// gives the same frontier, digest and display order on every store.
func TestPropertyConvergence(t *testing.T) {
	n := newTestNet(t)
	all := propLog(t, n)
	ref := openStore(t, t.TempDir(), n, n.admin)
	mustIngest(t, ref, all...)
	wantDigest, wantOrder := ref.Digest(), ids(allEntries(t, ref))
	if len(wantOrder) != len(all) {
		t.Fatalf("reference holds %d of %d entries", len(wantOrder), len(all))
	}
	rapid.Check(t, func(rt *rapid.T) {
		s := openMemStore(rt, n, n.fr)
		defer s.Close()
		// Deliver random chunks (with duplicates, in any order) a few
		// times; entries refused for a gap come again in later chunks.
		ingestRandomChunks(rt, s, all, 6, 2*len(all))
		// Finally everything, shuffled: the store must end equal.
		perm := rapid.Permutation(all).Draw(rt, "final")
		if _, err := s.Ingest(context.Background(), perm...); err != nil {
			rt.Fatal(err)
		}
		checkSameLog(rt, s, wantDigest, wantOrder)
		if !maps(s.Frontier(), ref.Frontier()) {
			rt.Fatalf("frontier differs")
		}
	})
}

// openMemStore opens an in-memory store of n for self; the caller closes it.
func openMemStore(rt *rapid.T, n *testNet, self *crypto.Identity) *Store {
	s, err := Open("", n.genesis, self, Options{InMemory: true})
	if err != nil {
		rt.Fatal(err)
	}
	return s
}

// ingestRandomChunks delivers random chunks of all (with duplicates, in
// any order) to s, 1 to maxRounds times, each of up to maxChunk entries.
func ingestRandomChunks(rt *rapid.T, s *Store, all []*log.Entry, maxRounds, maxChunk int) {
	rounds := rapid.IntRange(1, maxRounds).Draw(rt, "rounds")
	for r := 0; r < rounds; r++ {
		chunk := rapid.SliceOfN(rapid.SampledFrom(all), 0, maxChunk).Draw(rt, "chunk")
		if _, err := s.Ingest(context.Background(), chunk...); err != nil {
			rt.Fatal(err)
		}
	}
}

// checkSameLog fails rt unless s has the digest wantDigest and its entries
// in the display order wantOrder.
func checkSameLog(rt *rapid.T, s *Store, wantDigest log.Digest, wantOrder []log.Hash) {
	if s.Digest() != wantDigest {
		rt.Fatalf("digest differs")
	}
	got, err := s.Entries(nil, 0)
	if err != nil {
		rt.Fatal(err)
	}
	if !slices.Equal(ids(got), wantOrder) {
		rt.Fatalf("display order differs")
	}
}

func maps(a, b log.Frontier) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
