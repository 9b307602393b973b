package log

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// A RosterUpdate is a roster update in force and the log entry that
// carried it.
type RosterUpdate struct {
	Update *crypto.Update
	Entry  *Entry
	// Approvals are the approvals that made it take effect (none with a
	// threshold of 1).
	Approvals []*crypto.Approval
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

// A PendingUpdate is a roster update that would create the next roster
// version but lacks approvals: it takes effect once Needed distinct active
// admins have signed it, if that happens before Expires.
type PendingUpdate struct {
	Update    *crypto.Update
	Entry     *Entry
	Approvers []crypto.MemberID // its signer and the approvals that count
	Needed    int
	Expires   time.Time
}

// A RosterState is the roster in force and how it came to be: what
// [DeriveRosterState] returns.
type RosterState struct {
	Roster  *crypto.Roster
	Applied []RosterUpdate  // in version order
	Refused []RosterRefusal // roster entries that do not count, and why
	Pending []PendingUpdate // updates for the next version waiting for approvals
}

// DeriveRoster is [DeriveRosterState] returning the roster, the updates
// in force and the refusals.
func DeriveRoster(genesis *crypto.Roster, entries []*Entry) (*crypto.Roster, []RosterUpdate, []RosterRefusal) {
	st := DeriveRosterState(genesis, entries)
	return st.Roster, st.Applied, st.Refused
}

// DeriveRosterState derives the roster from genesis (the roster of version
// 0) and the log's roster entries. It is pure, and the result does not
// depend on the order of entries: entries of kinds other than roster are
// ignored, the updates are applied in order of the roster version they
// create and, for one version, the first in display order that applies
// wins. So nodes holding the same entries agree on the roster.
//
// A roster entry carries an update ([crypto.Update]) or an admin's
// approval of one ([crypto.Approval]). With an admin threshold above 1 an
// update applies only with enough approvals (crypto.Roster.ApplyApproved);
// until then it is pending. Both count only when carried by an entry their
// own signer wrote: the revocation rule (see the package documentation)
// reads the clock of that entry as the time of the revocation, and a member
// re-posting an admin's revocation at a clock of its choosing must not
// move it. A revoked or rotated member records that clock as its
// RevokedClock.
func DeriveRosterState(genesis *crypto.Roster, entries []*Entry) RosterState {
	var cands []RosterUpdate
	var refused []RosterRefusal
	approvals := map[crypto.UpdateID][]*crypto.Approval{}
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
			a, aerr := crypto.ParseApproval(b.Payload)
			switch {
			case aerr != nil:
				refused = append(refused, RosterRefusal{Entry: e, Rule: "payload", Err: err})
			case a.Signer() != e.Header.Author:
				refused = append(refused, RosterRefusal{Entry: e, Rule: "carrier",
					Err: fmt.Errorf("log: approval of update %s is signed by %s but carried by %s: only its signer's entry counts", a.Update(), a.Signer().Short(), e.Header.Author.Short())})
			default:
				approvals[a.Update()] = append(approvals[a.Update()], a)
			}
			continue
		}
		if u.Signer() != e.Header.Author {
			refused = append(refused, RosterRefusal{Entry: e, Rule: "carrier",
				Err: fmt.Errorf("log: roster update version %d is signed by %s but carried by %s: only its signer's entry counts", u.Version(), u.Signer().Short(), e.Header.Author.Short())})
			continue
		}
		cands = append(cands, RosterUpdate{Update: u, Entry: e})
	}
	// Approvals in a canonical order, so the same set counts the same way.
	for id, as := range approvals {
		slices.SortFunc(as, func(a, b *crypto.Approval) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
		approvals[id] = slices.CompactFunc(as, func(a, b *crypto.Approval) bool { return bytes.Equal(a.Bytes(), b.Bytes()) })
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
	var waiting []RosterUpdate
	for _, c := range cands {
		if c.Update.Version() <= r.Version() {
			refused = append(refused, RosterRefusal{Entry: c.Entry, Rule: "superseded",
				Err: fmt.Errorf("log: roster version %d was already created by another update", c.Update.Version())})
			continue
		}
		next, err := r.ApplyApproved(c.Update, approvals[c.Update.ID()], c.Entry.Header.Lamport)
		if err != nil {
			rule := "member"
			var re *crypto.RuleError
			if errors.As(err, &re) {
				rule = re.Rule
			}
			if rule == "approvals" {
				waiting = append(waiting, c)
				continue
			}
			refused = append(refused, RosterRefusal{Entry: c.Entry, Rule: rule, Err: err})
			continue
		}
		if r.Threshold() > 1 && !c.Update.SelfRevocation() {
			c.Approvals = r.Counting(c.Update, approvals[c.Update.ID()])
		}
		r = next
		applied = append(applied, c)
	}
	var pending []PendingUpdate
	for _, c := range waiting {
		if c.Update.Version() != r.Version()+1 {
			refused = append(refused, RosterRefusal{Entry: c.Entry, Rule: "superseded",
				Err: fmt.Errorf("log: roster version %d was created by another update while update %s waited for approvals", c.Update.Version(), c.Update.ID())})
			continue
		}
		pending = append(pending, PendingUpdate{
			Update: c.Update, Entry: c.Entry, Approvers: r.Approvers(c.Update, approvals[c.Update.ID()]),
			Needed: r.Threshold(), Expires: r.Expires(c.Update),
		})
	}
	return RosterState{Roster: r, Applied: applied, Refused: refused, Pending: pending}
}
