package node

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// CrisisView is the crisis state as people and scripts read it.
type CrisisView struct {
	Status       string            `json:"status"`
	Crisis       string            `json:"crisis_id,omitempty"`
	Title        string            `json:"title,omitempty"`
	Level        int               `json:"level"`
	IPCRMode     string            `json:"ipcr_mode"`
	Phase        string            `json:"phase"`
	Exercise     bool              `json:"exercise"`
	Affected     []string          `json:"affected_states"`
	Sectors      []string          `json:"sectors"`
	Impact       string            `json:"impact,omitempty"`
	Outlook      string            `json:"outlook,omitempty"`
	RootCause    string            `json:"root_cause,omitempty"`
	Lead         string            `json:"lead,omitempty"`
	Source       string            `json:"source"`                // "raft" (this node's own Raft state machine) or "checkpoint" (certified)
	Signers      []string          `json:"signers"`               // the voters whose votes certify a checkpoint's state (names); empty for raft
	Certified    uint64            `json:"certified_index"`       // newest index a majority of the voters certified (0: none yet)
	Diverged     uint64            `json:"diverged_at,omitempty"` // a certificate contradicts this node's own Raft state at this index
	AppliedIndex uint64            `json:"applied_index"`
	Term         uint64            `json:"term"`
	AgeMS        int64             `json:"age_ms"` // since the last contact with a leader; -1: never
	Leader       bool              `json:"leader"`
	Pending      []PendingView     `json:"pending"`
	Requests     []RequestView     `json:"reserve_requests"`
	Recent       []OutcomeView     `json:"recent"`
	Summary      string            `json:"summary"`
	Decisions    []crisis.Decision `json:"-"`
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

// Crisis returns the crisis state: local (newest known, with its age) or,
// with linearizable, confirmed by the leader's quorum (leader only).
func (n *Node) Crisis(ctx context.Context, linearizable bool) (CrisisView, error) {
	var v consensus.View
	if linearizable {
		var err error
		if v, err = n.engine.Linearizable(ctx); err != nil {
			return CrisisView{}, err
		}
	} else {
		v = n.engine.Local()
	}
	s := v.State
	cv := CrisisView{
		Status: fmt.Sprint(s.Status), Title: s.Title, Level: int(s.Level), IPCRMode: fmt.Sprint(s.Mode), Phase: fmt.Sprint(s.Phase),
		Exercise: s.Exercise, Affected: orEmpty(s.Affected), Sectors: orEmpty(s.Sectors), Impact: s.Severity, Outlook: s.Outlook,
		RootCause: s.RootCause, Lead: s.LeadName, Source: v.Source, AppliedIndex: v.Index, Term: v.Term, Leader: v.Leader,
		AgeMS: -1, Pending: []PendingView{}, Requests: []RequestView{}, Recent: []OutcomeView{}, Summary: s.Summary(),
		Signers: []string{}, Certified: v.Certified, Diverged: v.Diverged,
	}
	r := n.store.Roster()
	for _, id := range v.Signers {
		cv.Signers = append(cv.Signers, memberName(r, id))
	}
	if s.Crisis != (crisis.ID{}) {
		cv.Crisis = s.Crisis.String()
	}
	if !v.LeaderContact.IsZero() {
		cv.AgeMS = v.Age.Milliseconds()
	}
	for _, p := range v.Provisional {
		cv.Pending = append(cv.Pending, PendingView{Command: p.Command.ID.String(), Kind: string(p.Command.Kind), Signer: memberName(r, p.Signer), Seen: p.Seen})
	}
	cv.Requests = requestViews(s, n.now())
	for _, o := range v.Recent {
		cv.Recent = append(cv.Recent, OutcomeView{Command: o.ID.String(), Term: o.Term, Index: o.Index, Refused: o.Refused})
	}
	return cv, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CommandStatus is what became of a crisis command: committed, pending
// or refused (consensus.Status, named here for cmd, which imports only
// node).
type CommandStatus = consensus.Status

// The statuses of a crisis command.
const (
	StatusCommitted = consensus.StatusCommitted
	StatusPending   = consensus.StatusPending
	StatusRefused   = consensus.StatusRefused
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

// Command signs cmd as this node's member and submits it: committed at
// once on the leader, or proposed through the log elsewhere (pending).
func (n *Node) Command(ctx context.Context, cmd crisis.Command) (CommandResult, error) {
	if cmd.ID == (crisis.ID{}) {
		if _, err := randRead(cmd.ID[:]); err != nil {
			return CommandResult{}, err
		}
	}
	if cmd.Kind != crisis.KindOpen && cmd.Crisis == (crisis.ID{}) {
		cmd.Crisis = n.engine.Local().State.Crisis
	}
	sc, err := crisis.Sign(n.id, n.store.Network(), cmd)
	if err != nil {
		return CommandResult{Status: StatusRefused, Rule: "malformed", Detail: err.Error(), ID: cmd.ID.String()}, nil
	}
	res := CommandResult{ID: sc.ID().String()}
	r, err := n.engine.Propose(ctx, sc)
	var ref *crisis.Refusal
	switch {
	case err == nil:
		res.Status, res.Term, res.Index = StatusCommitted, r.Term, r.Index
	case errors.Is(err, consensus.ErrProposed):
		res.Status = StatusPending
	case errors.As(err, &ref):
		res.Status, res.Rule, res.Detail = StatusRefused, ref.Rule, ref.Detail
	default:
		return res, err
	}
	res.Crisis, _ = n.Crisis(ctx, false)
	return res, nil
}

func randRead(b []byte) (int, error) { return cryptorand.Read(b) }

// CommandRequest is a crisis command as the API and CLI take it; the JSON
// names are a contract. Mode and Phase are names ("full", "response"), IDs
// hex.
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

// ToCommand converts a request into a crisis command (without ID or crisis,
// which Command fills in).
func (r CommandRequest) ToCommand() (crisis.Command, error) {
	c := crisis.Command{Kind: crisis.Kind(r.Kind), Title: r.Title, Level: crisis.Level(r.Level), Exercise: r.Exercise,
		Add: r.Add, Remove: r.Remove, Value: r.Value, Sector: r.Sector, Services: r.Services, Note: r.Note,
		Reason: r.Reason, Lessons: r.Lessons}
	var err error
	if r.Mode != "" {
		if c.Mode, err = crisis.ParseMode(r.Mode); err != nil {
			return c, err
		}
	}
	if r.Phase != "" {
		if c.Phase, err = crisis.ParsePhase(r.Phase); err != nil {
			return c, err
		}
	}
	if r.Request != "" {
		if c.Request, err = crisis.ParseID(r.Request); err != nil {
			return c, err
		}
	}
	return c, nil
}
