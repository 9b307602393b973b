package crypto

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// SuiteRoster names version 1 of the genesis and roster-update documents.
const SuiteRoster = "crisismesh-roster-v1"

// A Role is what a member may do in the crisis. The three Blueprint levels
// are csirt (technical), cyclone (operational) and presidency (political).
type Role string

// The roles DESIGN.md names.
const (
	RoleCSIRT      Role = "csirt"
	RoleCyclone    Role = "cyclone"
	RolePresidency Role = "presidency"
	RoleCommission Role = "commission"
	RoleENISA      Role = "enisa"
	RoleCERTEU     Role = "cert-eu"
	RoleObserver   Role = "observer"
	RoleAdmin      Role = "admin"
)

// Roles lists every valid role.
var Roles = []Role{RoleCSIRT, RoleCyclone, RolePresidency, RoleCommission, RoleENISA, RoleCERTEU, RoleObserver, RoleAdmin}

// ParseRole checks that s names a role.
func ParseRole(s string) (Role, error) {
	if slices.Contains(Roles, Role(s)) {
		return Role(s), nil
	}
	names := make([]string, len(Roles))
	for i, r := range Roles {
		names[i] = string(r)
	}
	return "", fmt.Errorf("crypto: unknown role %q (roles: %s)", s, strings.Join(names, ", "))
}

var networkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ErrRule is the class of every roster refusal; the [RuleError] says which
// rule was broken.
var ErrRule = errors.New("crypto: roster rule broken")

// A RuleError is a roster or update refused by a named rule.
type RuleError struct {
	Rule   string // stable name, e.g. "voters-odd"
	Detail string // what was wrong, for a person
	Index  int    // with ApplyUpdates: which update (from 0); else -1
	Err    error  // the underlying error, if any (e.g. ErrBadSignature)
}

func (e *RuleError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("roster update %d refused by rule %s: %s", e.Index, e.Rule, e.Detail)
	}
	return fmt.Sprintf("roster refused by rule %s: %s", e.Rule, e.Detail)
}

// Unwrap makes errors.Is(err, ErrRule) true, and errors.Is true for the
// underlying error.
func (e *RuleError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrRule, e.Err}
	}
	return []error{ErrRule}
}

func ruleErr(rule, format string, args ...any) *RuleError {
	return &RuleError{Rule: rule, Detail: fmt.Sprintf(format, args...), Index: -1}
}

// A Member is one entry of the roster.
type Member struct {
	Card  *Card
	Roles []Role   // sorted
	Addrs []string // multiaddr hints for reaching the member's node
	// Revoked is set once an update revoked the member (or rotated its
	// keys); Reason says why and RevokedAt is the roster version that did.
	Revoked   bool
	Reason    string
	RevokedAt uint64
	// FeedSeq and FeedHead: for a revoked member, the last log entry the
	// revoking admin saw of it (zero: none). The crisis log keeps every
	// entry up to it (package replication/log, "Revocation").
	FeedSeq  uint64
	FeedHead [32]byte
	// RevokedClock: for a revoked member, the Lamport clock of the log
	// entry that carried the revocation, as [Roster.ApplyAt] was told
	// (zero: not known, for a roster built from updates alone).
	RevokedClock uint64
}

// HasRole reports whether m holds role r (revoked or not).
func (m *Member) HasRole(r Role) bool { return slices.Contains(m.Roles, r) }

func (m *Member) clone() *Member {
	c := *m
	c.Roles = slices.Clone(m.Roles)
	c.Addrs = slices.Clone(m.Addrs)
	return &c
}

type memberWire struct {
	Card  []byte   `cbor:"1,keyasint"`
	Roles []string `cbor:"2,keyasint"`
	Addrs []string `cbor:"3,keyasint,omitempty"`
}

type genesisBody struct {
	Suite   string       `cbor:"1,keyasint"`
	Network string       `cbor:"2,keyasint"`
	Created int64        `cbor:"3,keyasint"`
	Members []memberWire `cbor:"4,keyasint"`
	Voters  [][]byte     `cbor:"5,keyasint"`
	Admins  [][]byte     `cbor:"6,keyasint"`
	// Threshold and ApprovalTTL (seconds) are written only when the
	// threshold is above 1, so a genesis without them keeps its bytes and
	// its network ID: absent means one admin's signature suffices.
	Threshold   uint64 `cbor:"7,keyasint,omitempty"`
	ApprovalTTL int64  `cbor:"8,keyasint,omitempty"`
}

