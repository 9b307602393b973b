package crypto

import (
	"bytes"
	"fmt"
	"regexp"
	"time"
)

// SuiteApproval names version 1 of the approval document.
const SuiteApproval = "crisismesh-approval-v1"

type approvalBody struct {
	Suite   string `cbor:"1,keyasint"`
	Network []byte `cbor:"2,keyasint"`
	Update  []byte `cbor:"3,keyasint"` // the UpdateID approved
	Version uint64 `cbor:"4,keyasint"` // the roster version the update creates
	Created int64  `cbor:"5,keyasint"`
}

// An Approval is an admin's signature on another admin's roster update:
// with an admin threshold above 1 (see [GenesisSpec]), an update takes
// effect once its signer and its approvers are that many distinct active
// admins. It is immutable and safe for concurrent use.
type Approval struct {
	raw     []byte
	rawBody []byte
	body    approvalBody
	signer  MemberID
	sig     []byte
}

// NewApproval signs admin's approval of u at time created.
func NewApproval(u *Update, admin *Identity, created time.Time) (*Approval, error) {
	id := u.ID()
	body := approvalBody{Suite: SuiteApproval, Network: u.body.Network, Update: id[:], Version: u.body.Version, Created: created.Unix()}
	raw, err := signBy(admin, ContextApproval, &body)
	if err != nil {
		return nil, err
	}
	return ParseApproval(raw)
}

// ParseApproval decodes an approval strictly. Its signature is checked by
// [Roster.CheckApproval], which knows the signer's key.
func ParseApproval(b []byte) (*Approval, error) {
	a := &Approval{raw: append([]byte(nil), b...)}
	w, err := parseSigned(b, &a.body, "approval")
	if err != nil {
		return nil, err
	}
	a.rawBody, a.sig = w.Body, w.Sig
	switch {
	case a.body.Suite != SuiteApproval:
		return nil, fmt.Errorf("crypto: approval: %w: unknown suite %q", ErrMalformed, a.body.Suite)
	case len(w.Signer) != len(a.signer), len(a.body.Network) != len(NetworkID{}), len(a.body.Update) != len(UpdateID{}):
		return nil, fmt.Errorf("crypto: approval: %w: signer, network or update ID has the wrong size", ErrMalformed)
	}
	copy(a.signer[:], w.Signer)
	return a, nil
}

// Bytes returns the exact bytes of the approval.
func (a *Approval) Bytes() []byte { return a.raw }

// Signer returns the approving admin's member ID.
func (a *Approval) Signer() MemberID { return a.signer }

// Update returns the ID of the update approved.
func (a *Approval) Update() UpdateID { return UpdateID(a.body.Update) }

// Created returns when the admin approved.
func (a *Approval) Created() time.Time { return time.Unix(a.body.Created, 0).UTC() }

// Expires returns the time after which approvals of u no longer count.
func (r *Roster) Expires(u *Update) time.Time { return u.Created().Add(r.ApprovalTTL()) }

// CheckApproval reports whether a counts towards u on roster r, or a
// [*RuleError] naming the rule it breaks: "approval-update" (it approves
// another update), "signer-admin", "signature", "approval-expired" (made
// after the update's time to collect approvals ran out).
func (r *Roster) CheckApproval(u *Update, a *Approval) error {
	id := u.ID()
	switch {
	case !bytes.Equal(a.body.Update, id[:]) || !bytes.Equal(a.body.Network, u.body.Network) || a.body.Version != u.body.Version:
		return ruleErr("approval-update", "the approval by %s is for update %x, not %s", r.describe(a.signer), a.body.Update[:8], id)
	case !r.IsAdmin(a.signer):
		return ruleErr("signer-admin", "the approval is signed by %s, who is not an active admin", r.describe(a.signer))
	case a.Created().After(r.Expires(u)):
		return ruleErr("approval-expired", "%s approved at %s, after update %s expired at %s", r.describe(a.signer), a.Created().Format(time.RFC3339), id, r.Expires(u).Format(time.RFC3339))
	}
	if err := r.byID[a.signer].Card.Verify(ContextApproval, a.rawBody, a.sig); err != nil {
		re := ruleErr("signature", "approval signature by %s: %v", r.describe(a.signer), err)
		re.Err = err
		return re
	}
	return nil
}

