package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// An UpdateOp is what a roster update does.
type UpdateOp string

// The roster update operations.
const (
	// OpAdd admits a new member with roles and address hints.
	OpAdd UpdateOp = "add"
	// OpRevoke revokes a member: from this roster version on, nothing it
	// signs is accepted and it receives no new group keys.
	OpRevoke UpdateOp = "revoke"
	// OpRotate replaces a member's keys with a new card of the same name.
	// The old ID is revoked (reason "rotated"); the new one inherits roles,
	// addresses, voter and admin status and group memberships.
	OpRotate UpdateOp = "rotate"
	// OpGroup sets the members of a named need-to-know group: creates it,
	// changes it, or (no members) removes it.
	OpGroup UpdateOp = "group"
	// OpVoters sets the Raft voters: the consensus layer carries the change
	// out one server at a time.
	OpVoters UpdateOp = "voters"
)

type updateBody struct {
	Suite   string      `cbor:"1,keyasint"`
	Network []byte      `cbor:"2,keyasint"`
	Version uint64      `cbor:"3,keyasint"` // the roster version this update creates
	Op      string      `cbor:"4,keyasint"`
	Member  *memberWire `cbor:"5,keyasint,omitempty"` // add: the member; rotate: the new card (no roles)
	Target  []byte      `cbor:"6,keyasint,omitempty"` // revoke, rotate: the member ID
	Reason  string      `cbor:"7,keyasint,omitempty"`
	Created int64       `cbor:"8,keyasint"`
	// FeedSeq and FeedHead (revoke, rotate) name the target's last log
	// entry the admin saw: the head of its feed. The crisis log keeps the
	// target's entries up to that seq, and later ones only below the
	// Lamport clock of the entry carrying the update, whatever order nodes
	// learn things in (package replication/log, "Revocation").
	FeedSeq  uint64 `cbor:"9,keyasint,omitempty"`
	FeedHead []byte `cbor:"10,keyasint,omitempty"`
	// Group (group) names the group; Members (group, voters) lists the
	// member IDs it sets, sorted; Voter (add) admits the member as a voter.
	Group   string   `cbor:"11,keyasint,omitempty"`
	Members [][]byte `cbor:"12,keyasint,omitempty"`
	Voter   bool     `cbor:"13,keyasint,omitempty"`
}

// An UpdateSpec is what an admin decides in one roster update.
type UpdateSpec struct {
	Op      UpdateOp
	Member  *Member  // OpAdd: the new member
	NewCard *Card    // OpRotate: the member's new card
	Target  MemberID // OpRevoke, OpRotate
	Reason  string
	Created time.Time
	// FeedSeq and FeedHead (OpRevoke, OpRotate): the target's last log
	// entry the admin saw, kept whatever else. Zero seq: none named.
	FeedSeq  uint64
	FeedHead [32]byte
	// Voter (OpAdd): the new member is also a Raft voter.
	Voter bool
	// Group (OpGroup): the group's name; Members (OpGroup, OpVoters): the
	// whole new set of its members or of the voters.
	Group   string
	Members []MemberID
}

// An Update is a signed change to the roster. Updates apply in log order;
// each names the roster version it creates, so one can be applied only once
// and only in its place. It is immutable and safe for concurrent use.
type Update struct {
	id      UpdateID
	raw     []byte
	rawBody []byte // the exact body bytes that were signed
	body    updateBody
	signer  MemberID
	sig     []byte
}

