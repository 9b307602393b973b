package node

import "github.com/crisismesh/crisismesh/node/api"

// The API's request and response types are defined once, in node/api (the
// contract the CLI, scripts and the OpenAPI document share); node names
// them for its own callers (sim, tests), which read them as node.X.
type (
	StatusView        = api.StatusView
	OffenceView       = api.OffenceView
	AlertView         = api.AlertView
	DiskView          = api.DiskView
	PeerView          = api.PeerView
	RaftView          = api.RaftView
	PostRequest       = api.PostRequest
	EntryView         = api.EntryView
	CrisisView        = api.CrisisView
	PendingView       = api.PendingView
	RequestView       = api.RequestView
	OutcomeView       = api.OutcomeView
	CommandStatus     = api.CommandStatus
	CommandResult     = api.CommandResult
	CommandRequest    = api.CommandRequest
	HolderView        = api.HolderView
	SyncReport        = api.SyncReport
	BundleView        = api.BundleView
	ArchiveView       = api.ArchiveView
	RosterMemberView  = api.RosterMemberView
	PendingUpdateView = api.PendingUpdateView
	MembersView       = api.MembersView
	UpdateRequest     = api.UpdateRequest
	UpdateResult      = api.UpdateResult
	GroupView         = api.GroupView
	GroupRequest      = api.GroupRequest
	KeyRotation       = api.KeyRotation
	DecisionView      = api.DecisionView
	HistoryView       = api.HistoryView
	MatrixStatusView  = api.MatrixStatusView
	BridgedView       = api.BridgedView
)

// The statuses of a crisis command, of a member and of a roster update.
const (
	StatusCommitted = api.StatusCommitted
	StatusPending   = api.StatusPending
	StatusRefused   = api.StatusRefused

	MemberActive  = api.MemberActive
	MemberRevoked = api.MemberRevoked
	MemberRotated = api.MemberRotated

	UpdateInForce = api.UpdateInForce
	UpdatePending = api.UpdatePending
	UpdateRefused = api.UpdateRefused
)
