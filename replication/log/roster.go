package log

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/crisismesh/crisismesh/crypto"
)

// A RosterUpdate is a roster update in force and the log entry that
// carried it.
type RosterUpdate struct {
	Update *crypto.Update
	Entry  *Entry
}

// A RosterRefusal is a roster entry that does not change the roster, and
// why. The entry itself stays valid: it is stored and relayed like any
// other, it just does not count.
type RosterRefusal struct {
	Entry *Entry
	// Rule is a stable name: "payload" (not a roster update), "carrier"
	// (the entry's author did not sign the update), "superseded" (another
	// update already created that version), or a crypto roster rule (a
	// *crypto.RuleError's Rule, e.g. "signer-admin").
	Rule string
	Err  error
}

// DeriveRoster derives the roster from genesis (the roster of version 0)
// and the log's roster entries. It is pure, and the result does not depend
// on the order of entries: entries of kinds other than roster are ignored,
// the updates are applied in order of the roster version they create and,
// for one version, the first in display order that applies wins. So nodes
// holding the same entries agree on the roster.
//
// An update counts only when carried by an entry its own signer wrote:
// the revocation rule (see the package documentation) reads the clock of
// that entry as the time of the revocation, and a member re-posting an
// admin's revocation at a clock of its choosing must not move it. A
// revoked or rotated member records that clock as its RevokedClock.
//
// It returns the roster, the updates in force in version order, and the
// roster entries that do not count, with the rule that refused them.
func DeriveRoster(genesis *crypto.Roster, entries []*Entry) (*crypto.Roster, []RosterUpdate, []RosterRefusal) {
	var cands []RosterUpdate
	var refused []RosterRefusal
	for _, e := range entries {
		if e == nil || !e.Header.Plain() {
			continue
		}
		b, err := DecodeBody(e.body)
		if err != nil || b.Kind != KindRoster {
			continue
		}
		u, err := crypto.ParseUpdate(b.Payload)
		if err != nil {
			refused = append(refused, RosterRefusal{Entry: e, Rule: "payload", Err: err})
			continue
		}
		if u.Signer() != e.Header.Author {
			refused = append(refused, RosterRefusal{Entry: e, Rule: "carrier",
				Err: fmt.Errorf("log: roster update version %d is signed by %s but carried by %s: only its signer's entry counts", u.Version(), u.Signer().Short(), e.Header.Author.Short())})
			continue
		}
		cands = append(cands, RosterUpdate{Update: u, Entry: e})
	}
	slices.SortFunc(cands, func(a, b RosterUpdate) int {
		if c := cmp.Compare(a.Update.Version(), b.Update.Version()); c != 0 {
			return c
		}
		ka, kb := a.Entry.Order(), b.Entry.Order()
		return bytes.Compare(ka[:], kb[:])
	})
	cands = slices.CompactFunc(cands, func(a, b RosterUpdate) bool { return a.Entry.ID() == b.Entry.ID() })
	r := genesis
	var applied []RosterUpdate
	for _, c := range cands {
		if c.Update.Version() <= r.Version() {
			refused = append(refused, RosterRefusal{Entry: c.Entry, Rule: "superseded",
				Err: fmt.Errorf("log: roster version %d was already created by another update", c.Update.Version())})
			continue
		}
		next, err := r.ApplyAt(c.Update, c.Entry.Header.Lamport)
		if err != nil {
			rule := "member"
			var re *crypto.RuleError
			if errors.As(err, &re) {
				rule = re.Rule
			}
			refused = append(refused, RosterRefusal{Entry: c.Entry, Rule: rule, Err: err})
			continue
		}
		r = next
		applied = append(applied, c)
	}
	return r, applied, refused
}