// NewUpdate builds and signs an update to r. It does not check the roster
// rules: Apply does, so a bad update is refused where it matters.
func NewUpdate(r *Roster, spec UpdateSpec, admin *Identity) (*Update, error) {
	body := updateBody{
		Suite: SuiteRoster, Network: r.network[:], Version: r.version + 1, Op: string(spec.Op),
		Reason: spec.Reason, Created: spec.Created.Unix(),
	}
	switch spec.Op {
	case OpAdd:
		if spec.Member == nil || spec.Member.Card == nil {
			return nil, fmt.Errorf("crypto: add: no member card")
		}
		mw := toMemberWire(*spec.Member)
		body.Member = &mw
		body.Voter = spec.Voter
	case OpGroup:
		body.Group = spec.Group
		body.Members = sortedIDs(spec.Members)
		if len(body.Members) == 0 {
			body.Members = nil
		}
	case OpVoters:
		body.Members = sortedIDs(spec.Members)
	case OpRotate:
		if spec.NewCard == nil {
			return nil, fmt.Errorf("crypto: rotate: no new card")
		}
		body.Member = &memberWire{Card: spec.NewCard.Bytes()}
		body.Target = spec.Target[:]
	case OpRevoke:
		body.Target = spec.Target[:]
	default:
		return nil, fmt.Errorf("crypto: unknown roster update %q (want add, revoke, rotate, group or voters)", spec.Op)
	}
	if spec.Op != OpAdd && spec.FeedSeq > 0 {
		body.FeedSeq, body.FeedHead = spec.FeedSeq, spec.FeedHead[:]
	}
	raw, err := signBy(admin, ContextRosterUpdate, &body)
	if err != nil {
		return nil, err
	}
	return ParseUpdate(raw)
}

// ParseUpdate decodes an update strictly. Its signature and rules are
// checked by [Roster.Apply], which knows the signer's key.
func ParseUpdate(b []byte) (*Update, error) {
	u := &Update{raw: append([]byte(nil), b...)}
	w, err := parseSigned(b, &u.body, "roster update")
	if err != nil {
		return nil, err
	}
	u.rawBody, u.sig = w.Body, w.Sig
	if u.body.Suite != SuiteRoster {
		return nil, fmt.Errorf("crypto: roster update: %w: unknown suite %q", ErrMalformed, u.body.Suite)
	}
	if len(w.Signer) != len(u.signer) || len(u.body.Network) != len(NetworkID{}) {
		return nil, fmt.Errorf("crypto: roster update: %w: signer or network ID has the wrong size", ErrMalformed)
	}
	if (u.body.FeedSeq == 0) != (len(u.body.FeedHead) == 0) || len(u.body.FeedHead) != 0 && len(u.body.FeedHead) != 32 {
		return nil, fmt.Errorf("crypto: roster update: %w: feed seq and a 32-byte feed head go together", ErrMalformed)
	}
	if len(u.body.Target) != 0 && len(u.body.Target) != len(MemberID{}) {
		return nil, fmt.Errorf("crypto: roster update: %w: target ID has the wrong size", ErrMalformed)
	}
	for i, m := range u.body.Members {
		if len(m) != len(MemberID{}) {
			return nil, fmt.Errorf("crypto: roster update: %w: member %d has the wrong size", ErrMalformed, i)
		}
		if i > 0 && bytes.Compare(u.body.Members[i-1], m) >= 0 {
			return nil, fmt.Errorf("crypto: roster update: %w: members not sorted and unique", ErrNonCanonical)
		}
	}
	copy(u.signer[:], w.Signer)
	u.id = sha256.Sum256(u.raw)
	return u, nil
}

// An UpdateID names a roster update: the SHA-256 of its exact bytes.
type UpdateID [32]byte

// String returns the ID in hex.
func (id UpdateID) String() string { return hex.EncodeToString(id[:]) }

// ID returns the update's ID, which approvals name.
func (u *Update) ID() UpdateID { return u.id }

// Target returns the member a revoke or rotate names.
func (u *Update) Target() (MemberID, bool) {
	if len(u.body.Target) != len(MemberID{}) {
		return MemberID{}, false
	}
	return MemberID(u.body.Target), true
}

// Created returns when the admin made the update.
func (u *Update) Created() time.Time { return time.Unix(u.body.Created, 0).UTC() }

// Reason returns the reason a revoke gives.
func (u *Update) Reason() string { return u.body.Reason }

