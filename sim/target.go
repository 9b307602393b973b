package sim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/replication/crisis"
)

// netTarget is the workload's view of the real network: clients go
// through the nodes' own Command and Crisis calls, as the CLI and the API
// do.
type netTarget struct{ r *netLayer }

func (t netTarget) Nodes() int { return len(t.r.specs) }

func (t netTarget) Up(i int) bool { return t.r.node(i) != nil && !t.r.isPaused(i) }

// outcomeWait bounds how long a client waits for a proposal made through
// the log to be decided before calling its outcome unknown.
const outcomeWait = 5 * time.Second

func (t netTarget) Change(ctx context.Context, i int, state string, add bool) (Outcome, error) {
	n := t.r.node(i)
	if n == nil {
		return OutcomeUnknown, fmt.Errorf("node%d is down: %w", i, ErrNoEffect)
	}
	// Only the members who assess a crisis may change its affected
	// states: a command from another member would be refused by rule,
	// which says nothing about the set.
	if m, ok := n.Store().Roster().Member(n.Identity().ID()); !ok || (!m.HasRole(crypto.RoleCSIRT) && !m.HasRole(crypto.RoleCyclone)) {
		return OutcomeUnknown, fmt.Errorf("node%d's member may not change affected states: %w", i, ErrNoEffect)
	}
	req := node.CommandRequest{Kind: string(crisis.KindAffected)}
	if add {
		req.Add = []string{state}
	} else {
		req.Remove = []string{state}
	}
	cmd, err := node.ToCommand(req)
	if err != nil {
		return OutcomeUnknown, fmt.Errorf("%w: %w", ErrNoEffect, err)
	}
	res, err := n.Command(ctx, cmd)
	if err != nil {
		return OutcomeUnknown, err
	}
	awaitOutcome(ctx, n, &res)
	switch {
	case res.Status == node.StatusCommitted:
		return OutcomeCommitted, nil
	case res.Status == node.StatusRefused && res.Rule == crisis.RuleNoChange:
		return OutcomeRefused, nil
	case res.Status == node.StatusRefused:
		return OutcomeUnknown, fmt.Errorf("refused by rule %s (%s): %w", res.Rule, res.Detail, ErrNoEffect)
	}
	return OutcomeUnknown, nil
}

// awaitOutcome waits (at most outcomeWait) for the outcome of a command
// res left pending (proposed through the log) and sets it in res.
func awaitOutcome(ctx context.Context, n *node.Node, res *node.CommandResult) {
	if res.Status != node.StatusPending {
		return
	}
	id, err := crisis.ParseID(res.ID)
	if err != nil {
		return
	}
	_ = waitUntil(ctx, outcomeWait, func() bool {
		o, ok := n.Consensus().Outcome(id)
		if ok {
			res.Status, res.Rule, res.Detail, res.Term, res.Index = node.StatusCommitted, "", fmt.Sprintf("at index %d", o.Index), o.Term, o.Index
			if o.Refused != "" {
				res.Status, res.Rule, res.Detail = node.StatusRefused, refusedRule(o.Refused), o.Refused
			}
		}
		return ok
	})
}

// refusedRule extracts the rule from an outcome's refusal text (a
// crisis.Refusal's Error: "crisis: command refused by rule RULE: …").
func refusedRule(text string) string {
	const marker = "refused by rule "
	_, rest, ok := strings.Cut(text, marker)
	if !ok {
		return ""
	}
	rule, _, _ := strings.Cut(rest, ":")
	return rule
}

func (t netTarget) Read(ctx context.Context, i int) ([]string, error) {
	n := t.r.node(i)
	if n == nil {
		return nil, fmt.Errorf("node%d is down", i)
	}
	v, err := n.Crisis(ctx, true)
	if err != nil {
		return nil, err
	}
	return v.Affected, nil
}
