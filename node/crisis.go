package node

import (
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"

	"github.com/crisismesh/crisismesh/replication/consensus"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

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

// ToCommand converts a request into a crisis command (without ID or crisis,
// which Command fills in).
func ToCommand(r CommandRequest) (crisis.Command, error) {
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
