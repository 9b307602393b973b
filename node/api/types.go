package api

import (
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// The JSON field names of every type here are a contract with the CLI and
// scripts: add fields, never rename or remove one. openapi.json describes
// the same shapes.

// StatusView is the node's status (GET /api/v1/status).
type StatusView struct {
	Member      string     `json:"member"`
	MemberID    string     `json:"member_id"`
	PeerID      string     `json:"peer_id"`
	Network     string     `json:"network_id"`
	ListenAddrs []string   `json:"listen_addrs"`
	Entries     uint64     `json:"entries"`
	Digest      string     `json:"digest"`
	Forks       int        `json:"forks"`
	Peers       []PeerView `json:"peers"`
	Raft        RaftView   `json:"raft"`
	Crisis      CrisisView `json:"crisis"`
	// DiskFull is true while the store refuses writes for lack of disk
	// space; Disk says how much is free against the reserve.
	DiskFull bool     `json:"disk_full"`
	Disk     DiskView `json:"disk"`
	// Offences: per member and rule, how many of its entries this node
	// refused to trust (key entries) or believe (valid entries that break
	// a rule, e.g. TLP:RED sealed to everyone). Empty when none.
	Offences []OffenceView `json:"offences"`
	// Alerts: what an operator must act on now (a Reserve deadline under
	// two hours, or past; entries overdue for their post-quantum
	// signature). Empty when none.
	Alerts []AlertView `json:"alerts"`
	// Waiting counts the entries this node holds waiting for their
	// post-quantum (composite) signature, WaitingOverdue those of them
	// waiting longer than the window allows (GET /api/v1/waiting lists
	// them).
	Waiting        int `json:"waiting"`
	WaitingOverdue int `json:"waiting_overdue"`
}

// AlertView is something an operator must act on, shown by `status`.
type AlertView struct {
	// Code names the alert: "reserve-deadline" (an open Reserve request
	// with less than two hours left), "reserve-overdue", or
	// "waiting-overdue" (entries of one member waiting for their
	// post-quantum signature longer than the window allows).
	Code    string `json:"code"`
	Message string `json:"message"`
	// Request is the Reserve request's ID for the reserve alerts.
	Request string `json:"request,omitempty"`
	// MemberID is the author's member ID for waiting-overdue.
	MemberID string `json:"member_id,omitempty"`
	// LeftMS is the time left until the deadline, negative once past it
	// (waiting-overdue: past the window and its grace, for the author's
	// oldest waiting entry).
	LeftMS int64 `json:"left_ms"`
}

// WaitingView lists the entries this node holds waiting for their
// post-quantum signature (GET /api/v1/waiting), with the window they are
// judged by. Only header fields are shown: an entry that carries only
// its Ed25519 half may be a forgery, so its body is not shown until its
// composite signature covers it.
type WaitingView struct {
	Window  WindowView         `json:"window"`
	Entries []WaitingEntryView `json:"entries"` // by member ID, seq, then entry ID
}

// WindowView is the narrow-link window: an author sends the composite
// signature at least every Entries entries or IntervalS seconds; an entry
// waiting longer than IntervalS + GraceS is overdue.
type WindowView struct {
	Entries   int     `json:"entries"`
	IntervalS float64 `json:"interval_s"`
	GraceS    float64 `json:"grace_s"`
}

// WaitingEntryView is the header of one waiting entry: never its body.
type WaitingEntryView struct {
	Member   string `json:"member"` // member name (or short ID if unknown)
	MemberID string `json:"member_id"`
	Seq      uint64 `json:"seq"`
	ID       string `json:"id"`
	Lamport  uint64 `json:"lamport"`
	Priority string `json:"priority"`
	// Status is "waiting", or "overdue" once it has waited longer than
	// the window's interval and grace.
	Status  string    `json:"status"`
	Since   time.Time `json:"since"`    // when this node began holding it
	WaitedS float64   `json:"waited_s"` // how long it has waited, by the node's clock
	// Conflicting: another waiting entry of the member has the same seq;
	// neither is confirmed (nor proof of anything) until one is covered.
	Conflicting bool `json:"conflicting"`
}

// OffenceView counts one member's entries refused for one rule.
type OffenceView struct {
	Member   string `json:"member"`
	MemberID string `json:"member_id"`
	Rule     string `json:"rule"`
	Entries  int    `json:"entries"`
}

// DiskView is the store's disk space.
type DiskView struct {
	Dir          string `json:"dir"`
	FreeBytes    uint64 `json:"free_bytes"`
	ReserveBytes uint64 `json:"reserve_bytes"`
	Full         bool   `json:"full"`
	// Message says what to do when Full, or why free space is unknown.
	Message string `json:"message,omitempty"`
}

// PeerView is one member's link as this node sees it.
type PeerView struct {
	Member    string     `json:"member"`
	PeerID    string     `json:"peer_id"`
	Connected bool       `json:"connected"`
	RTTMS     float64    `json:"rtt_ms"`
	Profile   string     `json:"profile"`
	LastSync  *time.Time `json:"last_sync"`
	Behind    int64      `json:"behind"` // entries we hold that it lacks, as last seen
}

// RaftView is this node's Raft member.
type RaftView struct {
	Role          string `json:"role"`
	Leader        string `json:"leader"`
	Term          uint64 `json:"term"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastContactMS int64  `json:"last_contact_ms"`
}

// PostRequest is an entry a person writes (POST /api/v1/entries).
type PostRequest struct {
	Kind     string   `json:"kind"`     // default "message"
	TLP      string   `json:"tlp"`      // default "amber"
	Priority string   `json:"priority"` // default "routine"
	Text     string   `json:"text"`
	To       []string `json:"to,omitempty"`    // member names: seal to them only
	Group    string   `json:"group,omitempty"` // a named need-to-know group this member is in
	Refs     []string `json:"refs,omitempty"`
	// The entry's classification, checked against the embedded
	// taxonomies: RSIT class and type, NIS2 sectors, impact severity and
	// outlook. All optional.
	RSITClass string   `json:"rsit_class,omitempty"`
	RSITType  string   `json:"rsit_type,omitempty"`
	Sectors   []string `json:"sectors,omitempty"`
	Impact    string   `json:"impact,omitempty"`
	Outlook   string   `json:"outlook,omitempty"`
}

// EntryView is an entry as people and scripts read it.
type EntryView struct {
	ID       string    `json:"id"`
	Author   string    `json:"author"` // member name (or ID if unknown)
	AuthorID string    `json:"author_id"`
	Seq      uint64    `json:"seq"`
	Lamport  uint64    `json:"lamport"`
	Time     time.Time `json:"time"`
	Priority string    `json:"priority"`
	Readable bool      `json:"readable"`
	Kind     string    `json:"kind"` // "" when sealed to a group this node is not in
	TLP      string    `json:"tlp"`
	Text     string    `json:"text"`
	Exercise bool      `json:"exercise,omitempty"`
	Sealed   string    `json:"sealed,omitempty"` // why it cannot be read
	// NotBelieved names the rule an entry this node does not believe
	// breaks (e.g. red-not-to-recipients); its body is never shown.
	NotBelieved string   `json:"not_believed,omitempty"`
	Refs        []string `json:"refs,omitempty"`
	RSITClass   string   `json:"rsit_class,omitempty"`
	RSITType    string   `json:"rsit_type,omitempty"`
	Sectors     []string `json:"sectors,omitempty"`
	Impact      string   `json:"impact,omitempty"`
	Outlook     string   `json:"outlook,omitempty"`
	// Bridged is set on a message a bridge wrote from outside the mesh
	// (a Matrix user's message in the team's room).
	Bridged *BridgedView `json:"bridged,omitempty"`
}

// BridgedView says where a bridged message came from.
type BridgedView struct {
	Via     string `json:"via"`      // "matrix"
	Sender  string `json:"sender"`   // the Matrix user ID
	EventID string `json:"event_id"` // the Matrix event ID
	Room    string `json:"room,omitempty"`
}

// MatrixStatusView is the Matrix bridge's state (GET /api/v1/matrix/status).
type MatrixStatusView struct {
	// Enabled is false when config.toml has no [matrix] section; the
	// other fields are then empty.
	Enabled    bool   `json:"enabled"`
	Homeserver string `json:"homeserver,omitempty"`
	Room       string `json:"room,omitempty"`
	User       string `json:"user,omitempty"`
	// Running: the bridge runs (it retries a homeserver that is down).
	Running   bool `json:"running"`
	Encrypted bool `json:"encrypted"`
	// Queue: log entries not yet handled (sent or withheld), up to 1000.
	Queue       int        `json:"queue"`
	LastSuccess *time.Time `json:"last_success"` // the last exchange with the homeserver that worked
	LastError   string     `json:"last_error,omitempty"`
	Errors      uint64     `json:"errors"`   // failed exchanges (each retried)
	Sent        uint64     `json:"sent"`     // entries posted to the room
	Received    uint64     `json:"received"` // room messages written into the log
	Ignored     uint64     `json:"ignored"`  // room messages from users not allowed
	// Withheld counts entries kept from the room, by reason (tlp-red,
	// tlp-amber+strict, tlp-above-max, amber-room-not-encrypted,
	// amber-member-not-allowed, kind, member, sealed, from-matrix).
	Withheld map[string]uint64 `json:"withheld"`
}

// CrisisView is the crisis state as people and scripts read it.
type CrisisView struct {
	Status       string        `json:"status"`
	Crisis       string        `json:"crisis_id,omitempty"`
	Title        string        `json:"title,omitempty"`
	Level        int           `json:"level"`
	IPCRMode     string        `json:"ipcr_mode"`
	Phase        string        `json:"phase"`
	Exercise     bool          `json:"exercise"`
	Affected     []string      `json:"affected_states"`
	Sectors      []string      `json:"sectors"`
	Impact       string        `json:"impact,omitempty"`
	Outlook      string        `json:"outlook,omitempty"`
	RootCause    string        `json:"root_cause,omitempty"`
	Lead         string        `json:"lead,omitempty"`
	Source       string        `json:"source"`                // "raft" (this node's own Raft state machine) or "checkpoint" (certified)
	Signers      []string      `json:"signers"`               // the voters whose votes certify a checkpoint's state (names); empty for raft
	Certified    uint64        `json:"certified_index"`       // newest index a majority of the voters certified (0: none yet)
	Diverged     uint64        `json:"diverged_at,omitempty"` // a certificate contradicts this node's own Raft state at this index
	AppliedIndex uint64        `json:"applied_index"`
	Term         uint64        `json:"term"`
	AgeMS        int64         `json:"age_ms"` // since the last contact with a leader; -1: never
	Leader       bool          `json:"leader"`
	Pending      []PendingView `json:"pending"`
	Requests     []RequestView `json:"reserve_requests"`
	Recent       []OutcomeView `json:"recent"`
	Summary      string        `json:"summary"`
	// Closed, CloseReason and Lessons are set once the crisis is closed
	// (the lessons learned only when the closing gave them).
	Closed      *time.Time `json:"closed,omitempty"`
	CloseReason string     `json:"close_reason,omitempty"`
	Lessons     string     `json:"lessons,omitempty"`
}

// PendingView is a provisional decision.
type PendingView struct {
	Command string    `json:"command"`
	Kind    string    `json:"kind"`
	Signer  string    `json:"signer"`
	Seen    time.Time `json:"seen"`
}

// RequestView is a Reserve request.
type RequestView struct {
	ID       string    `json:"id"`
	Sector   string    `json:"sector"`
	Services []string  `json:"services"`
	Status   string    `json:"status"`
	Deadline time.Time `json:"deadline"`
	// LeftMS is the time left until the deadline while the request is
	// open (negative once overdue, and Overdue set); 0 once closed.
	LeftMS  int64 `json:"left_ms"`
	Overdue bool  `json:"overdue"`
	// ClosedAt and ClosedBy (a member name) once deployed or withdrawn.
	ClosedAt *time.Time `json:"closed_at,omitempty"`
	ClosedBy string     `json:"closed_by,omitempty"`
}

// OutcomeView is what became of a command.
type OutcomeView struct {
	Command string `json:"command"`
	Term    uint64 `json:"term"`
	Index   uint64 `json:"index"`
	Refused string `json:"refused,omitempty"`
}

// CommandStatus is what became of a crisis command: committed, pending
// (proposed through the log) or refused (by a named rule).
type CommandStatus string

// The statuses of a crisis command; scripts read these exact words.
const (
	StatusCommitted CommandStatus = "committed"
	StatusPending   CommandStatus = "pending"
	StatusRefused   CommandStatus = "refused"
)

// CommandResult says what became of a crisis command.
type CommandResult struct {
	Status CommandStatus `json:"status"`
	Rule   string        `json:"rule,omitempty"`
	Detail string        `json:"detail,omitempty"`
	ID     string        `json:"command"`
	Term   uint64        `json:"term,omitempty"`
	Index  uint64        `json:"index,omitempty"`
	Crisis CrisisView    `json:"crisis"`
}

// CommandRequest is a crisis command (POST /api/v1/crisis). Mode and
// Phase are names ("full", "response"), IDs hex.
type CommandRequest struct {
	Kind     string   `json:"kind"`
	Title    string   `json:"title,omitempty"`
	Level    int      `json:"level,omitempty"`
	Exercise bool     `json:"exercise,omitempty"`
	Mode     string   `json:"mode,omitempty"`
	Phase    string   `json:"phase,omitempty"`
	Add      []string `json:"add,omitempty"`
	Remove   []string `json:"remove,omitempty"`
	Value    string   `json:"value,omitempty"`
	Sector   string   `json:"sector,omitempty"`
	Services []string `json:"services,omitempty"`
	Note     string   `json:"note,omitempty"`
	Request  string   `json:"request,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Lessons  string   `json:"lessons,omitempty"`
}

// HolderView answers "does member X hold entry E, and why not".
type HolderView struct {
	Member  string     `json:"member"`
	PeerID  string     `json:"peer_id"`
	Has     bool       `json:"has"`
	AsOf    *time.Time `json:"as_of,omitempty"`
	Why     string     `json:"why,omitempty"`
	CanRead bool       `json:"can_read"`
}

// SyncRequest is the body of POST /api/v1/sync: a member name or peer ID.
type SyncRequest struct {
	Peer string `json:"peer"`
}

// SyncReport is what a forced sync did.
type SyncReport struct {
	Peer        string `json:"peer"`
	Member      string `json:"member"`
	Equal       bool   `json:"equal"`
	EntriesSent int    `json:"entries_sent"`
	EntriesRecv int    `json:"entries_received"`
	BytesSent   int64  `json:"bytes_sent"`
	BytesRecv   int64  `json:"bytes_received"`
	DurationMS  int64  `json:"duration_ms"`
}

// ExportRequest is the JSON body of POST /api/v1/bundles/export. Without
// Out the bundle is the response body; with Out the node writes it there,
// which must be inside the node's bundle directory.
type ExportRequest struct {
	Out string `json:"out,omitempty"`
	For string `json:"for,omitempty"`
}

// ImportRequest is the JSON body of POST /api/v1/bundles/import naming a
// file inside the node's bundle directory; a bundle may also be the
// request body itself (Content-Type application/octet-stream).
type ImportRequest struct {
	File string `json:"file"`
}

// BundleView describes a bundle.
type BundleView struct {
	File     string    `json:"file"`
	Network  string    `json:"network_id"`
	Exporter string    `json:"exporter"`
	Created  time.Time `json:"created"`
	Entries  uint64    `json:"entries"`
	Bytes    uint64    `json:"bytes"`
	Added    int       `json:"added,omitempty"`
	Dups     int       `json:"duplicates,omitempty"`
	Rejected int       `json:"rejected,omitempty"`
}

// ArchiveExportRequest is the JSON body of POST /api/v1/archive/export.
// From and To bound the entries by their author's time (inclusive); what
// verifying them needs (roster, key and checkpoint entries, signed
// successors) is kept whatever its time. Out
// works as in ExportRequest.
type ArchiveExportRequest struct {
	Out  string     `json:"out,omitempty"`
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
}

// ArchiveView describes an after-action archive.
type ArchiveView struct {
	File     string     `json:"file"`
	Network  string     `json:"network_id"`
	Exporter string     `json:"exporter"`
	Created  time.Time  `json:"created"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
	Records  uint64     `json:"records"`
	Entries  int        `json:"entries"`
	// Evidence: entries set aside (forks, revocations); Checkpoints:
	// opened checkpoint payloads; Decisions: committed Raft entries.
	Evidence    int    `json:"evidence"`
	Checkpoints int    `json:"checkpoints"`
	Decisions   int    `json:"decisions"`
	Bytes       uint64 `json:"bytes"`
	// RaftFirst is the first index this node's Raft log held: decisions
	// before it were compacted away (1: none).
	RaftFirst uint64 `json:"raft_first"`
}

// Member statuses (RosterMemberView.Status).
const (
	MemberActive  = "active"
	MemberRevoked = "revoked"
	MemberRotated = "rotated"
)

// Update statuses (UpdateResult.Status).
const (
	UpdateInForce = "in-force" // the roster holds it and Raft has carried it
	UpdatePending = "pending"  // waiting for approvals or for Raft (WaitingFor)
	UpdateRefused = "refused"  // a rule refused it (Rule, Detail)
)

// RosterMemberView is one member as `member list` shows it.
type RosterMemberView struct {
	Name         string   `json:"name"`
	MemberID     string   `json:"member_id"`
	Roles        []string `json:"roles"`
	Voter        bool     `json:"voter"`
	Admin        bool     `json:"admin"`
	Status       string   `json:"status"`         // active, revoked or rotated
	Reason       string   `json:"reason"`         // why it was revoked
	LastValidSeq uint64   `json:"last_valid_seq"` // revoked: its last entry kept (0: none named)
	Groups       []string `json:"groups"`
}

// PendingUpdateView is a roster update waiting for approvals.
type PendingUpdateView struct {
	UpdateID  string    `json:"update_id"`
	Op        string    `json:"op"`
	Target    string    `json:"target"`
	Approvals int       `json:"approvals"` // distinct admins who signed it so far
	Needed    int       `json:"needed"`
	Expires   time.Time `json:"expires"`
	Approvers []string  `json:"approvers"`
	Expired   bool      `json:"expired"`
}

// MembersView is the roster as `member list` shows it.
type MembersView struct {
	RosterVersion     uint64              `json:"roster_version"`
	RaftRosterVersion uint64              `json:"raft_roster_version"`
	AdminThreshold    int                 `json:"admin_threshold"`
	Members           []RosterMemberView  `json:"members"`
	Pending           []PendingUpdateView `json:"pending"`
}

// UpdateRequest is a roster change (POST /api/v1/members). Op is add,
// revoke, rotate or voters.
type UpdateRequest struct {
	Op     string       `json:"op"`
	Card   *crypto.Card `json:"card,omitempty"`   // add: the new member's card; rotate: the new card
	Roles  []string     `json:"roles,omitempty"`  // add
	Addrs  []string     `json:"addrs,omitempty"`  // add
	Voter  bool         `json:"voter,omitempty"`  // add
	Member string       `json:"member,omitempty"` // revoke, rotate: the member's name
	Reason string       `json:"reason,omitempty"` // revoke
	On     []string     `json:"on,omitempty"`     // voters: names to make voters
	Off    []string     `json:"off,omitempty"`    // voters: names to stop voting
}

// UpdateResult is what a roster change or an approval did.
type UpdateResult struct {
	UpdateID      string `json:"update_id"`
	Op            string `json:"op"`
	Target        string `json:"target"`
	Status        string `json:"status"`                // in-force, pending or refused
	WaitingFor    string `json:"waiting_for,omitempty"` // pending: "approvals" or "raft"
	Rule          string `json:"rule,omitempty"`
	Detail        string `json:"detail,omitempty"`
	Approvals     int    `json:"approvals"`
	Needed        int    `json:"needed"`
	RosterVersion uint64 `json:"roster_version"`
	// Note says what an operator should do next (e.g. make the number of
	// voters odd again after revoking a voter).
	Note string `json:"note,omitempty"`
}

// GroupView is a named need-to-know group as `group list` shows it.
type GroupView struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	// Member: this node's member is in the group (it reads and writes it).
	Member bool `json:"member"`
	// Epoch is the key epoch written under now (0: none yet, or this node
	// is not in the group).
	Epoch uint64 `json:"epoch"`
}

// GroupRequest changes a named group (POST /api/v1/groups). Op is
// create, add, remove or delete.
type GroupRequest struct {
	Op      string   `json:"op"`
	Group   string   `json:"group"`
	Members []string `json:"members,omitempty"`
}

// KeyRotateRequest is the body of POST /api/v1/keys/rotate: a named group,
// or "" (or "all") for the network key.
type KeyRotateRequest struct {
	Group string `json:"group,omitempty"`
}

// KeyRotation is what `key rotate` did.
type KeyRotation struct {
	Group   string `json:"group"`
	Epoch   uint64 `json:"epoch"`
	Members int    `json:"members"`
}

// LoginCode is a one-time dashboard login code (POST /api/v1/login-codes):
// type Code into the form at URL before Expires; it works once.
type LoginCode struct {
	Code    string    `json:"code"`
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// Error is the JSON body of every API error: a stable code and what to
// do. The client returns it as an error carrying the HTTP status too.
type Error struct {
	HTTPStatus int    `json:"-"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	details    []byte // the whole body, for errors that carry more (MISPRefusal)
}

func (e *Error) Error() string {
	return e.Message + " (" + e.Code + ")"
}

// Problem is a MISP item or STIX object refused (or noted) by an import, at its JSON
// path.
type Problem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (p Problem) String() string { return p.Path + ": " + p.Reason }

// MISPImportResult is the answer of POST /api/v1/misp/import. A refused
// import (422) carries the same fields beside the error's code and
// message (MISPRefusal).
type MISPImportResult struct {
	Events int `json:"events"` // events read
	ImportTally
}

// ImportTally is what an import (MISP or STIX) wrote, found already held,
// refused and noted; its fields are the import result's own.
type ImportTally struct {
	Written   int       `json:"written"`   // entries written
	Unchanged int       `json:"unchanged"` // items already held in this version
	Bytes     int       `json:"bytes"`     // encoded size of the entries written
	Refused   []Problem `json:"refused,omitempty"`
	Notes     []Problem `json:"notes,omitempty"`
}

// MISPRefusal is the body of a refused MISP import (422).
type MISPRefusal struct {
	Error
	MISPImportResult
}

// Withheld is an item a MISP or STIX export left out, and why.
type Withheld struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// MISPExport is the answer of GET /api/v1/misp/export: MISP events
// ({"Event": …} objects), validated against MISP's JSON Schema, and what
// was left out.
type MISPExport struct {
	Events   []map[string]any `json:"events"`
	Withheld []Withheld       `json:"withheld,omitempty"`
}

// MISPExportRequest is the query of GET /api/v1/misp/export.
type MISPExportRequest struct {
	Since          string // only events changed after this entry ID
	MaxTLP         string // default amber
	AmberStrictOrg string // required with MaxTLP amber+strict
	Event          string // only this event (UUID)
}

// STIXImportResult is the answer of POST /api/v1/stix/import. A refused
// import (422) carries the same fields beside the error's code and
// message (STIXRefusal).
type STIXImportResult struct {
	Objects int `json:"objects"` // objects read
	ImportTally
}

// STIXRefusal is the body of a refused STIX import (422).
type STIXRefusal struct {
	Error
	STIXImportResult
}

// STIXExport is the answer of GET /api/v1/stix/export: a STIX 2.1
// bundle whose objects validate against the STIX 2.1 JSON Schemas, and
// what was left out.
type STIXExport struct {
	Bundle   map[string]any `json:"bundle"`
	Withheld []Withheld     `json:"withheld,omitempty"`
}

// STIXExportRequest is the query of GET /api/v1/stix/export.
type STIXExportRequest struct {
	MaxTLP         string // default amber
	AmberStrictOrg string // required with MaxTLP amber+strict
}

// DecisionView is one decided crisis command, as `crisis history` and the
// dashboard show it; the JSON names are a contract.
type DecisionView struct {
	Command  string    `json:"command"`
	Crisis   string    `json:"crisis_id,omitempty"`
	Kind     string    `json:"kind"`
	By       string    `json:"by"`    // the signer's member name
	ByID     string    `json:"by_id"` // its member ID
	Outcome  string    `json:"outcome"`
	What     string    `json:"what,omitempty"` // for a committed command: what it did
	Rule     string    `json:"rule,omitempty"` // for a refused one: the rule and why
	Detail   string    `json:"detail,omitempty"`
	At       time.Time `json:"at"` // the committed time of its Raft entry
	Term     uint64    `json:"term"`
	Index    uint64    `json:"index"`
	Exercise bool      `json:"exercise,omitempty"`
}

// HistoryView is the decision history: every committed decision the
// crisis state keeps (the newest 256 of Total) and the refusals this node
// remembers, in Raft order.
type HistoryView struct {
	Total     uint64         `json:"total"` // committed decisions ever; the oldest beyond the kept ones are dropped
	Decisions []DecisionView `json:"decisions"`
}

// IndicatorView is an indicator held in MISP or STIX intel: its type and
// value, the item and entry it comes from, and the incident it belongs to
// (a MISP event; a STIX incident related to the indicator).
type IndicatorView struct {
	Entry  string    `json:"entry"`  // the intel entry's ID
	Format string    `json:"format"` // misp or stix
	Item   string    `json:"item"`   // the MISP UUID or STIX id of the item
	Type   string    `json:"type"`   // MISP attribute type, or STIX pattern type
	Value  string    `json:"value"`  // the attribute's value, or the pattern
	Name   string    `json:"name,omitempty"`
	TLP    string    `json:"tlp"`
	Time   time.Time `json:"time"`
	// Incident is the MISP event's UUID or the STIX incident's id; the
	// entry and title are set when this node holds that incident.
	Incident      string `json:"incident,omitempty"`
	IncidentEntry string `json:"incident_entry,omitempty"`
	IncidentTitle string `json:"incident_title,omitempty"`
}

// IndicatorsView is the answer of GET /api/v1/indicators, oldest first.
type IndicatorsView struct {
	Indicators []IndicatorView `json:"indicators"`
}

// ReportRequest is the query of GET /api/v1/report.
type ReportRequest struct {
	Format string // md (default) or html
	MaxTLP string // the highest TLP shown: clear, green, amber (default), amber+strict
}