// Approvers returns the distinct active admins who signed u on roster r:
// its signer (if an active admin) and every approver whose approval
// counts, in that order.
func (r *Roster) Approvers(u *Update, approvals []*Approval) []MemberID {
	var out []MemberID
	if r.IsAdmin(u.signer) {
		out = append(out, u.signer)
	}
	for _, a := range r.Counting(u, approvals) {
		out = append(out, a.signer)
	}
	return out
}

// Counting returns the approvals of u that count on roster r, one per
// admin other than u's signer, in the order given.
func (r *Roster) Counting(u *Update, approvals []*Approval) []*Approval {
	var out []*Approval
	seen := map[MemberID]bool{u.signer: true}
	for _, a := range approvals {
		if seen[a.signer] || r.CheckApproval(u, a) != nil {
			continue
		}
		out, seen[a.signer] = append(out, a), true
	}
	return out
}

// An ApprovedUpdate is a roster update with the approvals that made it
// take effect: what the Raft log and snapshots carry, so every voter can
// check it alone.
type ApprovedUpdate struct {
	Update    *Update
	Approvals []*Approval
}

type approvedWire struct {
	Update    []byte   `cbor:"1,keyasint"`
	Approvals [][]byte `cbor:"2,keyasint"`
}

// Bytes encodes a: the update's own bytes when it has no approvals (as
// before thresholds existed), else the update and its approvals.
func (a ApprovedUpdate) Bytes() ([]byte, error) {
	if len(a.Approvals) == 0 {
		return a.Update.Bytes(), nil
	}
	w := approvedWire{Update: a.Update.Bytes()}
	for _, ap := range a.Approvals {
		w.Approvals = append(w.Approvals, ap.Bytes())
	}
	return marshal(&w)
}

// ParseApprovedUpdate decodes what [ApprovedUpdate.Bytes] encodes.
func ParseApprovedUpdate(b []byte) (ApprovedUpdate, error) {
	if u, err := ParseUpdate(b); err == nil {
		return ApprovedUpdate{Update: u}, nil
	}
	var w approvedWire
	if err := unmarshalCanonical(b, &w); err != nil {
		return ApprovedUpdate{}, fmt.Errorf("crypto: approved update: %w", err)
	}
	if len(w.Approvals) == 0 {
		return ApprovedUpdate{}, fmt.Errorf("crypto: approved update: %w: no approvals (an update alone is its own bytes)", ErrNonCanonical)
	}
	u, err := ParseUpdate(w.Update)
	if err != nil {
		return ApprovedUpdate{}, err
	}
	out := ApprovedUpdate{Update: u}
	for _, raw := range w.Approvals {
		ap, err := ParseApproval(raw)
		if err != nil {
			return ApprovedUpdate{}, err
		}
		out.Approvals = append(out.Approvals, ap)
	}
	return out, nil
}

// ApplyApprovedUpdate applies a on roster r (clock as in [Roster.ApplyAt]).
func (r *Roster) ApplyApprovedUpdate(a ApprovedUpdate, clock uint64) (*Roster, error) {
	return r.ApplyApproved(a.Update, a.Approvals, clock)
}

var rosterGroupRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,47}$`)

// CheckGroupName checks the name of a named need-to-know group: 1 to 48
// characters a-z, 0-9, '.', '_', '-', and not "all" (the whole network).
func CheckGroupName(name string) error {
	if !rosterGroupRE.MatchString(name) || name == "all" {
		return fmt.Errorf("crypto: group name %q: want 1 to 48 characters a-z, 0-9, '.', '_', '-' (and not \"all\", the whole network)", name)
	}
	return nil
}

// GroupKeyName is the name of the group key that seals posts to the named
// group: "group/" and its name.
func GroupKeyName(group string) string { return "group/" + group }
