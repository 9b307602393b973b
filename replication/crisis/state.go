package crisis

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// Bounds that keep a state, and so a Raft snapshot, small.
const (
	maxHistory        = 256  // decisions kept; the oldest is dropped, the count kept
	maxSeen           = 4096 // command IDs remembered for dedupe
	maxCrises         = 1024 // crisis IDs remembered, so an old open is never replayed
	maxOpenRequests   = 256  // open Reserve requests; more are refused
	maxClosedRequests = 256  // closed Reserve requests kept; the oldest is dropped
)

// ReserveDeadline is how long the Commission and ENISA have to answer a
// request for EU Cybersecurity Reserve services: the deadline is the
// request's time (from its Raft entry) plus 24 hours.
const ReserveDeadline = 24 * time.Hour

// State is the crisis state: the one answer, identical on every node that
// applied the same commands, to "what is the crisis and at which level is
// it right now". Its zero value is a network where no crisis was ever
// opened.
//
// A State is a value, but its slices make copies made with = share memory:
// use Clone for an independent copy. Apply never modifies the State it is
// given. A State is not safe for concurrent modification; the slices of a
// State returned by Apply are owned by whoever holds it.
type State struct {
	// Status says whether the crisis named by Crisis is open or closed.
	Status Status
	// Crisis is the ID of the open (or last) crisis: the ID of the command
	// that opened it.
	Crisis ID
	Title  string
	// Exercise marks an exercise: every decision and request it produces
	// says EXERCISE.
	Exercise bool
	Level    Level
	Mode     Mode
	Phase    Phase
	// Affected are the affected member states (ISO 3166-1 alpha-2, sorted);
	// Sectors the nis2 sectors impacted (sorted).
	Affected []string
	Sectors  []string
	// Severity, Outlook and RootCause are nis2 values; empty until assessed.
	Severity  string
	Outlook   string
	RootCause string
	// Lead is the member leading the crisis: the one who opened it.
	Lead     crypto.MemberID
	LeadName string
	Opened   time.Time
	// Closed, CloseReason and Lessons are set once the crisis is closed.
	Closed      time.Time
	CloseReason string
	Lessons     string
	// Requests are this crisis's requests for EU Cybersecurity Reserve
	// services, in the order they were made: every open one and the
	// newest closed ones.
	Requests []Request
	// History holds the newest decisions, oldest first; Decisions counts
	// every decision ever applied, so the number dropped is Decisions −
	// len(History).
	History   []Decision
	Decisions uint64
	// Term, Index and Updated are the Raft position and time of the last
	// applied command.
	Term    uint64
	Index   uint64
	Updated time.Time

	seen   []ID // IDs of the newest applied commands, oldest first
	crises []ID // IDs of the newest crises opened, oldest first
}

// A Request is a request for EU Cybersecurity Reserve services.
type Request struct {
	// ID is the ID of the command that made the request.
	ID       ID
	Exercise bool
	Sector   string   // nis2 sector
	Services []string // the services asked for, as the requester wrote them
	Note     string
	By       crypto.MemberID
	ByName   string
	At       time.Time // the request's Raft entry time
	Deadline time.Time // At + ReserveDeadline
	Status   RequestStatus
	// ClosedAt, ClosedBy and Answer are set when the Commission or ENISA
	// marks the request deployed or withdrawn (or the crisis closes).
	ClosedAt     time.Time
	ClosedBy     crypto.MemberID
	ClosedByName string
	Answer       string
}

// A Decision is one applied command in the history: who, what, when and
// where in the Raft log.
type Decision struct {
	Command  ID // the command's ID
	Crisis   ID
	Kind     Kind
	By       crypto.MemberID
	ByName   string
	What     string // for a person; begins "EXERCISE: " in an exercise
	At       time.Time
	Term     uint64
	Index    uint64
	Exercise bool
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	s.Affected = slices.Clone(s.Affected)
	s.Sectors = slices.Clone(s.Sectors)
	s.Requests = slices.Clone(s.Requests)
	for i := range s.Requests {
		s.Requests[i].Services = slices.Clone(s.Requests[i].Services)
	}
	s.History = slices.Clone(s.History)
	s.seen = slices.Clone(s.seen)
	s.crises = slices.Clone(s.crises)
	return s
}

