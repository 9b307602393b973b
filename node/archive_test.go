package node

import (
	"bytes"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/archive"
	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
	"github.com/crisismesh/crisismesh/replication/log"
)

// archiveNet is a 3-node testnet with posts, two committed crisis
// decisions and a certified checkpoint, and an archive exported from it.
type archiveNet struct {
	nodes   []*Node
	specs   []TestnetNode
	genesis string
	file    string
	raw     []byte
}

func openArchiveNet(t *testing.T) *archiveNet {
	t.Helper()
	nodes, specs := openTestnet(t, 3, nil)
	waitUntil(t, 30*time.Second, "every node to hold the network key", func() bool {
		for _, n := range nodes {
			if _, ok := n.Store().CurrentKey("all"); !ok {
				return false
			}
		}
		return true
	})
	// A roster update (a named group), so the archive holds roster history.
	res, err := nodes[0].ChangeGroup(context.Background(), GroupRequest{Op: "create", Group: "g1", Members: []string{"node0", "node1"}})
	if err != nil || res.Status == "refused" {
		t.Fatalf("create group: %+v, %v", res, err)
	}
	var acked []*log.Entry
	for i, n := range nodes {
		key, _ := n.Store().CurrentKey("all")
		for j := range 3 {
			es, err := n.Store().Append(context.Background(), log.Draft{Body: log.Body{Kind: log.KindSitrep, TLP: log.TLPAmber, Text: fmt.Sprintf("sitrep %d from node%d", j, i)}, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			acked = append(acked, es...)
		}
	}
	leader := func() *Node {
		for _, n := range nodes {
			if n.Consensus().IsLeader() {
				return n
			}
		}
		return nil
	}
	var open crisis.ID
	rand.Read(open[:])
	for _, cmd := range []crisis.Command{
		{ID: open, Kind: crisis.KindOpen, Title: "archive test", Level: 1},
		{Kind: crisis.KindAdviseLevel2, Crisis: open},
	} {
		if cmd.ID == (crisis.ID{}) {
			rand.Read(cmd.ID[:])
		}
		sc, err := crisis.Sign(nodes[2].Identity(), nodes[2].Store().Network(), cmd)
		if err != nil {
			t.Fatal(err)
		}
		// Leadership may move under load: propose again (the same command
		// ID counts once) until every node applied it.
		waitUntil(t, 60*time.Second, string(cmd.Kind)+" committed on every node", func() bool {
			if l := leader(); l != nil {
				if _, known := l.Consensus().Outcome(cmd.ID); !known {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					l.Consensus().Propose(ctx, sc)
					cancel()
				}
			}
			for _, n := range nodes {
				if o, ok := n.Consensus().Outcome(cmd.ID); !ok || o.Refused != "" {
					return false
				}
			}
			return true
		})
	}
	var applied uint64
	for _, n := range nodes {
		applied = max(applied, n.Consensus().Local().Index)
	}
	waitUntil(t, 30*time.Second, "a certified checkpoint of the last decision on every node", func() bool {
		for _, n := range nodes {
			if n.Consensus().Local().Certified < applied {
				return false
			}
		}
		return true
	})
	convergeHolding(t, nodes, acked)
	an := &archiveNet{nodes: nodes, specs: specs, genesis: filepath.Join(specs[0].Dir, GenesisFile)}
	an.file = filepath.Join(t.TempDir(), "crisis.archive")
	v, err := nodes[1].ExportArchive(an.file, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Entries == 0 || v.Checkpoints == 0 || v.Decisions < 2 || v.RaftFirst != 1 {
		t.Fatalf("export: got %+v, want entries, checkpoints, 2 decisions or more, Raft log from index 1", v)
	}
	if an.raw, err = os.ReadFile(an.file); err != nil {
		t.Fatal(err)
	}
	return an
}

// An archive exported from a real testnet verifies with the genesis
// alone, every check passing; tampering with it is caught and named.
func TestArchiveExportVerify(t *testing.T) {
	an := openArchiveNet(t)
	rep, err := VerifyArchive(an.file, an.genesis, "", nil, "")
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(rep.Roster) < 2 {
		t.Errorf("report: roster versions %+v, want the genesis and the group's update", rep.Roster)
	}
	if rep.Entries == 0 || len(rep.Members) != 3 || rep.Sealed == 0 || len(rep.Bodies) != 0 {
		t.Errorf("report: %d entries, %d members, %d sealed, %d bodies; want entries of 3 members, all bodies sealed", rep.Entries, len(rep.Members), rep.Sealed, len(rep.Bodies))
	}
	certified := 0
	for _, c := range rep.Checkpoints {
		if c.Certified && c.Replayed {
			certified++
		}
	}
	if certified == 0 || rep.ReplayChecked == 0 || rep.Replayed == 0 {
		t.Errorf("report: %d certified checkpoints matched by the replay (%d checked, replayed to %d), want some", certified, rep.ReplayChecked, rep.Replayed)
	}
	kinds := map[string]string{}
	for _, d := range rep.Decisions {
		kinds[d.Kind] = d.Signer
	}
	if kinds[string(crisis.KindOpen)] != "node2" || kinds[string(crisis.KindAdviseLevel2)] != "node2" {
		t.Errorf("decisions: got %v, want open and advise-level-2 signed by node2", kinds)
	}
	// With a member's keys, the bodies it may read, capped by TLP.
	rep, err = VerifyArchive(an.file, an.genesis, an.specs[0].Dir, nil, log.TLPAmber)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Bodies) < 9 {
		t.Errorf("with --dir: got %d bodies, want the 9 sitreps at least", len(rep.Bodies))
	}
	rep, err = VerifyArchive(an.file, an.genesis, an.specs[0].Dir, nil, log.TLPGreen)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Bodies) != 0 || rep.Withheld == 0 {
		t.Errorf("--max-tlp green: got %d bodies, %d withheld; want none shown (all are amber)", len(rep.Bodies), rep.Withheld)
	}

	t.Run("tampering", func(t *testing.T) { testArchiveTampering(t, an) })
	t.Run("compacted", func(t *testing.T) { testArchiveCompacted(t, an, kinds) })
	t.Run("window", func(t *testing.T) { testArchiveWindow(t, an) })
}

// rewrite reads the archive, lets edit change its records, and writes
// it again signed by the exporter (what a hostile exporter could do).
func (an *archiveNet) rewrite(t *testing.T, edit func(a *archive.Archive)) string {
	t.Helper()
	a, err := archive.Read(bytes.NewReader(an.raw), int64(len(an.raw)))
	if err != nil {
		t.Fatal(err)
	}
	edit(a)
	out := filepath.Join(t.TempDir(), "tampered.archive")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := archive.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range a.Entries {
		if r.Value != nil {
			if err := w.Entry(r.Value); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range a.Evidence {
		w.Evidence(r.Value)
	}
	for _, r := range a.Checkpoints {
		w.Checkpoint(r.Value.Entry, r.Value.Payload)
	}
	for _, r := range a.Decisions {
		w.Decision(r.Value)
	}
	if _, err := w.Close(an.nodes[1].Identity(), a.Info.Network, a.Info.Meta); err != nil {
		t.Fatal(err)
	}
	return out
}

// mutate returns a copy of e's bytes changed by f, decoded again.
func mutate(t *testing.T, e *log.Entry, f func(b []byte)) *log.Entry {
	t.Helper()
	b := append([]byte(nil), e.Bytes()...)
	f(b)
	m, err := log.Decode(b)
	if err != nil {
		t.Fatalf("mutated entry does not decode: %v", err)
	}
	return m
}

func testArchiveTampering(t *testing.T, an *archiveNet) {
	firstSigned := func(a *archive.Archive, sealed bool) int {
		for i, r := range a.Entries {
			if r.Value.Signed() && r.Value.Header.Plain() != sealed {
				return i
			}
		}
		t.Fatal("no signed entry")
		return 0
	}
	for _, tc := range []struct {
		name       string
		edit       func(a *archive.Archive)
		what, rule string
	}{
		{"flipped byte in an entry signature", func(a *archive.Archive) {
			i := firstSigned(a, true)
			e := a.Entries[i].Value
			a.Entries[i].Value = mutate(t, e, func(b []byte) { b[len(b)-100] ^= 1 })
		}, "entry", string(log.ReasonBadSignature)},
		{"removed entry in a chain", func(a *archive.Archive) {
			for i, r := range a.Entries {
				if r.Value.Header.Seq == 2 && !r.Value.Header.Plain() {
					a.Entries = append(a.Entries[:i:i], a.Entries[i+1:]...)
					return
				}
			}
		}, "feed", archive.RuleSegment},
		{"roster update out of order", func(a *archive.Archive) {
			for i, r := range a.Entries {
				if b, err := log.DecodeBody(r.Value.BodyBytes()); err == nil && r.Value.Header.Plain() && b.Kind == log.KindRoster && i > 0 {
					a.Entries[i-1], a.Entries[i] = a.Entries[i], a.Entries[i-1]
					return
				}
			}
		}, "entry", archive.RuleOrder},
		{"forged checkpoint vote", func(a *archive.Archive) {
			for i, r := range a.Checkpoints {
				c, err := consensus.ParseClaim(r.Value.Payload)
				if err != nil || c.State == nil || len(c.Votes) == 0 {
					continue
				}
				// A byte of the last vote's signature flipped: the
				// payload still decodes, the vote does not verify.
				var w cpWire
				if err := crypto.UnmarshalCanonical(r.Value.Payload, &w); err != nil {
					t.Fatal(err)
				}
				v := append(cbor.RawMessage(nil), w.Votes[0]...)
				v[len(v)-10] ^= 1
				w.Votes[0] = v
				p, err := crypto.MarshalCanonical(&w)
				if err != nil {
					t.Fatal(err)
				}
				a.Checkpoints[i].Value.Payload = p
				return
			}
			t.Fatal("no checkpoint with a vote")
		}, "checkpoint", archive.RuleVote},
		{"decision with a bad signature", func(a *archive.Archive) {
			for i, r := range a.Decisions {
				if sc, err := r.Value.Command(); err == nil && sc != nil {
					d := r.Value
					d.Data = append([]byte(nil), d.Data...)
					d.Data[len(d.Data)-40] ^= 1
					a.Decisions[i].Value = d
					return
				}
			}
			t.Fatal("no decision")
		}, "decision", archive.RuleDecision},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := an.rewrite(t, tc.edit)
			_, err := VerifyArchive(out, an.genesis, "", nil, "")
			var f *archive.Failure
			if !errors.As(err, &f) || !errors.Is(err, archive.ErrNotVerified) {
				t.Fatalf("got %v, want a Failure", err)
			}
			t.Log(err) // the failure as verify prints it
			if f.What != tc.what || f.Rule != tc.rule {
				t.Errorf("got %s / %s (%v), want %s / %s", f.What, f.Rule, err, tc.what, tc.rule)
			}
		})
	}
	// Bytes changed under the exporter's signature, and a truncated file.
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		rule string
	}{
		// The record it lands in fails by its own rule, named with the checksum.
		{"flipped byte in a record", func(b []byte) []byte { b[len(archive.Magic)+200] ^= 1; return b }, ""},
		{"flipped byte in the trailer signature", func(b []byte) []byte { b[len(b)-60] ^= 1; return b }, archive.RuleExporter},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, archive.RuleTruncated},
		{"truncated by one byte", func(b []byte) []byte { return b[:len(b)-1] }, archive.RuleTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "damaged.archive")
			if err := os.WriteFile(out, tc.edit(append([]byte(nil), an.raw...)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := VerifyArchive(out, an.genesis, "", nil, "")
			var f *archive.Failure
			switch {
			case !errors.As(err, &f):
				t.Errorf("got %v, want a Failure", err)
			case tc.rule == "" && !strings.Contains(f.Detail, "SHA-256 of the records"):
				t.Errorf("got %v, want the record's failure and the checksum's", err)
			case tc.rule != "" && f.Rule != tc.rule:
				t.Errorf("got %v, want rule %s", err, tc.rule)
			}
		})
	}
}

