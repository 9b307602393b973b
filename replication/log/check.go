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
// entries of run are valid (a prefix that ends on an entry with a
// composite signature, so that every accepted entry is covered) and, if
// that is not all of run, why the next one is not. Entries that are only
// waiting for their post-quantum signature ([Classify]) are not valid
// here: the reason is [ReasonUnsignedTail], as for unsigned ones.
//
// The rules: the network is ours; the author is a member of roster and, if
// revoked, the revocation keeps the entry ([RevocationKeeps]; the entry at
// the revocation's FeedSeq must be its FeedHead);
// seqs continue from head without gap; prev is the previous entry's ID;
// the Lamport clock is in 1..MaxLamport and grows, or stays at the cap
// (MaxLamport) once it reached it; a signature an entry carries verifies,
// composite or provisional; an entry at control priority carries no
// provisional signature; a plain body is of kind roster or key at control
// priority; the run does not end without a composite signature.
func CheckRun(network crypto.NetworkID, roster *crypto.Roster, head Head, run []*Entry) (int, error) {
	covered, provisional, err := walk(network, roster, head, run)
	if err != nil {
		return covered, err
	}
	if covered < len(run) {
		if provisional == covered {
			return covered, unsignedTail(run, covered)
		}
		last := run[len(run)-1]
		return covered, invalid(ReasonUnsignedTail, last, "entries %d..%d carry no composite signature and none of a successor covers them (up to seq %d they carry a provisional signature: waiting for their post-quantum signature)",
			run[covered].Header.Seq, last.Header.Seq, run[provisional-1].Header.Seq)
	}
	return covered, nil
}

// Classify tells, for run (entries of one author in seq order, continuing
// its feed after head, as for [CheckRun]), which entries are covered and
// which are waiting for their post-quantum signature: the first covered
// entries of run are covered (an entry of theirs or a successor's carries
// a valid composite signature), the next waiting of them are waiting (a
// valid provisional signature on an entry of theirs or a successor's
// vouches for them, and no composite does yet), and the rest are invalid
// for now, err saying why the first of them is. err is nil exactly when
// covered + waiting == len(run). An entry at control priority (a system
// kind) is never waiting: a provisional signature on one is refused
// ([ReasonProvisionalSystem]), and a run that would leave one waiting
// stops before it ([ReasonUnsignedTail]). See the package documentation,
// "Narrow links".
//
// Classify is CheckRun's walk: it checks every rule CheckRun checks, so
// covered is what CheckRun returns for the same arguments.
func Classify(network crypto.NetworkID, roster *crypto.Roster, head Head, run []*Entry) (covered, waiting int, err error) {
	covered, provisional, err := walk(network, roster, head, run)
	for i := covered; i < provisional; i++ {
		if e := run[i]; e.Header.Priority == Control {
			provisional = i
			if err == nil {
				err = invalid(ReasonUnsignedTail, e, "seq %d is at control priority (a system kind): it is never waiting, and needs a composite signature on it or a successor", e.Header.Seq)
			}
			break
		}
	}
	if err == nil && provisional < len(run) {
		err = unsignedTail(run, provisional)
	}
	return covered, provisional - covered, err
}

// unsignedTail is the error for run[from:], which carries no signature
// and no signed successor vouches for.
func unsignedTail(run []*Entry, from int) error {
	last := run[len(run)-1]
	return invalid(ReasonUnsignedTail, last, "entries %d..%d carry no signature and no signed successor vouches for them", run[from].Header.Seq, last.Header.Seq)
}