// applied reports whether the command with ID id was applied (as long as
// it is remembered: see the package doc on duplicates).
func (s *State) applied(id ID) bool {
	return slices.Contains(s.seen, id) || slices.Contains(s.crises, id)
}

// pushBounded appends v to list and drops the oldest elements beyond
// limit. It reallocates rather than reslicing, so a long run does not pin an
// ever-growing backing array.
func pushBounded[T any](list []T, v T, limit int) []T {
	if len(list) < limit {
		return append(list, v)
	}
	out := make([]T, 0, limit)
	out = append(out, list[len(list)-limit+1:]...)
	return append(out, v)
}

// An OpenRequest is an open Reserve request and the time left until its
// deadline at some moment.
type OpenRequest struct {
	Request
	Left    time.Duration // until the deadline; negative once overdue
	Overdue bool          // the deadline has passed
}

// OpenRequests returns the open Reserve requests, earliest deadline first,
// with the time left at now. now is the caller's clock: this package reads
// none. The slice is the caller's.
func (s State) OpenRequests(now time.Time) []OpenRequest {
	var out []OpenRequest
	for _, r := range s.Requests {
		if r.Status != RequestOpen {
			continue
		}
		r.Services = slices.Clone(r.Services)
		left := r.Deadline.Sub(now)
		out = append(out, OpenRequest{Request: r, Left: left, Overdue: left < 0})
	}
	// Stable, and requests are kept in request order: equal deadlines stay
	// in the order they were made.
	slices.SortStableFunc(out, func(a, b OpenRequest) int { return a.Deadline.Compare(b.Deadline) })
	return out
}

// openRequests counts the open Reserve requests.
func (s *State) openRequests() int {
	n := 0
	for _, r := range s.Requests {
		if r.Status == RequestOpen {
			n++
		}
	}
	return n
}

// Summary describes the state in one line for a person, e.g.
//
//	EXERCISE: crisis 3fa2b1c0 "Grid outage" open: level 3 (large-scale incident), IPCR information-sharing, phase response, lead cert-lu; …
func (s State) Summary() string {
	var b strings.Builder
	if s.Exercise && s.Status != StatusNone {
		b.WriteString("EXERCISE: ")
	}
	switch s.Status {
	case StatusNone:
		return "no crisis: level 0 (normal)"
	case StatusClosed:
		fmt.Fprintf(&b, "crisis %s %q closed %s: %s; level 0 (normal)", s.Crisis.Short(), s.Title, s.Closed.Format(time.RFC3339), clip(s.CloseReason, 160))
		return b.String()
	}
	fmt.Fprintf(&b, "crisis %s %q open: %s, IPCR %s, phase %s, lead %s", s.Crisis.Short(), s.Title, s.Level, s.Mode, s.Phase, s.LeadName)
	if len(s.Affected) > 0 {
		fmt.Fprintf(&b, "; affected %s", strings.Join(s.Affected, ", "))
	}
	if len(s.Sectors) > 0 {
		fmt.Fprintf(&b, "; sectors %s", strings.Join(s.Sectors, ", "))
	}
	var impact []string
	for _, kv := range [][2]string{{"severity", s.Severity}, {"outlook", s.Outlook}, {"root cause", s.RootCause}} {
		if kv[1] != "" {
			impact = append(impact, kv[0]+" "+kv[1])
		}
	}
	if len(impact) > 0 {
		fmt.Fprintf(&b, "; %s", strings.Join(impact, ", "))
	}
	if n := s.openRequests(); n > 0 {
		fmt.Fprintf(&b, "; %d open Reserve request(s)", n)
	}
	return b.String()
}

// SuiteState names version 1 of the state snapshot format.
const SuiteState = "crisismesh-crisis-state-v1"

