package node

import (
	"runtime"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// The JSON views below are a contract: scripts and other tools read these
// field names. Add fields; never rename or remove one.

// BuildInfo describes this build.
type BuildInfo struct {
	Version        string `json:"version"`
	Go             string `json:"go"`
	SignatureSuite string `json:"signature_suite"`
	KEMSuite       string `json:"kem_suite"`
	SealSuite      string `json:"seal_suite"`
	GroupSuite     string `json:"group_suite"`
	CardSuite      string `json:"card_suite"`
	RosterSuite    string `json:"roster_suite"`
}

// Info returns the build's version and suites.
func Info(version string) BuildInfo {
	return BuildInfo{
		Version: version, Go: runtime.Version(),
		SignatureSuite: crypto.SuiteSignature, KEMSuite: crypto.SuiteKEM, SealSuite: crypto.SuiteSeal,
		GroupSuite: crypto.SuiteGroup, CardSuite: crypto.SuiteCard, RosterSuite: crypto.SuiteRoster,
	}
}

// CardView is a member card as people and scripts read it.
type CardView struct {
	Name     string    `json:"name"`
	MemberID string    `json:"member_id"`
	PeerID   string    `json:"peer_id"`
	Created  time.Time `json:"created"`
}

// ViewCard summarises a card.
func ViewCard(c *crypto.Card) CardView {
	return CardView{Name: c.Name(), MemberID: c.ID().String(), PeerID: c.PeerID().String(), Created: c.Created()}
}

// MemberView is one roster member.
type MemberView struct {
	CardView
	Roles   []string `json:"roles"`
	Addrs   []string `json:"addrs"`
	Voter   bool     `json:"voter"`
	Admin   bool     `json:"admin"`
	Revoked bool     `json:"revoked"`
	Reason  string   `json:"revoked_reason,omitempty"`
}

// NetworkView is a roster as people and scripts read it.
type NetworkView struct {
	NetworkID string       `json:"network_id"`
	Name      string       `json:"name"`
	Created   time.Time    `json:"created"`
	Version   uint64       `json:"roster_version"`
	Members   []MemberView `json:"members"`
}

// ViewRoster summarises a roster.
func ViewRoster(r *crypto.Roster) NetworkView {
	v := NetworkView{NetworkID: r.NetworkID().String(), Name: r.Name(), Created: r.Created(), Version: r.Version()}
	for _, m := range r.Members() {
		mv := MemberView{
			CardView: ViewCard(m.Card), Addrs: m.Addrs, Roles: []string{},
			Voter: r.IsVoter(m.Card.ID()), Admin: r.IsAdmin(m.Card.ID()), Revoked: m.Revoked, Reason: m.Reason,
		}
		if mv.Addrs == nil {
			mv.Addrs = []string{}
		}
		for _, role := range m.Roles {
			mv.Roles = append(mv.Roles, string(role))
		}
		v.Members = append(v.Members, mv)
	}
	return v
}