// walk checks run as CheckRun documents, up to its first invalid entry,
// and returns how many of its entries are vouched for by a composite
// signature (covered: the prefix up to the last one) and by a composite or
// a provisional one (provisional ≥ covered), and why the entry after the
// checked ones is invalid, if any is.
func walk(network crypto.NetworkID, roster *crypto.Roster, head Head, run []*Entry) (covered, provisional int, err error) {
	if len(run) == 0 {
		return 0, 0, nil
	}
	author := run[0].Header.Author
	if head.Forked {
		return 0, 0, invalid(ReasonForked, run[0], "the author forked its feed at seq %d; nothing of it is accepted past seq %d", head.Seq+1, head.Seq)
	}
	m, ok := roster.Member(author)
	if !ok {
		return 0, 0, invalid(ReasonUnknownAuthor, run[0], "author %s is not in the roster (version %d)", author.Short(), roster.Version())
	}
	prevSeq, prevID, prevLamport := head.Seq, head.ID, head.Lamport
	valid := 0 // entries up to the last checked entry with a composite signature
	prov := 0  // entries up to the last checked entry with any signature
	for i, e := range run {
		h := &e.Header
		switch {
		case h.Network != network:
			return valid, prov, invalid(ReasonWrongNetwork, e, "entry is for network %s", crypto.NetworkID(h.Network).String()[:16])
		case h.Author != author:
			return valid, prov, invalid(ReasonMalformed, e, "run mixes authors")
		case h.Seq <= prevSeq:
			return valid, prov, invalid(ReasonDuplicateSeq, e, "seq %d is not after %d", h.Seq, prevSeq)
		case h.Seq != prevSeq+1:
			return valid, prov, invalid(ReasonGap, e, "seq %d does not follow %d: entries %d..%d are missing", h.Seq, prevSeq, prevSeq+1, h.Seq-1)
		case h.Seq > 1 && h.Prev != prevID:
			return valid, prov, invalid(ReasonBadPrev, e, "prev %s is not the ID of seq %d (%s)", h.Prev.Short(), prevSeq, prevID.Short())
		case h.Lamport == 0 || h.Lamport > MaxLamport:
			return valid, prov, invalid(ReasonLamport, e, "Lamport clock %d is out of range 1..%d", h.Lamport, uint64(MaxLamport))
		case h.Lamport < prevLamport || h.Lamport == prevLamport && h.Lamport != MaxLamport:
			return valid, prov, invalid(ReasonLamport, e, "Lamport clock %d is not greater than %d of seq %d (equal is allowed only at the cap)", h.Lamport, prevLamport, prevSeq)
		case len(h.Refs) > MaxRefs:
			return valid, prov, invalid(ReasonTooManyRefs, e, "%d refs, limit %d", len(h.Refs), MaxRefs)
		case e.Size() > MaxEntrySize:
			return valid, prov, invalid(ReasonOversize, e, "%d bytes, limit %d", e.Size(), MaxEntrySize)
		}
		if m.Revoked {
			if h.Seq == m.FeedSeq && e.ID() != Hash(m.FeedHead) {
				return valid, prov, invalid(ReasonRevokedAuthor, e, "%s was revoked keeping entry %s at seq %d; this is another entry", m.Card.Name(), Hash(m.FeedHead).Short(), m.FeedSeq)
			}
			if !RevocationKeeps(m, h.Seq, h.Lamport) {
				if m.RevokedClock == 0 || m.RevokedClock >= MaxLamport {
					return valid, prov, invalid(ReasonRevokedAuthor, e, "%s was revoked (%s); with no revocation clock below the cap, its entries after seq %d are refused", m.Card.Name(), m.Reason, m.FeedSeq)
				}
				return valid, prov, invalid(ReasonRevokedAuthor, e, "%s was revoked (%s) by an entry at Lamport clock %d; its entries after seq %d are kept only below that clock, this one is at %d",
					m.Card.Name(), m.Reason, m.RevokedClock, m.FeedSeq, h.Lamport)
			}
		}
		if h.Plain() {
			b, err := DecodeBody(e.body)
			if err != nil || !plainKind(b.Kind) || h.Priority != Control {
				return valid, prov, invalid(ReasonPlainKind, e, "only roster and key entries travel in clear, at control priority")
			}
		}
		switch {
		case e.Signed():
			if err := e.VerifySignature(m.Card); err != nil {
				return valid, prov, err
			}
			valid = i + 1
		case e.Provisional() && h.Priority == Control:
			return valid, prov, invalid(ReasonProvisionalSystem, e, "an entry at control priority (roster, key, proposal, checkpoint) carries a provisional signature; system kinds are valid only with a composite signature")
		case e.Provisional():
			if err := e.VerifyProvisional(m.Card); err != nil {
				return valid, prov, err
			}
			prov = i + 1
		case m.Revoked && h.Seq == m.FeedSeq:
			// The admin's signed revocation names this entry: it vouches
			// for it (and its chain) as a signed successor would.
			valid = i + 1
		}
		prov = max(prov, valid)
		prevSeq, prevID, prevLamport = h.Seq, e.ID(), h.Lamport
	}
	return valid, prov, nil
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