func testArchiveWindow(t *testing.T, an *archiveNet) {
	// A window that ends before the sitreps keeps the roster and key
	// entries and verifies.
	var first time.Time
	for _, n := range an.nodes {
		es, _ := n.Store().Feed(n.Identity().ID(), 0, 1)
		if len(es) > 0 {
			at := time.UnixMilli(es[0].Header.Time)
			if first.IsZero() || at.Before(first) {
				first = at
			}
		}
	}
	out := filepath.Join(t.TempDir(), "window.archive")
	v, err := an.nodes[1].ExportArchive(out, time.Time{}, first.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyArchive(out, an.genesis, "", nil, "")
	if err != nil {
		t.Fatalf("windowed archive: %v", err)
	}
	full, _ := VerifyArchive(an.file, an.genesis, "", nil, "")
	if rep.Entries >= full.Entries || rep.To == nil || v.To == nil {
		t.Errorf("window: %d entries of %d, to %v; want fewer, and the window named", rep.Entries, full.Entries, rep.To)
	}
}

// Raft compacts its log; the committed commands survive in the
// checkpoints and votes of the crisis log. An archive whose exporter's
// Raft log holds none of them (as after compaction), or from which the
// exporter left some out, still replays from the genesis to every
// certified state and names every decision and its signer.
func testArchiveCompacted(t *testing.T, an *archiveNet, want map[string]string) {
	for _, tc := range []struct {
		name string
		edit func(a *archive.Archive)
	}{
		{"no decision records, Raft log compacted", func(a *archive.Archive) {
			a.Decisions = nil
			a.Info.RaftFirst = 1000
		}},
		{"a decision record left out", func(a *archive.Archive) {
			for i, r := range a.Decisions {
				if sc, err := r.Value.Command(); err == nil && sc != nil {
					a.Decisions = append(a.Decisions[:i:i], a.Decisions[i+1:]...)
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := VerifyArchive(an.rewrite(t, tc.edit), an.genesis, "", nil, "")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, d := range rep.Decisions {
				got[d.Kind] = d.Signer
			}
			if rep.ReplayChecked == 0 || rep.ReplayStopped != 0 || got[string(crisis.KindOpen)] != want[string(crisis.KindOpen)] || got[string(crisis.KindAdviseLevel2)] != want[string(crisis.KindAdviseLevel2)] {
				t.Errorf("got decisions %v, %d certified states matched, stopped at %d; want %v, replayed to every certificate", got, rep.ReplayChecked, rep.ReplayStopped, want)
			}
		})
	}
	// Without the commands anywhere, the replay stops and says so.
	rep, err := VerifyArchive(an.rewrite(t, func(a *archive.Archive) {
		a.Decisions, a.Info.RaftFirst = nil, 1000
		for i, r := range a.Checkpoints {
			a.Checkpoints[i].Value.Payload = stripTail(t, r.Value.Payload)
		}
	}), an.genesis, "", nil, "")
	if err != nil || rep.ReplayStopped == 0 || len(rep.Decisions) != 0 {
		t.Errorf("stripped of every command: got %v, stopped at %d, %d decisions; want the replay to stop, and say where", err, rep.ReplayStopped, len(rep.Decisions))
	}
}

// cpWire mirrors consensus's checkpoint payload (a test may not reach
// into consensus): field 10 is the tail.
type cpWire struct {
	State    []byte            `cbor:"1,keyasint,omitempty"`
	Term     uint64            `cbor:"2,keyasint"`
	Index    uint64            `cbor:"3,keyasint"`
	Outcomes []cbor.RawMessage `cbor:"4,keyasint,omitempty"`
	Roster   uint64            `cbor:"5,keyasint,omitempty"`
	Digest   []byte            `cbor:"6,keyasint,omitempty"`
	Older    []byte            `cbor:"7,keyasint,omitempty"`
	Updates  []byte            `cbor:"8,keyasint,omitempty"`
	Votes    []cbor.RawMessage `cbor:"9,keyasint,omitempty"`
	Tail     []cbor.RawMessage `cbor:"10,keyasint,omitempty"`
}

func stripTail(t *testing.T, payload []byte) []byte {
	var w cpWire
	if err := crypto.UnmarshalCanonical(payload, &w); err != nil {
		t.Fatal(err)
	}
	w.Tail = nil
	b, err := crypto.MarshalCanonical(&w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