// The wire forms keep times as Unix milliseconds (0 for the zero time):
// Apply keeps times to the millisecond (see the package doc), so the
// conversion is exact.
type stateWire struct {
	Suite       string          `cbor:"1,keyasint"`
	Status      Status          `cbor:"2,keyasint,omitempty"`
	Crisis      ID              `cbor:"3,keyasint,omitzero"`
	Title       string          `cbor:"4,keyasint,omitempty"`
	Exercise    bool            `cbor:"5,keyasint,omitempty"`
	Level       Level           `cbor:"6,keyasint,omitempty"`
	Mode        Mode            `cbor:"7,keyasint,omitempty"`
	Phase       Phase           `cbor:"8,keyasint,omitempty"`
	Affected    []string        `cbor:"9,keyasint,omitempty"`
	Sectors     []string        `cbor:"10,keyasint,omitempty"`
	Severity    string          `cbor:"11,keyasint,omitempty"`
	Outlook     string          `cbor:"12,keyasint,omitempty"`
	RootCause   string          `cbor:"13,keyasint,omitempty"`
	Lead        crypto.MemberID `cbor:"14,keyasint,omitzero"`
	LeadName    string          `cbor:"15,keyasint,omitempty"`
	Opened      int64           `cbor:"16,keyasint,omitempty"`
	Closed      int64           `cbor:"17,keyasint,omitempty"`
	CloseReason string          `cbor:"18,keyasint,omitempty"`
	Lessons     string          `cbor:"19,keyasint,omitempty"`
	Requests    []requestWire   `cbor:"20,keyasint,omitempty"`
	History     []decisionWire  `cbor:"21,keyasint,omitempty"`
	Decisions   uint64          `cbor:"22,keyasint,omitempty"`
	Term        uint64          `cbor:"23,keyasint,omitempty"`
	Index       uint64          `cbor:"24,keyasint,omitempty"`
	Updated     int64           `cbor:"25,keyasint,omitempty"`
	Seen        []ID            `cbor:"26,keyasint,omitempty"`
	Crises      []ID            `cbor:"27,keyasint,omitempty"`
}

type requestWire struct {
	ID           ID              `cbor:"1,keyasint"`
	Exercise     bool            `cbor:"2,keyasint,omitempty"`
	Sector       string          `cbor:"3,keyasint"`
	Services     []string        `cbor:"4,keyasint"`
	Note         string          `cbor:"5,keyasint,omitempty"`
	By           crypto.MemberID `cbor:"6,keyasint"`
	ByName       string          `cbor:"7,keyasint"`
	At           int64           `cbor:"8,keyasint"`
	Deadline     int64           `cbor:"9,keyasint"`
	Status       RequestStatus   `cbor:"10,keyasint,omitempty"`
	ClosedAt     int64           `cbor:"11,keyasint,omitempty"`
	ClosedBy     crypto.MemberID `cbor:"12,keyasint,omitzero"`
	ClosedByName string          `cbor:"13,keyasint,omitempty"`
	Answer       string          `cbor:"14,keyasint,omitempty"`
}

type decisionWire struct {
	Command  ID              `cbor:"1,keyasint"`
	Crisis   ID              `cbor:"2,keyasint"`
	Kind     Kind            `cbor:"3,keyasint"`
	By       crypto.MemberID `cbor:"4,keyasint"`
	ByName   string          `cbor:"5,keyasint"`
	What     string          `cbor:"6,keyasint"`
	At       int64           `cbor:"7,keyasint"`
	Term     uint64          `cbor:"8,keyasint"`
	Index    uint64          `cbor:"9,keyasint"`
	Exercise bool            `cbor:"10,keyasint,omitempty"`
}

