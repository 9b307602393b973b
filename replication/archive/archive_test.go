package archive_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/archive"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// net is a small network: enisa (admin, the one voter), cert-lu, cert-fr.
type net struct {
	admin, lu, fr *crypto.Identity
	genesis       *crypto.Genesis
	key           *crypto.GroupKey
}

func newNet(t testing.TB) *net {
	t.Helper()
	n := &net{}
	var err error
	for _, p := range []struct {
		id   **crypto.Identity
		name string
	}{{&n.admin, "enisa"}, {&n.lu, "cert-lu"}, {&n.fr, "cert-fr"}} {
		if *p.id, err = crypto.NewIdentity(p.name, t0); err != nil {
			t.Fatal(err)
		}
	}
	n.genesis, err = crypto.NewGenesis(crypto.GenesisSpec{
		Network: "test", Created: t0,
		Members: []crypto.Member{
			{Card: n.admin.Card(), Roles: []crypto.Role{crypto.RoleAdmin, crypto.RoleENISA}},
			{Card: n.lu.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
			{Card: n.fr.Card(), Roles: []crypto.Role{crypto.RoleCSIRT}},
		},
		Voters: []crypto.MemberID{n.admin.ID()}, Admins: []crypto.MemberID{n.admin.ID()},
	}, n.admin)
	if err != nil {
		t.Fatal(err)
	}
	if n.key, err = crypto.NewGroupKey("all", 1); err != nil {
		t.Fatal(err)
	}
	return n
}

// content is what goes into an archive, in file order.
type content struct {
	entries  []*log.Entry // display order
	evidence []*log.Entry
	cps      []archive.Checkpoint
}

// feeds builds each member's feed (batches of 3, signed on the last), a
// checkpoint of the admin (the one voter: it certifies alone), and
// returns them in display order.
func (n *net) feeds(t testing.TB, per int) content {
	t.Helper()
	var c content
	for _, id := range []*crypto.Identity{n.admin, n.lu, n.fr} {
		var tip log.Tip
		for i := 0; i < per; i += 3 {
			var drafts []log.Draft
			for j := i; j < min(per, i+3); j++ {
				drafts = append(drafts, log.Draft{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: "message"}, Key: n.key})
			}
			es, err := log.Build(id, n.genesis.NetworkID(), tip, 0, t0.Add(time.Duration(i)*time.Minute), drafts)
			if err != nil {
				t.Fatal(err)
			}
			last := es[len(es)-1]
			tip = log.Tip{Seq: last.Header.Seq, ID: last.ID(), Lamport: last.Header.Lamport}
			c.entries = append(c.entries, es...)
		}
	}
	// A checkpoint of the admin: the crisis at index 7, term 2.
	st := crisis.State{}
	payload, err := consensus.CheckpointPayload(n.admin, n.genesis.NetworkID(), st, 2, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	adminLast := c.entries[per-1]
	es, err := log.Build(n.admin, n.genesis.NetworkID(), log.Tip{Seq: adminLast.Header.Seq, ID: adminLast.ID(), Lamport: adminLast.Header.Lamport}, 0, t0.Add(time.Hour),
		[]log.Draft{{Body: log.Body{Kind: log.KindCheckpoint, TLP: log.TLPAmber, Payload: payload}, Key: n.key}})
	if err != nil {
		t.Fatal(err)
	}
	c.entries = append(c.entries, es...)
	c.cps = append(c.cps, archive.Checkpoint{Entry: es[0].ID(), Payload: payload})
	slices.SortFunc(c.entries, func(a, b *log.Entry) int {
		if log.Less(a, b) {
			return -1
		}
		return 1
	})
	return c
}

func (n *net) write(t testing.TB, c content, m archive.Meta) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := archive.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.entries {
		if err := w.Entry(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range c.evidence {
		if err := w.Evidence(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, cp := range c.cps {
		if err := w.Checkpoint(cp.Entry, cp.Payload); err != nil {
			t.Fatal(err)
		}
	}
	info, err := w.Close(n.lu, n.genesis.NetworkID(), m)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes != uint64(buf.Len()) {
		t.Errorf("Info.Bytes %d, file %d bytes", info.Bytes, buf.Len())
	}
	return buf.Bytes()
}

func read(t testing.TB, b []byte) *archive.Archive {
	t.Helper()
	a, err := archive.Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWriteReadVerify(t *testing.T) {
	n := newNet(t)
	c := n.feeds(t, 7)
	raw := n.write(t, c, archive.Meta{Created: t0.Add(2 * time.Hour)})
	a := read(t, raw)
	var got []log.Hash
	for _, r := range a.Entries {
		got = append(got, r.Value.ID())
	}
	var want []log.Hash
	for _, e := range c.entries {
		want = append(want, e.ID())
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("entries read back (-want +got):\n%s", d)
	}
	if len(a.Info.Segments) != 3 || a.Info.Exporter != n.lu.ID() || !a.Info.Created.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("info: got %+v, want 3 feeds, exported by cert-lu", a.Info)
	}
	rep, err := archive.Verify(n.genesis, a, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 22 || len(rep.Members) != 3 || len(rep.Checkpoints) != 1 || !rep.Checkpoints[0].Certified || rep.Sealed != 22 {
		t.Errorf("report: got %d entries, %d members, checkpoints %+v, %d sealed; want 22 sealed entries of 3 members and 1 certified checkpoint",
			rep.Entries, len(rep.Members), rep.Checkpoints, rep.Sealed)
	}
	// With cert-lu's key the bodies open: hand the group key over as a key
	// entry would, through the keyring (an admin's key entry).
	rep, err = archive.Verify(n.genesis, a, archive.Options{Identities: []*crypto.Identity{n.lu}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Bodies) != 0 || rep.Sealed != 22 {
		t.Errorf("without a key entry sealed to cert-lu: got %d bodies, %d sealed; want none readable", len(rep.Bodies), rep.Sealed)
	}
}

// Every way to damage or forge an archive is refused and named.
func TestVerifyRefuses(t *testing.T) {
	n := newNet(t)
	other := newNet(t)
	base := n.feeds(t, 7)
	firstOf := func(c content, id crypto.MemberID, seq uint64) int {
		for i, e := range c.entries {
			if e.Header.Author == id && e.Header.Seq == seq {
				return i
			}
		}
		t.Fatalf("no entry %d", seq)
		return 0
	}
	clone := func() content {
		return content{entries: slices.Clone(base.entries), evidence: slices.Clone(base.evidence), cps: slices.Clone(base.cps)}
	}
	for _, tc := range []struct {
		name       string
		edit       func(c *content) *crypto.Genesis
		what, rule string
	}{
		{"flipped byte in a signature", func(c *content) *crypto.Genesis {
			i := firstOf(*c, n.fr.ID(), 3)
			b := bytes.Clone(c.entries[i].Bytes())
			b[len(b)-50] ^= 0x10
			e, err := log.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			c.entries[i] = e
			return nil
		}, "entry", string(log.ReasonBadSignature)},
		{"removed entry", func(c *content) *crypto.Genesis {
			i := firstOf(*c, n.fr.ID(), 2)
			c.entries = slices.Delete(c.entries, i, i+1)
			return nil
		}, "feed", archive.RuleSegment},
		{"removed signed entry", func(c *content) *crypto.Genesis {
			// seq 6 signs for 4..6: without it, 4 and 5 are vouched for by
			// nothing, and 7 does not chain.
			i := firstOf(*c, n.fr.ID(), 6)
			c.entries = slices.Delete(c.entries, i, i+1)
			return nil
		}, "feed", archive.RuleSegment},
		{"out of order", func(c *content) *crypto.Genesis {
			c.entries[3], c.entries[4] = c.entries[4], c.entries[3]
			return nil
		}, "entry", archive.RuleOrder},
		{"forged vote", func(c *content) *crypto.Genesis {
			p := bytes.Clone(c.cps[0].Payload)
			p[len(p)-10] ^= 1
			c.cps[0].Payload = p
			return nil
		}, "checkpoint", archive.RuleVote},
		{"vote of a non-voter", func(c *content) *crypto.Genesis {
			p, err := consensus.CheckpointPayload(n.lu, n.genesis.NetworkID(), crisis.State{}, 2, 7, 0)
			if err != nil {
				t.Fatal(err)
			}
			c.cps[0].Payload = p
			return nil
		}, "checkpoint", archive.RuleVote},
		{"checkpoint of an entry not held", func(c *content) *crypto.Genesis {
			c.cps[0].Entry[0] ^= 1
			return nil
		}, "checkpoint", archive.RuleCheckpoint},
		{"another network's genesis", func(c *content) *crypto.Genesis { return other.genesis }, "file", archive.RuleNetwork},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clone()
			g := tc.edit(&c)
			if g == nil {
				g = n.genesis
			}
			_, err := archive.Verify(g, read(t, n.write(t, c, archive.Meta{Created: t0})), archive.Options{})
			var f *archive.Failure
			if !errors.As(err, &f) || !errors.Is(err, archive.ErrNotVerified) {
				t.Fatalf("got %v, want a Failure", err)
			}
			if f.What != tc.what || f.Rule != tc.rule {
				t.Errorf("got %s/%s (%v), want %s/%s", f.What, f.Rule, err, tc.what, tc.rule)
			}
		})
	}
}

// A fork kept as evidence is reported, and proven when both branches
// are signed.
func TestVerifyReportsForks(t *testing.T) {
	n := newNet(t)
	c := n.feeds(t, 3)
	// cert-fr writes another seq 1.
	es, err := log.Build(n.fr, n.genesis.NetworkID(), log.Tip{}, 0, t0, []log.Draft{{Body: log.Body{Kind: log.KindMessage, TLP: log.TLPAmber, Text: "the other branch"}, Key: n.key}})
	if err != nil {
		t.Fatal(err)
	}
	c.evidence = append(c.evidence, es...)
	rep, err := archive.Verify(n.genesis, read(t, n.write(t, c, archive.Meta{Created: t0})), archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Forks) != 1 || rep.Forks[0].Author != "cert-fr" || rep.Forks[0].Seq != 1 || !rep.Forks[0].Proven {
		t.Errorf("forks: got %+v, want cert-fr at seq 1, proven", rep.Forks)
	}
}

// Damage to the file itself is refused by Read with the rule that names
// it; no prefix of an archive reads.
func TestReadRefusesDamage(t *testing.T) {
	n := newNet(t)
	raw := n.write(t, n.feeds(t, 4), archive.Meta{Created: t0})
	for _, tc := range []struct {
		name string
		b    []byte
		rule string
	}{
		{"no magic", append([]byte("CRISISMESH-BUNDLE-1\n"), raw[len(archive.Magic):]...), archive.RuleMagic},
		{"empty", nil, archive.RuleMagic},
		{"appended byte", append(bytes.Clone(raw), 0), archive.RuleTruncated},
	} {
		_, err := archive.Read(bytes.NewReader(tc.b), int64(len(tc.b)))
		var f *archive.Failure
		if !errors.As(err, &f) || f.Rule != tc.rule || !errors.Is(err, archive.ErrFormat) {
			t.Errorf("%s: got %v, want rule %s", tc.name, err, tc.rule)
		}
	}
	for cut := 0; cut < len(raw); cut += 97 {
		if _, err := archive.Read(bytes.NewReader(raw[:cut]), int64(cut)); err == nil {
			t.Fatalf("a prefix of %d of %d bytes reads", cut, len(raw))
		}
	}
}

// One flipped byte anywhere in an archive makes it fail Read or Verify;
// a byte flipped inside an entry's record makes the failure name that
// entry (its signature breaks), not only the file's checksum.
func TestFlippedByteNamesTheEntry(t *testing.T) {
	n := newNet(t)
	c := n.feeds(t, 4)
	raw := n.write(t, c, archive.Meta{Created: t0})
	check := func(b []byte) error {
		a, err := archive.Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return err
		}
		_, err = archive.Verify(n.genesis, a, archive.Options{})
		return err
	}
	for i := range len(raw) {
		if i%13 != 0 && i >= len(archive.Magic) {
			continue // every 13th byte keeps the test short; the magic in full
		}
		if check(flip(raw, i)) == nil {
			t.Fatalf("byte %d of %d flipped: the archive verifies", i, len(raw))
		}
	}
	for _, e := range c.entries {
		at := bytes.Index(raw, e.Bytes())
		if at < 0 {
			t.Fatalf("entry %s is not in the file as it encodes", e.ID())
		}
		err := check(flip(raw, at+len(e.Bytes())-10)) // inside its signature
		var f *archive.Failure
		if !errors.As(err, &f) || f.What != "entry" || !strings.Contains(err.Error(), e.ID().String()[:8]) || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("a byte flipped in entry %s: %v; want the failure to name the entry and the checksum", e.ID(), err)
		}
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

// FuzzRead: Read never panics, and what it reads writes back to the same
// records.
func FuzzRead(f *testing.F) {
	n := newNet(f)
	raw := n.write(f, n.feeds(f, 4), archive.Meta{Created: t0})
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte(archive.Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := archive.Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, archive.ErrFormat) {
				t.Fatalf("error outside ErrFormat: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		w, err := archive.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.WriteRecords(w); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Close(n.lu, a.Info.Network, a.Info.Meta); err != nil {
			t.Fatal(err)
		}
		// The records (between the magic and the trailer) are the same bytes.
		recs := int(len(archive.Magic)) + int(recordBytes(t, b))
		if !bytes.Equal(buf.Bytes()[:recs], b[:recs]) {
			t.Fatalf("records read and written again differ")
		}
	})
}

// recordBytes is the length of an archive's records: what its trailer
// says, read back through a fresh Read of the same bytes.
func recordBytes(t *testing.T, b []byte) uint64 {
	a, err := archive.Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return a.RecordBytes()
}