// Group returns the group an OpGroup update sets.
func (u *Update) Group() string { return u.body.Group }

// Members returns the IDs an OpGroup or OpVoters update sets.
func (u *Update) Members() []MemberID {
	out := make([]MemberID, len(u.body.Members))
	for i, m := range u.body.Members {
		out[i] = MemberID(m)
	}
	return out
}

// NewMember returns the card an add or rotate carries (nil for others).
func (u *Update) NewMember() *Card {
	if u.body.Member == nil {
		return nil
	}
	c, err := ParseCard(u.body.Member.Card)
	if err != nil {
		return nil
	}
	return c
}

// SelfRevocation reports whether u is a member revoking its own key (the
// break-glass case), which needs no admin.
func (u *Update) SelfRevocation() bool {
	t, ok := u.Target()
	return UpdateOp(u.body.Op) == OpRevoke && ok && t == u.signer
}

// Bytes returns the exact bytes of the update.
func (u *Update) Bytes() []byte { return u.raw }

// Op returns the operation.
func (u *Update) Op() UpdateOp { return UpdateOp(u.body.Op) }

// Version returns the roster version the update creates.
func (u *Update) Version() uint64 { return u.body.Version }

// Signer returns the member ID of the admin who signed.
func (u *Update) Signer() MemberID { return u.signer }

// Apply returns the roster with u applied, or a [*RuleError] naming the
// rule u breaks. r is not changed. Apply is pure: the same roster and
// update always give the same result. With an admin threshold above 1 it
// needs approvals: see [Roster.ApplyApproved].
func (r *Roster) Apply(u *Update) (*Roster, error) { return r.ApplyApproved(u, nil, 0) }

// ApplyAt is Apply for an update carried by a log entry with Lamport clock
// clock: a member the update revokes or rotates records it as
// RevokedClock, which the crisis log's revocation rule needs.
func (r *Roster) ApplyAt(u *Update, clock uint64) (*Roster, error) {
	return r.ApplyApproved(u, nil, clock)
}