// A GenesisSpec is what an admin decides when creating a network.
type GenesisSpec struct {
	Network string    // e.g. "eu-cyclone"
	Created time.Time // written into the document
	Members []Member  // including the admin itself
	Voters  []MemberID
	Admins  []MemberID
	// AdminThreshold is how many distinct admins must sign a roster or
	// group change before it takes effect (0 or 1: one). It may not exceed
	// the number of admins.
	AdminThreshold int
	// ApprovalTTL is how long after its creation an update may collect
	// approvals (0: DefaultApprovalTTL). Used only with a threshold above 1.
	ApprovalTTL time.Duration
}

// DefaultApprovalTTL is how long an update waits for approvals when the
// genesis does not say.
const DefaultApprovalTTL = 72 * time.Hour

// A Genesis is the signed founding roster of a network. Its network ID is
// the SHA-256 of its exact bytes. It is immutable and safe for concurrent
// use.
type Genesis struct {
	raw    []byte
	roster *Roster
}

// NewGenesis builds and signs the genesis document; signer must be one of
// the spec's admins. Members, roles, voters and admins are put in canonical
// order; every rule ParseGenesis checks is checked here too.
func NewGenesis(spec GenesisSpec, signer *Identity) (*Genesis, error) {
	body := genesisBody{Suite: SuiteRoster, Network: spec.Network, Created: spec.Created.Unix()}
	members := slices.Clone(spec.Members)
	for _, m := range members {
		if m.Card == nil {
			return nil, ruleErr("member-card", "a member has no card")
		}
	}
	// Members in name order: canonical, and readable when listed.
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Card.name, b.Card.name) })
	for _, m := range members {
		body.Members = append(body.Members, toMemberWire(m))
	}
	body.Voters = sortedIDs(spec.Voters)
	body.Admins = sortedIDs(spec.Admins)
	if spec.AdminThreshold < 0 || spec.ApprovalTTL < 0 {
		return nil, ruleErr("admin-threshold", "threshold %d and approval time %s: neither may be negative", spec.AdminThreshold, spec.ApprovalTTL)
	}
	if spec.AdminThreshold > 1 {
		body.Threshold = uint64(spec.AdminThreshold)
		if spec.ApprovalTTL != 0 && spec.ApprovalTTL != DefaultApprovalTTL {
			if spec.ApprovalTTL < time.Second {
				return nil, ruleErr("approval-ttl", "approval time %s: want at least a second", spec.ApprovalTTL)
			}
			body.ApprovalTTL = int64(spec.ApprovalTTL / time.Second)
		}
	}
	raw, err := signBy(signer, ContextRoster, &body)
	if err != nil {
		return nil, err
	}
	return ParseGenesis(raw)
}

func toMemberWire(m Member) memberWire {
	mw := memberWire{Card: m.Card.Bytes(), Addrs: slices.Clone(m.Addrs)}
	for _, r := range m.Roles {
		mw.Roles = append(mw.Roles, string(r))
	}
	slices.Sort(mw.Roles)
	mw.Roles = slices.Compact(mw.Roles)
	return mw
}

