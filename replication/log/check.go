package log

import (
	"github.com/crisismesh/crisismesh/crypto"
)

// A Head is what a replica holds of one author's feed: the seq, ID and
// Lamport clock of its last entry, and whether the author forked (then the
// feed is frozen at Seq).
type Head struct {
	Seq     uint64
	ID      Hash
	Lamport uint64
	Forked  bool
}

// CheckRun validates run, entries of one author in seq order, as the
// continuation of that author's feed after head. It returns how many
// entries of run are valid (a prefix that ends on a signed entry, so that
// every accepted entry is vouched for) and, if that is not all of run, why
// the next one is not.
//
// The rules: the network is ours; the author is a member of roster and, if
// revoked, the revocation keeps the entry ([RevocationKeeps]; the entry at
// the revocation's FeedSeq must be its FeedHead);
// seqs continue from head without gap; prev is the previous entry's ID;
// the Lamport clock is in 1..MaxLamport and grows, or stays at the cap
// (MaxLamport) once it reached it; a signed entry's signature verifies; a plain
// body is of kind roster or key at control priority; the run does not end
// unsigned.
func CheckRun(network crypto.NetworkID, roster *crypto.Roster, head Head, run []*Entry) (int, error) {
	if len(run) == 0 {
		return 0, nil
	}
	author := run[0].Header.Author
	if head.Forked {
		return 0, invalid(ReasonForked, run[0], "the author forked its feed at seq %d; nothing of it is accepted past seq %d", head.Seq+1, head.Seq)
	}
	m, ok := roster.Member(author)
	if !ok {
		return 0, invalid(ReasonUnknownAuthor, run[0], "author %s is not in the roster (version %d)", author.Short(), roster.Version())
	}
	prevSeq, prevID, prevLamport := head.Seq, head.ID, head.Lamport
	valid := 0 // entries up to the last signed, checked entry
	for i, e := range run {
		h := &e.Header
		switch {
		case h.Network != network:
			return valid, invalid(ReasonWrongNetwork, e, "entry is for network %s", crypto.NetworkID(h.Network).String()[:16])
		case h.Author != author:
			return valid, invalid(ReasonMalformed, e, "run mixes authors")
		case h.Seq <= prevSeq:
			return valid, invalid(ReasonDuplicateSeq, e, "seq %d is not after %d", h.Seq, prevSeq)
		case h.Seq != prevSeq+1:
			return valid, invalid(ReasonGap, e, "seq %d does not follow %d: entries %d..%d are missing", h.Seq, prevSeq, prevSeq+1, h.Seq-1)
		case h.Seq > 1 && h.Prev != prevID:
			return valid, invalid(ReasonBadPrev, e, "prev %s is not the ID of seq %d (%s)", h.Prev.Short(), prevSeq, prevID.Short())
		case h.Lamport == 0 || h.Lamport > MaxLamport:
			return valid, invalid(ReasonLamport, e, "Lamport clock %d is out of range 1..%d", h.Lamport, uint64(MaxLamport))
		case h.Lamport < prevLamport || h.Lamport == prevLamport && h.Lamport != MaxLamport:
			return valid, invalid(ReasonLamport, e, "Lamport clock %d is not greater than %d of seq %d (equal is allowed only at the cap)", h.Lamport, prevLamport, prevSeq)
		case len(h.Refs) > MaxRefs:
			return valid, invalid(ReasonTooManyRefs, e, "%d refs, limit %d", len(h.Refs), MaxRefs)
		case e.Size() > MaxEntrySize:
			return valid, invalid(ReasonOversize, e, "%d bytes, limit %d", e.Size(), MaxEntrySize)
		}
		if m.Revoked {
			if h.Seq == m.FeedSeq && e.ID() != Hash(m.FeedHead) {
				return valid, invalid(ReasonRevokedAuthor, e, "%s was revoked keeping entry %s at seq %d; this is another entry", m.Card.Name(), Hash(m.FeedHead).Short(), m.FeedSeq)
			}
			if !RevocationKeeps(m, h.Seq, h.Lamport) {
				if m.RevokedClock == 0 || m.RevokedClock >= MaxLamport {
					return valid, invalid(ReasonRevokedAuthor, e, "%s was revoked (%s); with no revocation clock below the cap, its entries after seq %d are refused", m.Card.Name(), m.Reason, m.FeedSeq)
				}
				return valid, invalid(ReasonRevokedAuthor, e, "%s was revoked (%s) by an entry at Lamport clock %d; its entries after seq %d are kept only below that clock, this one is at %d",
					m.Card.Name(), m.Reason, m.RevokedClock, m.FeedSeq, h.Lamport)
			}
		}
		if h.Plain() {
			b, err := DecodeBody(e.body)
			if err != nil || !plainKind(b.Kind) || h.Priority != Control {
				return valid, invalid(ReasonPlainKind, e, "only roster and key entries travel in clear, at control priority")
			}
		}
		if e.Signed() {
			if err := e.VerifySignature(m.Card); err != nil {
				return valid, err
			}
			valid = i + 1
		} else if m.Revoked && h.Seq == m.FeedSeq {
			// The admin's signed revocation names this entry: it vouches
			// for it (and its chain) as a signed successor would.
			valid = i + 1
		}
		prevSeq, prevID, prevLamport = h.Seq, e.ID(), h.Lamport
	}
	if valid < len(run) {
		last := run[len(run)-1]
		return valid, invalid(ReasonUnsignedTail, last, "entries %d..%d carry no signature and no signed successor vouches for them", run[valid].Header.Seq, last.Header.Seq)
	}
	return valid, nil
}

// RevocationKeeps reports whether an entry at seq with Lamport clock
// lamport, written by member m, stays valid after m's revocation (or key
// rotation): always for a member that is not revoked; for a revoked one,
// when seq is at most the revocation's FeedSeq (the last entry the admin
// saw), or when the entry's clock is below the clock of the log entry
// that carried the revocation (it may have been written before the admin
// acted). At the cap (a revocation clock of MaxLamport) and for a
// revocation whose clock is not known (RevokedClock 0) only FeedSeq
// counts. See the package documentation, "Revocation".
func RevocationKeeps(m *crypto.Member, seq, lamport uint64) bool {
	switch {
	case !m.Revoked || seq <= m.FeedSeq:
		return true
	case m.RevokedClock == 0 || m.RevokedClock >= MaxLamport:
		return false
	}
	return lamport < m.RevokedClock
}
