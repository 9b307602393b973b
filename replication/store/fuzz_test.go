package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// FuzzIngest feeds Ingest whatever the fuzzer makes of a few real feeds
// (STYLE.md §12; issue 3: "no panic, nothing invalid stored").
//
// The input is a chunk count and up to fuzzMaxChunks chunks, each behind a
// two-byte big-endian prefix:
//
//	bit 15     the chunk is a reference to entry (prefix & 0x3fff) mod
//	           len(pool) of the fixed pool below, and has no bytes
//	bit 14     ingest what was gathered so far before this chunk (a call
//	           boundary)
//	bits 0-13  otherwise, the chunk's length in bytes; what log.Decode
//	           accepts of it is ingested
//
// References let the fuzzer reorder, repeat and mix whole valid entries
// (forks, revocations, batches) with one byte, which mutating 2–7 KB of
// signed bytes almost never does; raw chunks fuzz the decoder and the
// checks behind it. A reference means an index into the pool as built by
// newFuzzPool: only ever append to the pool, or saved inputs change
// meaning.
//
// After the calls: no error (the database is in memory, so there is no
// I/O to fail); Frontier().Digest() == Digest(); every feed runs from seq 1
// to its head and passes log.CheckRun from the start (a forked feed
// together with the evidence that vouches for its tail); every entry held
// is in a feed and is one the pool's members actually wrote, since the
// fuzzer cannot forge a signature. Finally all the decoded entries are
// ingested twice more, as sync would retry, into this store and into a
// fresh one: both must end with the same digest.
//
// Run:
//
//	go test ./replication/store/ -run '^$' -fuzz '^FuzzIngest$' -fuzztime 60s -parallel 2
func FuzzIngest(f *testing.F) {
	n := newTestNet(f)
	p := newFuzzPool(f, n)

	f.Add([]byte{})
	// Each seed is a delivery plan: pool indexes, flush marks, raw bytes.
	ref := func(i int) fuzzChunk { return fuzzChunk{ref: i} }
	flushRef := func(i int) fuzzChunk { return fuzzChunk{ref: i, flush: true} }
	raw := func(b []byte) fuzzChunk { return fuzzChunk{ref: -1, raw: b} }
	var inOrder, reversed []fuzzChunk
	for i := range p.entries {
		inOrder = append(inOrder, ref(i))
		reversed = append(reversed, ref(len(p.entries)-1-i))
	}
	plans := [][]fuzzChunk{
		inOrder, reversed,
		// The batch, then its fork at seq 2 (signed) in a later call.
		{ref(p.idx["key"]), ref(p.idx["lu1"]), ref(p.idx["lu2"]), ref(p.idx["lu3"]), flushRef(p.idx["lu2'"])},
		// Both branches of fr's fork in one call, and again.
		{ref(p.idx["fr1"]), ref(p.idx["fr1'"]), ref(p.idx["fr2'"]), flushRef(p.idx["fr1'"]), ref(p.idx["fr2'"]), ref(p.idx["fr1"])},
		// Revocation first, then the entries; and entries first.
		{ref(p.idx["key"]), ref(p.idx["revoke-fr"]), flushRef(p.idx["fr1"]), ref(p.idx["fr2"])},
		{ref(p.idx["fr1"]), ref(p.idx["fr2"]), flushRef(p.idx["key"]), ref(p.idx["revoke-fr"])},
		// lu is revoked keeping seq 1, an unsigned batch member (as after
		// its fork at seq 2), before its entries arrive.
		{ref(p.idx["key"]), ref(p.idx["revoke-fr"]), ref(p.idx["revoke-lu"]), flushRef(p.idx["lu1"]), ref(p.idx["lu2"]), ref(p.idx["lu3"])},
		// Unsigned tail only; a gap; a stranger; another network.
		{ref(p.idx["lu1"]), ref(p.idx["lu2"])},
		{ref(p.idx["lu3"]), ref(p.idx["lu4"])},
		{ref(p.idx["outsider"]), ref(p.idx["other-net"])},
	}
	// Raw bytes, intact and mutated.
	for _, e := range p.entries {
		b := e.Bytes()
		plans = append(plans, []fuzzChunk{raw(b)})
		for _, i := range []int{len(b) / 3, len(b) - 1} {
			m := bytes.Clone(b)
			m[i] ^= 0x10
			plans = append(plans, []fuzzChunk{raw(m)})
		}
	}
	lu := p.entries[p.idx["lu1"]].Bytes()
	plans = append(plans,
		[]fuzzChunk{raw(p.entries[p.idx["key"]].Bytes()), raw(lu), raw(p.entries[p.idx["lu2"]].Bytes()), raw(p.entries[p.idx["lu3"]].Bytes())},
		[]fuzzChunk{raw(lu[:len(lu)/2]), ref(p.idx["lu1"]), raw(p.entries[p.idx["lu3"]].Unsigned().Bytes()), ref(p.idx["lu2"])},
	)
	for _, plan := range plans {
		f.Add(encodeFuzzPlan(plan))
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		var calls [][]*log.Entry
		var cur, all []*log.Entry
		for _, c := range decodeFuzzPlan(in) {
			if c.flush && len(cur) > 0 {
				calls, cur = append(calls, cur), nil
			}
			var e *log.Entry
			if c.ref >= 0 {
				e = p.entries[c.ref%len(p.entries)]
			} else if d, err := log.Decode(c.raw); err == nil {
				e = d
			} else {
				continue
			}
			cur, all = append(cur, e), append(all, e)
		}
		if len(cur) > 0 {
			calls = append(calls, cur)
		}
		if len(all) == 0 {
			return
		}
		s := openFuzzStore(t, n)
		for _, call := range calls {
			if _, err := s.Ingest(context.Background(), call...); err != nil {
				t.Fatalf("Ingest: %v", err)
			}
			checkFuzzStore(t, s, p)
		}
		// Retried delivery converges with a store that got it all at once.
		r := openFuzzStore(t, n)
		for range 2 {
			for _, st := range []*Store{s, r} {
				if _, err := st.Ingest(context.Background(), all...); err != nil {
					t.Fatalf("Ingest: %v", err)
				}
			}
		}
		checkFuzzStore(t, s, p)
		checkFuzzStore(t, r, p)
		if s.Digest() != r.Digest() {
			t.Fatalf("digest after %d calls and a retry of everything differs from the digest of a fresh store given everything\nfuzzed: %v\nfresh:  %v",
				len(calls), describeFrontier(s, p), describeFrontier(r, p))
		}
	})
}