// ApplyApproved is ApplyAt with the approvals other admins signed for u.
// The update takes effect when its signer and the approvers that count are
// at least [Roster.Threshold] distinct active admins; approvals that do
// not count (another update, not an admin, a bad signature, made after the
// update expired) are ignored here: [Roster.CheckApproval] says why. A
// member revoking its own key needs no admin (break glass).
func (r *Roster) ApplyApproved(u *Update, approvals []*Approval, clock uint64) (*Roster, error) {
	b := &u.body
	switch {
	case !bytes.Equal(b.Network, r.network[:]):
		return nil, ruleErr("network", "update is for network %x, this is %s", b.Network, r.network)
	case b.Version != r.version+1:
		return nil, ruleErr("version", "update creates version %d but the roster is at %d (it applies only to version %d)", b.Version, r.version, max(b.Version, 1)-1)
	case u.SelfRevocation():
		if !r.Active(u.signer) {
			return nil, ruleErr("target-active", "%s revokes itself but is not an active member", r.describe(u.signer))
		}
	case !r.IsAdmin(u.signer):
		return nil, ruleErr("signer-admin", "update is signed by %s, who is not an active admin", r.describe(u.signer))
	}
	if err := r.byID[u.signer].Card.Verify(ContextRosterUpdate, u.rawBody, u.sig); err != nil {
		re := ruleErr("signature", "update signature by %s: %v", r.describe(u.signer), err)
		re.Err = err
		return nil, re
	}
	if !u.SelfRevocation() {
		if have := r.Approvers(u, approvals); len(have) < r.Threshold() {
			return nil, ruleErr("approvals", "%s needs %d admins' signatures and has %d (approve it with `crisismesh member approve %s` on another admin's node)", b.Op, r.Threshold(), len(have), u.ID())
		}
	}
	next := r.clone()
	next.version = b.Version
	switch UpdateOp(b.Op) {
	case OpAdd:
		if b.Member == nil || len(b.Target) != 0 || b.Group != "" || len(b.Members) != 0 {
			return nil, ruleErr("add-shape", "add needs a member and no target, group or member list")
		}
		m, err := fromMemberWire(*b.Member)
		if err != nil {
			return nil, err
		}
		if err := next.addMemberLocked(m); err != nil {
			return nil, err
		}
		id := m.Card.ID()
		if m.HasRole(RoleAdmin) {
			next.admins[id] = true
		}
		if b.Voter {
			next.voters = insertID(next.voters, id)
			if n := len(next.ActiveVoters()); n%2 == 0 {
				return nil, ruleErr("voters-odd", "adding %s as a voter makes %d voters: the crisis state needs an odd number (add it without --voter, then change the voters with `crisismesh member voter`)", m.Card.name, n)
			}
		}
	case OpRevoke:
		target, err := next.activeTarget(b)
		if err != nil {
			return nil, err
		}
		if b.Member != nil {
			return nil, ruleErr("revoke-shape", "revoke carries no member")
		}
		if b.Reason == "" {
			return nil, ruleErr("revoke-reason", "revoking %s needs a reason", target.Card.name)
		}
		if b.Group != "" || len(b.Members) != 0 || b.Voter {
			return nil, ruleErr("revoke-shape", "revoke carries no group, member list or voter flag")
		}
		target.Revoked, target.Reason, target.RevokedAt, target.RevokedClock = true, b.Reason, b.Version, clock
		target.FeedSeq, target.FeedHead = b.FeedSeq, [32]byte(pad32(b.FeedHead))
		if next.admins[target.Card.ID()] {
			switch n := len(next.activeAdmins()); {
			case n == 0:
				return nil, ruleErr("last-admin", "revoking %s would leave the network without an active admin", target.Card.name)
			case n < next.Threshold():
				return nil, ruleErr("admin-threshold", "revoking %s would leave %d active admins where %d must agree on every change: no change could be made again", target.Card.name, n, next.Threshold())
			}
		}
		next.dropFromGroups(target.Card.ID())
	case OpRotate:
		target, err := next.activeTarget(b)
		if err != nil {
			return nil, err
		}
		if b.Member == nil || len(b.Member.Roles) != 0 || len(b.Member.Addrs) != 0 || b.Group != "" || len(b.Members) != 0 || b.Voter {
			return nil, ruleErr("rotate-shape", "rotate carries only the new card")
		}
		card, err := ParseCard(b.Member.Card)
		if err != nil {
			return nil, err
		}
		if card.name != target.Card.name {
			return nil, ruleErr("rotate-name", "new card is for %q, not %q", card.name, target.Card.name)
		}
		oldID, newID := target.Card.ID(), card.ID()
		target.Revoked, target.Reason, target.RevokedAt, target.RevokedClock = true, "rotated", b.Version, clock
		target.FeedSeq, target.FeedHead = b.FeedSeq, [32]byte(pad32(b.FeedHead))
		nm := &Member{Card: card, Roles: slices.Clone(target.Roles), Addrs: slices.Clone(target.Addrs)}
		// The name is the target's own: admit past the unique-name rule.
		if _, dup := next.byID[newID]; dup {
			return nil, ruleErr("unique-id", "the new key of %s is already in the roster", card.name)
		}
		for _, o := range next.members {
			if o.Card.peerID == card.peerID && o != target {
				return nil, ruleErr("unique-peer", "%s's new peer ID is already used by %s", card.name, o.Card.name)
			}
		}
		next.members = append(next.members, nm)
		next.byID[newID] = nm
		if i := slices.Index(next.voters, oldID); i >= 0 {
			next.voters[i] = newID
			slices.SortFunc(next.voters, func(a, b MemberID) int { return bytes.Compare(a[:], b[:]) })
		}
		if next.admins[oldID] {
			delete(next.admins, oldID)
			next.admins[newID] = true
		}
		for g, ids := range next.groups {
			if i := slices.Index(ids, oldID); i >= 0 {
				next.groups[g] = insertID(slices.Delete(ids, i, i+1), newID)
			}
		}
	case OpGroup:
		if b.Member != nil || len(b.Target) != 0 || b.Voter || b.Reason != "" {
			return nil, ruleErr("group-shape", "a group change carries only the group's name and members")
		}
		if err := CheckGroupName(b.Group); err != nil {
			return nil, ruleErr("group-name", "%v", err)
		}
		ids, err := next.activeIDs(u.Members(), "group "+b.Group)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			if _, ok := next.groups[b.Group]; !ok {
				return nil, ruleErr("group-unknown", "there is no group %q to remove", b.Group)
			}
			delete(next.groups, b.Group)
		} else {
			next.groups[b.Group] = ids
		}
	case OpVoters:
		if b.Member != nil || len(b.Target) != 0 || b.Voter || b.Group != "" {
			return nil, ruleErr("voters-shape", "a voter change carries only the new voters")
		}
		ids, err := next.activeIDs(u.Members(), "voters")
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 || len(ids)%2 == 0 {
			return nil, ruleErr("voters-odd", "%d voters: the crisis state needs an odd number of Raft voters (1, 3, 5, …) so that a majority exists", len(ids))
		}
		next.voters = ids
	default:
		return nil, ruleErr("op", "unknown operation %q", b.Op)
	}
	return next, nil
}