func sortedIDs(ids []MemberID) [][]byte {
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		out = append(out, append([]byte(nil), id[:]...))
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

// ParseGenesis decodes a genesis document and checks every rule: canonical
// encoding, valid member cards, unique names, IDs and peer IDs, valid roles,
// an odd number of voters who are all members, admins who are members with
// the admin role, and a valid signature by one of those admins.
func ParseGenesis(b []byte) (*Genesis, error) {
	var body genesisBody
	w, err := parseSigned(b, &body, "genesis")
	if err != nil {
		return nil, err
	}
	if body.Suite != SuiteRoster {
		return nil, fmt.Errorf("crypto: genesis: %w: unknown suite %q (this version knows %q)", ErrMalformed, body.Suite, SuiteRoster)
	}
	r := &Roster{
		network: sha256.Sum256(b),
		name:    body.Network,
		created: time.Unix(body.Created, 0).UTC(),
		byID:    map[MemberID]*Member{},
		admins:  map[MemberID]bool{},
	}
	if !networkNameRE.MatchString(body.Network) {
		return nil, ruleErr("network-name", "network name %q: want 1 to 63 characters a-z, 0-9, '.', '_' and '-'", body.Network)
	}
	if len(body.Members) == 0 {
		return nil, ruleErr("members-nonempty", "the roster lists no members")
	}
	prevName := ""
	for _, mw := range body.Members {
		m, err := fromMemberWire(mw)
		if err != nil {
			return nil, err
		}
		if m.Card.name <= prevName {
			if m.Card.name == prevName {
				return nil, ruleErr("unique-name", "two members are called %q", prevName)
			}
			return nil, fmt.Errorf("crypto: genesis: %w: members are not sorted by name", ErrNonCanonical)
		}
		prevName = m.Card.name
		if err := r.addMemberLocked(m); err != nil {
			return nil, err
		}
	}
	voters, err := idList(body.Voters, "voters")
	if err != nil {
		return nil, err
	}
	admins, err := idList(body.Admins, "admins")
	if err != nil {
		return nil, err
	}
	r.voters = voters
	for _, id := range admins {
		r.admins[id] = true
	}
	r.threshold, r.approvalTTL = 1, DefaultApprovalTTL
	switch {
	case body.Threshold == 1:
		return nil, fmt.Errorf("crypto: genesis: %w: a threshold of 1 is written by leaving it out", ErrNonCanonical)
	case body.Threshold > uint64(len(admins)):
		return nil, ruleErr("admin-threshold", "the genesis asks %d admins to agree but names %d admins", body.Threshold, len(admins))
	case body.Threshold > 1:
		r.threshold = int(body.Threshold)
	}
	switch {
	case body.ApprovalTTL != 0 && body.Threshold == 0:
		return nil, fmt.Errorf("crypto: genesis: %w: an approval time without a threshold", ErrNonCanonical)
	case body.ApprovalTTL < 0 || body.ApprovalTTL > int64(10*365*24*time.Hour/time.Second):
		return nil, ruleErr("approval-ttl", "approval time of %d s is out of range", body.ApprovalTTL)
	case body.ApprovalTTL == int64(DefaultApprovalTTL/time.Second):
		return nil, fmt.Errorf("crypto: genesis: %w: the default approval time is written by leaving it out", ErrNonCanonical)
	case body.ApprovalTTL > 0:
		r.approvalTTL = time.Duration(body.ApprovalTTL) * time.Second
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	var signer MemberID
	if len(w.Signer) != len(signer) {
		return nil, ruleErr("signer-admin", "the genesis names no signer")
	}
	copy(signer[:], w.Signer)
	if !r.admins[signer] {
		return nil, ruleErr("signer-admin", "the genesis is signed by %s, who is not one of its admins", r.describe(signer))
	}
	if err := r.byID[signer].Card.Verify(ContextRoster, w.Body, w.Sig); err != nil {
		return nil, fmt.Errorf("crypto: genesis signature by %s: %w", r.describe(signer), err)
	}
	return &Genesis{raw: append([]byte(nil), b...), roster: r}, nil
}

// Bytes returns the exact bytes of the document.
func (g *Genesis) Bytes() []byte { return g.raw }

// NetworkID returns the network ID: SHA-256 of the document's bytes.
func (g *Genesis) NetworkID() NetworkID { return g.roster.network }

// Roster returns the roster the genesis founds (version 0).
func (g *Genesis) Roster() *Roster { return g.roster }

func fromMemberWire(mw memberWire) (*Member, error) {
	card, err := ParseCard(mw.Card)
	if err != nil {
		return nil, err
	}
	m := &Member{Card: card, Addrs: mw.Addrs}
	if len(mw.Roles) == 0 {
		return nil, ruleErr("roles-nonempty", "member %s has no role", card.name)
	}
	for i, s := range mw.Roles {
		role, err := ParseRole(s)
		if err != nil {
			return nil, ruleErr("roles-valid", "member %s: %v", card.name, err)
		}
		if i > 0 && mw.Roles[i-1] >= s {
			return nil, fmt.Errorf("crypto: member %s: %w: roles are not sorted and unique", card.name, ErrNonCanonical)
		}
		m.Roles = append(m.Roles, role)
	}
	for _, a := range mw.Addrs {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			return nil, ruleErr("addrs-valid", "member %s: address %q is not a multiaddr (e.g. /ip4/192.0.2.1/udp/4001/quic-v1): %v", card.name, a, err)
		}
	}
	return m, nil
}

func idList(raw [][]byte, what string) ([]MemberID, error) {
	out := make([]MemberID, 0, len(raw))
	for i, b := range raw {
		if len(b) != len(MemberID{}) {
			return nil, fmt.Errorf("crypto: %s: %w: entry %d is %d bytes", what, ErrMalformed, i, len(b))
		}
		if i > 0 && bytes.Compare(raw[i-1], b) >= 0 {
			return nil, fmt.Errorf("crypto: %s: %w: not sorted and unique", what, ErrNonCanonical)
		}
		out = append(out, MemberID(b))
	}
	return out, nil
}

// Roster is the membership of a network at one version: the genesis with
// every admin-signed update applied in log order. A Roster is immutable:
// Apply returns a new one. It is safe for concurrent use.
type Roster struct {
	network NetworkID
	name    string
	created time.Time
	version uint64
	members []*Member // in order of admission
	byID    map[MemberID]*Member
	voters  []MemberID // sorted
	admins  map[MemberID]bool
	// threshold admins must sign a change; updates collect approvals for
	// approvalTTL after they are created.
	threshold   int
	approvalTTL time.Duration
	// groups: the named need-to-know groups, each its members' IDs sorted.
	groups map[string][]MemberID
}

// NetworkID returns the ID of the network.
func (r *Roster) NetworkID() NetworkID { return r.network }

// Name returns the network's name.
func (r *Roster) Name() string { return r.name }

// Created returns the genesis time.
func (r *Roster) Created() time.Time { return r.created }

// Version is the number of updates applied since genesis.
func (r *Roster) Version() uint64 { return r.version }

// Members returns every member, revoked ones included, in order of
// admission. The slice and the Members are copies owned by the caller.
func (r *Roster) Members() []*Member {
	out := make([]*Member, len(r.members))
	for i, m := range r.members {
		out[i] = m.clone()
	}
	return out
}

// Member returns a copy of the member with ID id.
func (r *Roster) Member(id MemberID) (*Member, bool) {
	m, ok := r.byID[id]
	if !ok {
		return nil, false
	}
	return m.clone(), true
}

// ByName returns the active member called name, or the newest revoked one.
func (r *Roster) ByName(name string) (*Member, bool) {
	var found *Member
	for _, m := range r.members {
		if m.Card.name == name && (found == nil || found.Revoked || !m.Revoked) {
			found = m
		}
	}
	if found == nil {
		return nil, false
	}
	return found.clone(), true
}

// ByPeer returns the member whose node has peer ID p.
func (r *Roster) ByPeer(p peer.ID) (*Member, bool) {
	for _, m := range r.members {
		if m.Card.peerID == p && !m.Revoked {
			return m.clone(), true
		}
	}
	return nil, false
}

// Active reports whether id is a member that is not revoked.
func (r *Roster) Active(id MemberID) bool {
	m, ok := r.byID[id]
	return ok && !m.Revoked
}

// HasRole reports whether id is an active member holding role.
func (r *Roster) HasRole(id MemberID, role Role) bool {
	m, ok := r.byID[id]
	return ok && !m.Revoked && m.HasRole(role)
}

// IsVoter reports whether id is a Raft voter.
func (r *Roster) IsVoter(id MemberID) bool {
	_, ok := slices.BinarySearchFunc(r.voters, id, func(a, b MemberID) int { return bytes.Compare(a[:], b[:]) })
	return ok
}

// IsAdmin reports whether id is an active admin.
func (r *Roster) IsAdmin(id MemberID) bool { return r.admins[id] && r.Active(id) }

// Voters returns the Raft voters in canonical order (revoked ones
// included: removing them from Raft is the consensus layer's job).
func (r *Roster) Voters() []MemberID { return slices.Clone(r.voters) }

// Admins returns the active admins in canonical order.
func (r *Roster) Admins() []MemberID {
	out := make([]MemberID, 0, len(r.admins))
	for id := range r.admins {
		if r.Active(id) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b MemberID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Threshold is how many distinct active admins must sign a roster or group
// change (1 unless the genesis says more).
func (r *Roster) Threshold() int { return max(r.threshold, 1) }

// ApprovalTTL is how long after its creation an update may collect the
// approvals it needs.
func (r *Roster) ApprovalTTL() time.Duration {
	if r.approvalTTL == 0 {
		return DefaultApprovalTTL
	}
	return r.approvalTTL
}

// Groups returns the names of the named need-to-know groups, sorted.
func (r *Roster) Groups() []string {
	out := make([]string, 0, len(r.groups))
	for g := range r.groups {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// Group returns the members of the named group (sorted by ID; revoked
// members are removed from every group) and whether it exists.
func (r *Roster) Group(name string) ([]MemberID, bool) {
	ids, ok := r.groups[name]
	return slices.Clone(ids), ok
}

// ActiveIDs returns the IDs of the members that are not revoked, in order
// of admission.
func (r *Roster) ActiveIDs() []MemberID {
	out := make([]MemberID, 0, len(r.members))
	for _, m := range r.members {
		if !m.Revoked {
			out = append(out, m.Card.ID())
		}
	}
	return out
}

// ActiveVoters returns the voters that are not revoked, in canonical order.
func (r *Roster) ActiveVoters() []MemberID {
	var out []MemberID
	for _, v := range r.voters {
		if r.Active(v) {
			out = append(out, v)
		}
	}
	return out
}

func (r *Roster) describe(id MemberID) string {
	if m, ok := r.byID[id]; ok {
		return fmt.Sprintf("%s (%s)", m.Card.name, id.Short())
	}
	return id.Short()
}

// addMemberLocked admits m, enforcing unique names, IDs and peer IDs among
// all members ever admitted: a revoked member's name is never reused, so a
// name in old entries always means one member. "Locked" because it mutates
// r, which is only done while r is being built.
func (r *Roster) addMemberLocked(m *Member) error {
	id := m.Card.ID()
	if _, dup := r.byID[id]; dup {
		return ruleErr("unique-id", "member ID %s is listed twice", id.Short())
	}
	for _, o := range r.members {
		if o.Card.name == m.Card.name {
			return ruleErr("unique-name", "two members are called %q", m.Card.name)
		}
		if o.Card.peerID == m.Card.peerID {
			return ruleErr("unique-peer", "%s and %s have the same peer ID", o.Card.name, m.Card.name)
		}
	}
	r.members = append(r.members, m)
	r.byID[id] = m
	return nil
}

// check enforces the rules on voters and admins.
func (r *Roster) check() error {
	if len(r.voters) == 0 || len(r.voters)%2 == 0 {
		return ruleErr("voters-odd", "%d voters: the crisis state needs an odd number of Raft voters (1, 3, 5, …) so that a majority exists", len(r.voters))
	}
	for _, v := range r.voters {
		if _, ok := r.byID[v]; !ok {
			return ruleErr("voters-members", "voter %s is not a member", v.Short())
		}
	}
	if len(r.admins) == 0 {
		return ruleErr("admins-nonempty", "the roster names no admin")
	}
	for a := range r.admins {
		m, ok := r.byID[a]
		if !ok {
			return ruleErr("admins-members", "admin %s is not a member", a.Short())
		}
		if !m.HasRole(RoleAdmin) {
			return ruleErr("admins-role", "admin %s does not hold the admin role", m.Card.name)
		}
	}
	return nil
}

func (r *Roster) clone() *Roster {
	c := &Roster{
		network: r.network, name: r.name, created: r.created, version: r.version,
		byID: make(map[MemberID]*Member, len(r.byID)), voters: slices.Clone(r.voters),
		admins:    make(map[MemberID]bool, len(r.admins)),
		threshold: r.threshold, approvalTTL: r.approvalTTL,
		groups: make(map[string][]MemberID, len(r.groups)),
	}
	for g, ids := range r.groups {
		c.groups[g] = slices.Clone(ids)
	}
	for _, m := range r.members {
		mc := m.clone()
		c.members = append(c.members, mc)
		c.byID[mc.Card.ID()] = mc
	}
	for a := range r.admins {
		c.admins[a] = true
	}
	return c
}