// fuzzMaxChunks bounds the chunks of one input.
const fuzzMaxChunks = 24

type fuzzChunk struct {
	ref   int // pool index, or -1 for raw bytes
	flush bool
	raw   []byte
}

func encodeFuzzPlan(plan []fuzzChunk) []byte {
	out := []byte{byte(len(plan))}
	for _, c := range plan {
		var prefix uint16
		if c.ref >= 0 {
			prefix = 1<<15 | uint16(c.ref)
		} else {
			prefix = uint16(len(c.raw))
		}
		if c.flush {
			prefix |= 1 << 14
		}
		out = binary.BigEndian.AppendUint16(out, prefix)
		if c.ref < 0 {
			out = append(out, c.raw...)
		}
	}
	return out
}

func decodeFuzzPlan(in []byte) []fuzzChunk {
	if len(in) == 0 {
		return nil
	}
	count := int(in[0]) % (fuzzMaxChunks + 1)
	in = in[1:]
	var out []fuzzChunk
	for len(out) < count && len(in) >= 2 {
		prefix := binary.BigEndian.Uint16(in)
		in = in[2:]
		c := fuzzChunk{ref: -1, flush: prefix&(1<<14) != 0}
		if prefix&(1<<15) != 0 {
			c.ref = int(prefix & 0x3fff)
		} else {
			l := min(int(prefix&0x3fff), len(in))
			c.raw, in = in[:l], in[l:]
		}
		out = append(out, c)
	}
	return out
}