func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// MarshalBinary encodes s canonically for a Raft snapshot: equal states
// give equal bytes, so two nodes' snapshots can be compared byte for byte.
func (s State) MarshalBinary() ([]byte, error) {
	w := stateWire{
		Suite: SuiteState, Status: s.Status, Crisis: s.Crisis, Title: s.Title, Exercise: s.Exercise,
		Level: s.Level, Mode: s.Mode, Phase: s.Phase, Affected: s.Affected, Sectors: s.Sectors,
		Severity: s.Severity, Outlook: s.Outlook, RootCause: s.RootCause, Lead: s.Lead, LeadName: s.LeadName,
		Opened: toMillis(s.Opened), Closed: toMillis(s.Closed), CloseReason: s.CloseReason, Lessons: s.Lessons,
		Decisions: s.Decisions, Term: s.Term, Index: s.Index, Updated: toMillis(s.Updated),
		Seen: s.seen, Crises: s.crises,
	}
	for _, r := range s.Requests {
		w.Requests = append(w.Requests, requestWire{
			ID: r.ID, Exercise: r.Exercise, Sector: r.Sector, Services: r.Services, Note: r.Note,
			By: r.By, ByName: r.ByName, At: toMillis(r.At), Deadline: toMillis(r.Deadline), Status: r.Status,
			ClosedAt: toMillis(r.ClosedAt), ClosedBy: r.ClosedBy, ClosedByName: r.ClosedByName, Answer: r.Answer,
		})
	}
	for _, d := range s.History {
		w.History = append(w.History, decisionWire{
			Command: d.Command, Crisis: d.Crisis, Kind: d.Kind, By: d.By, ByName: d.ByName, What: d.What,
			At: toMillis(d.At), Term: d.Term, Index: d.Index, Exercise: d.Exercise,
		})
	}
	return marshal(&w)
}

// UnmarshalState decodes a snapshot made by MarshalBinary. It refuses
// anything but the canonical encoding (errors wrap crypto.ErrMalformed or
// crypto.ErrNonCanonical), unknown enum values and lists over their bounds.
// It does not re-derive the state from its history: the snapshot is the
// Raft layer's own.
func UnmarshalState(b []byte) (State, error) {
	var w stateWire
	if err := unmarshalCanonical(b, &w, maxStateSize); err != nil {
		return State{}, fmt.Errorf("crisis: state: %w", err)
	}
	bad := func(format string, args ...any) (State, error) {
		return State{}, fmt.Errorf("crisis: state: %w: %s", crypto.ErrMalformed, fmt.Sprintf(format, args...))
	}
	switch {
	case w.Suite != SuiteState:
		return bad("unknown suite %q (this version knows %q)", w.Suite, SuiteState)
	case !w.Status.Valid() || !w.Level.Valid() || !w.Mode.Valid() || !w.Phase.Valid():
		return bad("status %d, level %d, mode %d or phase %d is out of range", w.Status, w.Level, w.Mode, w.Phase)
	case len(w.History) > maxHistory || uint64(len(w.History)) > w.Decisions:
		return bad("%d decisions in the history of %d", len(w.History), w.Decisions)
	case len(w.Requests) > maxOpenRequests+maxClosedRequests:
		return bad("%d Reserve requests", len(w.Requests))
	case len(w.Crises) > maxCrises:
		return bad("%d crisis IDs", len(w.Crises))
	}
	s := State{
		Status: w.Status, Crisis: w.Crisis, Title: w.Title, Exercise: w.Exercise, Level: w.Level,
		Mode: w.Mode, Phase: w.Phase, Affected: w.Affected, Sectors: w.Sectors, Severity: w.Severity,
		Outlook: w.Outlook, RootCause: w.RootCause, Lead: w.Lead, LeadName: w.LeadName,
		Opened: fromMillis(w.Opened), Closed: fromMillis(w.Closed), CloseReason: w.CloseReason, Lessons: w.Lessons,
		Decisions: w.Decisions, Term: w.Term, Index: w.Index, Updated: fromMillis(w.Updated),
		seen: w.Seen, crises: w.Crises,
	}
	for _, r := range w.Requests {
		if !r.Status.Valid() {
			return bad("request %s has status %d", r.ID.Short(), r.Status)
		}
		s.Requests = append(s.Requests, Request{
			ID: r.ID, Exercise: r.Exercise, Sector: r.Sector, Services: r.Services, Note: r.Note,
			By: r.By, ByName: r.ByName, At: fromMillis(r.At), Deadline: fromMillis(r.Deadline), Status: r.Status,
			ClosedAt: fromMillis(r.ClosedAt), ClosedBy: r.ClosedBy, ClosedByName: r.ClosedByName, Answer: r.Answer,
		})
	}
	for _, d := range w.History {
		s.History = append(s.History, Decision{
			Command: d.Command, Crisis: d.Crisis, Kind: d.Kind, By: d.By, ByName: d.ByName, What: d.What,
			At: fromMillis(d.At), Term: d.Term, Index: d.Index, Exercise: d.Exercise,
		})
	}
	return s, nil
}