// ApplyUpdates applies updates in order and stops at the first refusal,
// whose [*RuleError] carries the update's index.
func ApplyUpdates(r *Roster, updates []*Update) (*Roster, error) {
	for i, u := range updates {
		next, err := r.Apply(u)
		if err != nil {
			var re *RuleError
			if errors.As(err, &re) {
				re.Index = i
				return nil, re
			}
			return nil, &RuleError{Rule: "member", Detail: err.Error(), Index: i, Err: err}
		}
		r = next
	}
	return r, nil
}

func (r *Roster) activeTarget(b *updateBody) (*Member, error) {
	if len(b.Target) == 0 {
		return nil, ruleErr("target", "%s needs a target member", b.Op)
	}
	m, ok := r.byID[MemberID(b.Target)]
	if !ok {
		return nil, ruleErr("target", "%s: %x is not a member", b.Op, b.Target[:8])
	}
	if m.Revoked {
		return nil, ruleErr("target-active", "%s: %s is already revoked (%s)", b.Op, m.Card.name, m.Reason)
	}
	return m, nil
}

// activeIDs checks that every ID is an active member.
func (r *Roster) activeIDs(ids []MemberID, what string) ([]MemberID, error) {
	for _, id := range ids {
		if !r.Active(id) {
			return nil, ruleErr("members-active", "%s: %s is not an active member", what, r.describe(id))
		}
	}
	return ids, nil
}

// dropFromGroups removes id from every group; a group left empty is gone.
func (r *Roster) dropFromGroups(id MemberID) {
	for g, ids := range r.groups {
		if i := slices.Index(ids, id); i >= 0 {
			if ids = slices.Delete(ids, i, i+1); len(ids) == 0 {
				delete(r.groups, g)
			} else {
				r.groups[g] = ids
			}
		}
	}
}

// insertID adds id to a sorted list, keeping it sorted and unique.
func insertID(ids []MemberID, id MemberID) []MemberID {
	i, found := slices.BinarySearchFunc(ids, id, func(a, b MemberID) int { return bytes.Compare(a[:], b[:]) })
	if found {
		return ids
	}
	return slices.Insert(ids, i, id)
}

func (r *Roster) activeAdmins() []MemberID {
	var out []MemberID
	for a := range r.admins {
		if r.Active(a) {
			out = append(out, a)
		}
	}
	return out
}

// pad32 returns b, or 32 zero bytes if b is empty.
func pad32(b []byte) []byte {
	if len(b) == 0 {
		return make([]byte, 32)
	}
	return b
}
