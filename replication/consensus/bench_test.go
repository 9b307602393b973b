package consensus

import (
	"testing"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// BenchmarkCertificate: what quorum certificates cost. Sizes are of the
// log entries as they travel (header, sealed body, entry signature): the
// leader's checkpoint with its vote, one other voter's vote; verify is
// checking a majority's votes (2 of 3) over one statement; digest-* is
// what a voter computes to vote: at its applied index, or by replaying
// the entries since its base (here one command).
func BenchmarkCertificate(b *testing.B) {
	s := newSnapFixture(b)
	cert := s.certAt7(b, "enisa", "cyclone-fr")
	key, err := crypto.NewGroupKey("all", 1)
	if err != nil {
		b.Fatal(err)
	}
	entrySize := func(w *checkpointWire) int {
		payload, err := crypto.MarshalCanonical(w)
		if err != nil {
			b.Fatal(err)
		}
		es, err := log.Build(s.c.ids[0], s.c.genesis.NetworkID(), log.Tip{}, 0, t0,
			[]log.Draft{{Body: log.Body{Kind: log.KindCheckpoint, TLP: log.TLPAmber, Payload: payload}, Key: key}})
		if err != nil {
			b.Fatal(err)
		}
		return es[0].Size()
	}
	withOne := *cert
	withOne.Votes = cert.Votes[:1]
	vote := withOne
	vote.State, vote.Outcomes, vote.Older, vote.Updates = nil, nil, nil, nil
	noVote := *cert
	noVote.Votes, noVote.Roster, noVote.Digest, noVote.Older, noVote.Updates = nil, 0, nil, nil, nil
	b.Run("verify-2-of-3", func(b *testing.B) {
		for b.Loop() {
			if ids, _ := validVoters(s.c.genesis.NetworkID(), s.c.genesis.Roster(), cert); len(ids) != 2 {
				n := len(ids)
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(entrySize(&noVote)), "checkpoint-before-B")
		b.ReportMetric(float64(entrySize(&withOne)), "checkpoint-B")
		b.ReportMetric(float64(entrySize(&vote)), "vote-B")
	})
	b.Run("sign-vote", func(b *testing.B) {
		stmt := statementBytes(s.c.genesis.NetworkID(), cert.Term, cert.Index, cert.Roster, [32]byte(cert.Digest))
		for b.Loop() {
			if _, err := s.c.ids[0].Sign(crypto.ContextCheckpoint, stmt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("digest-at-applied", func(b *testing.B) {
		for b.Loop() {
			if _, ok := s.f.history(8); !ok {
				b.Fatal("no history at 8")
			}
		}
	})
	b.Run("digest-replayed", func(b *testing.B) {
		for b.Loop() {
			if _, ok := s.f.history(7); !ok {
				b.Fatal("no history at 7")
			}
		}
	})
}
