package matrix

import (
	"slices"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Entry is a log entry as the bridge sees it (the node's view of it).
type Entry struct {
	ID       string // full entry ID (hex)
	AuthorID string // member ID (hex): the key of a Position
	Author   string // member name
	Seq      uint64
	Time     time.Time
	// Readable is false for an entry sealed to a group this node is not
	// in (or one it does not believe): it is never bridged.
	Readable bool
	Kind     log.Kind
	TLP      log.TLP
	Text     string
	Exercise bool
	// Bridged is set on entries a bridge wrote from outside the mesh.
	Bridged *log.Bridged
}

// Position is how far the bridge has handled each author's feed: member
// ID (hex) → the last seq handled (sent or withheld). Feeds are hash
// chains, so a seq per author names exactly what was handled, also for
// entries that arrive late from a partitioned author.
type Position map[string]uint64

// Clone returns a copy of p.
func (p Position) Clone() Position {
	c := make(Position, len(p))
	for k, v := range p {
		c[k] = v
	}
	return c
}

// Alert is one of the node's Reserve alerts, the ones `crisismesh status`
// shows: an open Reserve request with under 2 hours left until its
// deadline, or past it. The bridge posts each (code, request) to the
// room once, as a notice.
type Alert struct {
	Code    string // AlertDeadline or AlertOverdue
	Request string // the Reserve request's ID
	Text    string // for people
}

// Codes of Alert (those of the node's status alerts).
const (
	AlertDeadline = "reserve-deadline" // under 2 hours left
	AlertOverdue  = "reserve-overdue"  // past the deadline
)

// key names the alert in the bridge's state and in the event's content.
func (a Alert) key() string { return a.Code + "-" + a.Request }

// NoticeTLP is the label of a Reserve deadline notice: that of the
// node's crisis-state entries.
const NoticeTLP = log.TLPAmber

// Room is what the bridge knows of the room before an AMBER send.
type Room struct {
	Encrypted bool
	Joined    []string // user IDs of the joined members
}

// Reasons an entry is withheld from the room (Status and the metric's
// label).
const (
	WithheldSealed       = "sealed"           // this node cannot read it
	WithheldBridged      = "from-matrix"      // it came from the room
	WithheldKind         = "kind"             // its kind is not configured
	WithheldMember       = "member"           // its author is not configured
	WithheldRed          = "tlp-red"          // never crosses
	WithheldAmberStrict  = "tlp-amber+strict" // never crosses
	WithheldAboveMax     = "tlp-above-max"    // above max_tlp
	WithheldNotEncrypted = "amber-room-not-encrypted"
	WithheldNotAllowed   = "amber-member-not-allowed"
)

// withhold says why e must not go to the room, or "" if it may. room is
// asked only for an AMBER entry (it costs a request).
func (c Config) withhold(e Entry, room func() (Room, error)) (string, error) {
	switch {
	case !e.Readable:
		return WithheldSealed, nil
	case e.Bridged != nil:
		return WithheldBridged, nil
	case !slices.Contains(c.kinds(), e.Kind):
		return WithheldKind, nil
	case len(c.Members) > 0 && !slices.Contains(c.Members, e.Author):
		return WithheldMember, nil
	}
	return c.withholdTLP(e.TLP, room)
}

// withholdNotice says why a Reserve deadline notice must not go to the
// room, or "" if it may. A notice tells of the crisis state, so it goes
// where the crisis state may go: kind checkpoint configured, at
// TLP:AMBER (the label of the node's crisis-state entries). It has no
// author, so the members rule does not apply.
func (c Config) withholdNotice(room func() (Room, error)) (string, error) {
	if !slices.Contains(c.kinds(), log.KindCheckpoint) {
		return WithheldKind, nil
	}
	return c.withholdTLP(NoticeTLP, room)
}

// withholdTLP applies the TLP rules: RED and AMBER+STRICT never, nothing
// above max_tlp, AMBER only to an encrypted room of allowed members.
func (c Config) withholdTLP(t log.TLP, room func() (Room, error)) (string, error) {
	switch t {
	case log.TLPRed:
		return WithheldRed, nil
	case log.TLPAmberStrict:
		return WithheldAmberStrict, nil
	}
	r, ok := tlpRank[t]
	if !ok || r > tlpRank[c.maxTLP()] {
		return WithheldAboveMax, nil
	}
	if t != log.TLPAmber {
		return "", nil
	}
	st, err := room()
	if err != nil {
		return "", err
	}
	if !st.Encrypted {
		return WithheldNotEncrypted, nil
	}
	for _, m := range st.Joined {
		if m != c.User && !slices.Contains(c.Allow, m) {
			return WithheldNotAllowed, nil
		}
	}
	return "", nil
}

// allowed reports whether sender may write into the mesh.
func (c Config) allowed(sender string) bool {
	return sender != c.User && slices.Contains(c.Allow, sender)
}

// inboundTLP is the label of an entry written from the room: room_tlp,
// never above what the room can hold (AMBER only in an encrypted room).
func (c Config) inboundTLP(encrypted bool) log.TLP {
	t := c.roomTLP()
	if t == log.TLPAmber && !encrypted {
		return log.TLPGreen
	}
	return t
}
