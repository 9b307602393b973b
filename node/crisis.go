package node

import (
	"cmp"
	"context"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"slices"

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
	if s.Status == crisis.StatusClosed {
		t := s.Closed.UTC()
		cv.Closed, cv.CloseReason, cv.Lessons = &t, s.CloseReason, s.Lessons
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

// History returns the decision history from this node's local view.
func (n *Node) History() HistoryView {
	v := n.engine.Local()
	r := n.store.Roster()
	hv := HistoryView{Total: v.State.Decisions, Decisions: []DecisionView{}}
	for _, d := range v.State.History {
		dv := DecisionView{Command: d.Command.String(), Kind: string(d.Kind), By: d.ByName, ByID: d.By.String(), Outcome: string(StatusCommitted),
			What: d.What, At: d.At, Term: d.Term, Index: d.Index, Exercise: d.Exercise}
		if !d.Crisis.IsZero() {
			dv.Crisis = d.Crisis.String()
		}
		hv.Decisions = append(hv.Decisions, dv)
	}
	for _, f := range n.engine.Refusals() {
		dv := DecisionView{Command: f.ID.String(), Outcome: string(StatusRefused), Term: f.Term, Index: f.Index, Detail: f.Refused}
		if ref, ok := crisis.ParseRefusal(f.Refused); ok {
			dv.Rule, dv.Detail = ref.Rule, ref.Detail
		}
		if f.Known {
			dv.Kind, dv.By, dv.ByID, dv.At = string(f.Command.Kind), memberName(r, f.Signer), f.Signer.String(), f.At
			if !f.Command.Crisis.IsZero() {
				dv.Crisis = f.Command.Crisis.String()
			}
		}
		hv.Decisions = append(hv.Decisions, dv)
	}
	slices.SortStableFunc(hv.Decisions, func(a, b DecisionView) int { return cmp.Compare(a.Index, b.Index) })
	return hv
}

// CommandStatus says what became of the crisis command with ID id (or a
// prefix of it: see MinIDPrefix), as far as this node knows: committed
// (term, index), refused (the rule), or pending while it is a provisional
// decision here. ErrNotFound if this node knows no such command.
func (n *Node) CommandStatus(id string) (CommandResult, error) {
	cid, err := n.resolveCommand(id)
	if err != nil {
		return CommandResult{}, err
	}
	res := CommandResult{ID: cid.String(), Crisis: n.crisisLocal()}
	if o, ok := n.engine.Outcome(cid); ok {
		res.Term, res.Index = o.Term, o.Index
		if o.Refused == "" {
			res.Status = StatusCommitted
			return res, nil
		}
		res.Status, res.Rule, res.Detail = StatusRefused, crisis.RuleMalformed, o.Refused
		if ref, ok := crisis.ParseRefusal(o.Refused); ok {
			res.Rule, res.Detail = ref.Rule, ref.Detail
		}
		return res, nil
	}
	// Not among the outcomes known here (a state from a checkpoint carries
	// only its newest 64): the history keeps the newest 256 decisions.
	for _, d := range n.engine.Local().State.History {
		if d.Command == cid {
			res.Status, res.Term, res.Index = StatusCommitted, d.Term, d.Index
			return res, nil
		}
	}
	res.Status = StatusPending
	return res, nil
}

// crisisLocal is the local crisis view (which cannot fail).
func (n *Node) crisisLocal() CrisisView {
	v, _ := n.Crisis(context.Background(), false)
	return v
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
		cmd.Crisis = targetCrisis(n.engine.Local())
	}
	sc, err := crisis.Sign(n.id, n.store.Network(), cmd)
	if err != nil {
		var ref *crisis.Refusal
		if errors.As(err, &ref) {
			return CommandResult{Status: StatusRefused, Rule: ref.Rule, Detail: ref.Detail, ID: cmd.ID.String()}, nil
		}
		return CommandResult{Status: StatusRefused, Rule: crisis.RuleMalformed, Detail: err.Error(), ID: cmd.ID.String()}, nil
	}
	res := CommandResult{ID: sc.ID().String()}
	err = n.engine.Precheck(sc, n.store.Roster())
	var r consensus.Result
	if err == nil {
		r, err = n.engine.Propose(ctx, sc)
	}
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

// targetCrisis is the crisis a command acts on when it names none: the
// open one, or, while an open this node proposed is still pending, the
// crisis that open makes (its ID is the open command's ID), so a command
// given right after an open on a node that is not the leader lands on it.
// A pending open targets only where it can succeed: no crisis open, or an
// exercise that a real crisis ends.
func targetCrisis(v consensus.View) crisis.ID {
	s := v.State
	var newest *consensus.Pending
	for i := range v.Provisional {
		p := &v.Provisional[i]
		if p.Command.Kind != crisis.KindOpen || (newest != nil && !p.Seen.After(newest.Seen)) {
			continue
		}
		if s.Status != crisis.StatusOpen || (s.Exercise && !p.Command.Exercise) {
			newest = p
		}
	}
	if newest != nil {
		return newest.Command.ID
	}
	return s.Crisis
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