// openFuzzStore opens a fresh in-memory store as the admin: it holds the
// key of group all once the key entry arrives, so bodies are read too.
func openFuzzStore(t *testing.T, n *testNet) *Store {
	s, err := Open("", n.genesis, n.admin, Options{InMemory: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fuzzPool is a fixed set of real entries: the admin's key entry and a
// revocation, a batch, a fork of it, a fork of another feed vouched for by
// a successor, and entries that must be refused.
type fuzzPool struct {
	entries []*log.Entry
	idx     map[string]int
	written map[log.Hash]bool // IDs of entries a member of the network wrote
	names   map[crypto.MemberID]string
}

func newFuzzPool(tb testing.TB, n *testNet) *fuzzPool {
	tb.Helper()
	p := &fuzzPool{idx: map[string]int{}, written: map[log.Hash]bool{}, names: map[crypto.MemberID]string{}}
	network := n.genesis.NetworkID()
	add := func(name string, e *log.Entry, member bool) {
		p.idx[name] = len(p.entries)
		p.entries = append(p.entries, e)
		if member {
			p.written[e.ID()] = true
		}
	}
	build := func(who *crypto.Identity, net crypto.NetworkID, after *log.Entry, minLamport uint64, drafts ...log.Draft) []*log.Entry {
		p.names[who.ID()] = who.Name()
		return buildAfter(tb, who, net, after, minLamport, drafts...)
	}
	key := n.keyEntry
	p.names[n.admin.ID()] = n.admin.Name()
	add("key", key, true)
	lu := build(n.lu, network, nil, key.Header.Lamport, n.msg("lu 1"), n.msg("lu 2"), n.msg("lu 3"))
	add("lu1", lu[0], true)
	add("lu2", lu[1], true)
	add("lu3", lu[2], true)
	reply := n.msg("fr 1")
	reply.Refs = []log.Hash{lu[2].ID(), key.ID()}
	fr := build(n.fr, network, nil, lu[2].Header.Lamport, reply)
	add("fr1", fr[0], true)
	add("lu4", build(n.lu, network, lu[2], fr[0].Header.Lamport, n.msg("lu 4"))[0], true)
	add("lu2'", build(n.lu, network, lu[0], 0, n.msg("lu 2'"))[0], true)
	frFork := build(n.fr, network, nil, 0, n.msg("fr 1'"), n.msg("fr 2'"))
	add("fr1'", frFork[0], true)
	add("fr2'", frFork[1], true)
	add("fr2", build(n.fr, network, fr[0], 0, n.msg("fr 2"))[0], true)
	u, err := crypto.NewUpdate(n.genesis.Roster(), crypto.UpdateSpec{
		Op: crypto.OpRevoke, Target: n.fr.ID(), Reason: "key stolen", Created: t0, FeedSeq: 1, FeedHead: fr[0].ID(),
	}, n.admin)
	if err != nil {
		tb.Fatal(err)
	}
	revokeFr := build(n.admin, network, key, 0, log.Draft{Body: log.Body{Kind: log.KindRoster, TLP: log.TLPClear, Payload: u.Bytes()}})[0]
	add("revoke-fr", revokeFr, true)
	// After lu's fork at seq 2, the admin revokes lu keeping what every
	// node agrees on: seq 1, an unsigned batch member.
	r2, err := n.genesis.Roster().Apply(u)
	if err != nil {
		tb.Fatal(err)
	}
	u2, err := crypto.NewUpdate(r2, crypto.UpdateSpec{
		Op: crypto.OpRevoke, Target: n.lu.ID(), Reason: "forked its feed", Created: t0, FeedSeq: 1, FeedHead: lu[0].ID(),
	}, n.admin)
	if err != nil {
		tb.Fatal(err)
	}
	add("revoke-lu", build(n.admin, network, revokeFr, 0, log.Draft{Body: log.Body{Kind: log.KindRoster, TLP: log.TLPClear, Payload: u2.Bytes()}})[0], true)
	outsider, err := crypto.NewIdentity("cert-xx", t0)
	if err != nil {
		tb.Fatal(err)
	}
	add("outsider", build(outsider, network, nil, 0, n.msg("hello"))[0], false)
	add("other-net", build(n.lu, crypto.NetworkID{9}, nil, 0, n.msg("elsewhere"))[0], false)
	return p
}

// checkFuzzStore checks that s holds nothing invalid and that its digest
// matches its frontier.
func checkFuzzStore(t *testing.T, s *Store, p *fuzzPool) {
	t.Helper()
	frontier := s.Frontier()
	if frontier.Digest() != s.Digest() {
		t.Fatal("Frontier().Digest() != Digest()")
	}
	evidence, err := s.Evidence()
	if err != nil {
		t.Fatalf("Evidence: %v", err)
	}
	roster := s.Roster()
	held := 0
	for author, head := range frontier {
		feed, err := s.Feed(author, 0, 0)
		if err != nil {
			t.Fatalf("Feed: %v", err)
		}
		if uint64(len(feed)) != head.Seq {
			t.Fatalf("feed of %s holds %d entries, head is at seq %d", author.Short(), len(feed), head.Seq)
		}
		if head.Seq > 0 {
			last := feed[len(feed)-1]
			if last.ID() != head.ID || last.Header.Lamport != head.Lamport {
				t.Fatalf("feed of %s ends on %s, head says %s", author.Short(), last.ID().Short(), head.ID.Short())
			}
		}
		best, why := fuzzValidPrefix(s, roster, feed, nil)
		if head.Forked {
			// The feed was cut back at the fork: its tail may be vouched
			// for by a signed entry now kept as evidence.
			for _, c := range evidence {
				if c.Header.Author == author && c.Header.Seq == head.Seq+1 && (head.Seq == 0 || c.Header.Prev == head.ID) {
					if k, _ := fuzzValidPrefix(s, roster, feed, fuzzChain(c, evidence)); k > best {
						best = k
					}
				}
			}
		}
		if best < len(feed) {
			t.Fatalf("the store holds invalid entries: only %d of the %d entries of %s's feed pass CheckRun: %v",
				best, len(feed), describeAuthor(author, p), why)
		}
		held += len(feed)
	}
	all, err := s.Entries(nil, 0)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	if len(all) != held {
		t.Fatalf("the display order holds %d entries, the feeds %d", len(all), held)
	}
	for _, e := range all {
		if !p.written[e.ID()] {
			t.Fatalf("the store holds entry %s, which no member wrote", e.ID().Short())
		}
		if frontier[e.Header.Author].Seq < e.Header.Seq {
			t.Fatalf("entry %s/%d is past its author's head", e.Header.Author.Short(), e.Header.Seq)
		}
	}
}

// fuzzValidPrefix returns how many entries of feed (followed by tail) pass
// CheckRun from the start of the feed, and the error for the rest.
func fuzzValidPrefix(s *Store, roster *crypto.Roster, feed, tail []*log.Entry) (int, error) {
	run := append(append([]*log.Entry(nil), feed...), tail...)
	k, err := log.CheckRun(s.Network(), roster, log.Head{}, run)
	return min(k, len(feed)), err
}

// fuzzChain returns c and the evidence entries that chain after it.
func fuzzChain(c *log.Entry, evidence []*log.Entry) []*log.Entry {
	chain := []*log.Entry{c}
	for _, e := range evidence {
		last := chain[len(chain)-1]
		if e.Header.Author == last.Header.Author && e.Header.Seq == last.Header.Seq+1 && e.Header.Prev == last.ID() {
			chain = append(chain, e)
		}
	}
	return chain
}

func describeAuthor(a crypto.MemberID, p *fuzzPool) string {
	if name, ok := p.names[a]; ok {
		return name
	}
	return a.Short()
}

// describeFrontier names each head by its pool entry, for failure messages.
func describeFrontier(s *Store, p *fuzzPool) string {
	var b bytes.Buffer
	f := s.Frontier()
	for _, a := range f.Authors() {
		h := f[a]
		name := h.ID.Short()
		for n, i := range p.idx {
			if p.entries[i].ID() == h.ID {
				name = n
			}
		}
		b.WriteString(describeAuthor(a, p))
		b.WriteString("@")
		b.WriteString(name)
		if h.Forked {
			b.WriteString("(forked)")
		}
		b.WriteString(" ")
	}
	return b.String()
}
