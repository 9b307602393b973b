package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// ErrBadRequest and ErrNotFound classify errors of roster requests: the API
// answers 400 and 404.
var (
	ErrBadRequest = errors.New("node: bad request")
	ErrNotFound   = errors.New("node: not found")
)

// Members returns the roster this node holds, with the updates waiting for
// approvals.
func (n *Node) Members() (MembersView, error) {
	st, err := n.store.RosterState()
	if err != nil {
		return MembersView{}, err
	}
	r := st.Roster
	v := MembersView{RosterVersion: r.Version(), RaftRosterVersion: n.engine.RosterVersion(), AdminThreshold: r.Threshold(),
		Members: []RosterMemberView{}, Pending: []PendingUpdateView{}}
	groupsOf := map[crypto.MemberID][]string{}
	for _, g := range r.Groups() {
		ids, _ := r.Group(g)
		for _, id := range ids {
			groupsOf[id] = append(groupsOf[id], g)
		}
	}
	for _, m := range r.Members() {
		id := m.Card.ID()
		mv := RosterMemberView{Name: m.Card.Name(), MemberID: id.String(), Roles: []string{}, Voter: r.IsVoter(id) && !m.Revoked,
			Admin: r.IsAdmin(id), Status: MemberActive, Groups: groupsOf[id]}
		for _, role := range m.Roles {
			mv.Roles = append(mv.Roles, string(role))
		}
		switch {
		case m.Revoked && m.Reason == "rotated":
			mv.Status, mv.LastValidSeq = MemberRotated, m.FeedSeq
		case m.Revoked:
			mv.Status, mv.Reason, mv.LastValidSeq = MemberRevoked, m.Reason, m.FeedSeq
		}
		if mv.Groups == nil {
			mv.Groups = []string{}
		}
		v.Members = append(v.Members, mv)
	}
	now := n.now()
	for _, p := range st.Pending {
		pv := PendingUpdateView{UpdateID: p.Update.ID().String(), Op: string(p.Update.Op()), Target: describeTarget(r, p.Update),
			Approvals: len(p.Approvers), Needed: p.Needed, Expires: p.Expires, Expired: now.After(p.Expires)}
		for _, a := range p.Approvers {
			pv.Approvers = append(pv.Approvers, memberName(r, a))
		}
		v.Pending = append(v.Pending, pv)
	}
	return v, nil
}

func memberName(r *crypto.Roster, id crypto.MemberID) string {
	if m, ok := r.Member(id); ok {
		return m.Card.Name()
	}
	return id.Short()
}

// describeTarget names what an update changes, for a person.
func describeTarget(r *crypto.Roster, u *crypto.Update) string {
	switch u.Op() {
	case crypto.OpAdd:
		if c := u.NewMember(); c != nil {
			return c.Name()
		}
	case crypto.OpRevoke, crypto.OpRotate:
		if t, ok := u.Target(); ok {
			return memberName(r, t)
		}
	case crypto.OpGroup:
		return u.Group()
	case crypto.OpVoters:
		var names []string
		for _, id := range u.Members() {
			names = append(names, memberName(r, id))
		}
		return strings.Join(names, ",")
	}
	return ""
}

// refusedUpdate is the result of a change refused by a rule.
func refusedUpdate(op, target, rule, format string, args ...any) UpdateResult {
	return UpdateResult{Op: op, Target: target, Status: UpdateRefused, Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// ruleOf returns the rule a roster refusal names.
func ruleOf(err error) string {
	var re *crypto.RuleError
	if errors.As(err, &re) {
		return re.Rule
	}
	return "malformed"
}

// ChangeRoster signs a roster update with this node's identity and writes
// it into the crisis log. Only an admin's node may (a member revoking its
// own key, break glass, is the exception). A change refused by a rule is
// not written; with an admin threshold above 1 it waits for approvals.
func (n *Node) ChangeRoster(ctx context.Context, req UpdateRequest) (UpdateResult, error) {
	r := n.store.Roster()
	spec := crypto.UpdateSpec{Op: crypto.UpdateOp(req.Op), Created: n.now(), Reason: req.Reason, Voter: req.Voter}
	target := req.Member
	byName := func(name string) (*crypto.Member, *UpdateResult) {
		m, ok := r.ByName(name)
		if !ok {
			res := refusedUpdate(req.Op, name, "member-unknown", "%s is not a member of network %s (crisismesh member list)", name, r.Name())
			return nil, &res
		}
		return m, nil
	}
	switch spec.Op {
	case crypto.OpAdd:
		if req.Card == nil {
			return refusedUpdate(req.Op, "", "add-shape", "add needs the new member's card"), nil
		}
		target = req.Card.Name()
		m := &crypto.Member{Card: req.Card, Addrs: req.Addrs}
		for _, s := range req.Roles {
			role, err := crypto.ParseRole(s)
			if err != nil {
				return refusedUpdate(req.Op, target, "roles-valid", "%v", err), nil
			}
			m.Roles = append(m.Roles, role)
		}
		spec.Member = m
	case crypto.OpRevoke, crypto.OpRotate:
		m, refused := byName(req.Member)
		if refused != nil {
			return *refused, nil
		}
		spec.Target = m.Card.ID()
		if head, ok := n.store.Head(spec.Target); ok {
			spec.FeedSeq, spec.FeedHead = head.Seq, head.ID
		}
		if spec.Op == crypto.OpRotate {
			if req.Card == nil {
				return refusedUpdate(req.Op, target, "rotate-shape", "rotate needs the member's new card"), nil
			}
			spec.NewCard = req.Card
		} else if spec.Reason == "" {
			spec.Reason = "revoked by " + n.id.Name()
		}
	case crypto.OpVoters:
		set := map[crypto.MemberID]bool{}
		for _, id := range r.ActiveVoters() {
			set[id] = true
		}
		for _, list := range []struct {
			names []string
			on    bool
		}{{req.On, true}, {req.Off, false}} {
			for _, name := range list.names {
				m, refused := byName(name)
				if refused != nil {
					return *refused, nil
				}
				set[m.Card.ID()] = list.on
			}
		}
		for id, on := range set {
			if on {
				spec.Members = append(spec.Members, id)
			}
		}
		slices.SortFunc(spec.Members, func(a, b crypto.MemberID) int { return strings.Compare(a.String(), b.String()) })
		target = strings.Join(append(slices.Clone(req.On), req.Off...), ",")
	default:
		return UpdateResult{}, fmt.Errorf("%w: unknown roster change %q (want add, revoke, rotate or voters; groups change through /api/v1/groups)", ErrBadRequest, req.Op)
	}
	return n.signRosterUpdate(ctx, spec, target)
}

// signRosterUpdate signs spec as a roster update of the roster this node
// holds and writes it, unless a rule refuses it.
func (n *Node) signRosterUpdate(ctx context.Context, spec crypto.UpdateSpec, target string) (UpdateResult, error) {
	r := n.store.Roster()
	op := string(spec.Op)
	u, err := crypto.NewUpdate(r, spec, n.id)
	if err != nil {
		return refusedUpdate(op, target, "malformed", "%v", err), nil
	}
	if _, err := r.Apply(u); err != nil && ruleOf(err) != "approvals" {
		res := refusedUpdate(op, target, ruleOf(err), "%v", err)
		res.UpdateID = u.ID().String()
		return res, nil
	}
	if _, err := n.store.AppendRosterUpdate(ctx, u); err != nil {
		return UpdateResult{}, err
	}
	n.logger.Info("roster update written", "update", u.ID().String()[:16], "op", u.Op(), "target", target, "version", u.Version())
	return n.UpdateStatus(u.ID().String())
}

// Approve signs this node's admin's approval of a pending roster update
// and writes it into the crisis log.
func (n *Node) Approve(ctx context.Context, id string) (UpdateResult, error) {
	uid, st, err := n.rosterStateFor(id)
	if errors.Is(err, ErrNotFound) {
		return refusedUpdate("", "", "update-unknown", "this node holds no update %s waiting for approvals (crisismesh member list shows the pending ones)", id), nil
	}
	if err != nil {
		return UpdateResult{}, err
	}
	r := st.Roster
	i := slices.IndexFunc(st.Pending, func(p log.PendingUpdate) bool { return p.Update.ID() == uid })
	if i < 0 {
		res, err := n.UpdateStatus(uid.String())
		if err == nil && res.Status == UpdateInForce {
			return refusedUpdate(res.Op, res.Target, "update-in-force", "update %s is already in force: nothing to approve", id), nil
		}
		return refusedUpdate("", "", "update-unknown", "this node holds no update %s waiting for approvals (crisismesh member list shows the pending ones)", id), nil
	}
	p := st.Pending[i]
	op, target := string(p.Update.Op()), describeTarget(r, p.Update)
	me := n.id.ID()
	switch {
	case !r.IsAdmin(me):
		return refusedUpdate(op, target, "signer-admin", "%s is not an active admin: only admins approve roster changes", n.id.Name()), nil
	case slices.Contains(p.Approvers, me):
		return refusedUpdate(op, target, "approval-duplicate", "%s has already signed update %s", n.id.Name(), id), nil
	case n.now().After(p.Expires):
		return refusedUpdate(op, target, "approval-expired", "update %s expired at %s: ask an admin to make it again", id, p.Expires.Format(time.RFC3339)), nil
	}
	a, err := crypto.NewApproval(p.Update, n.id, n.now())
	if err != nil {
		return UpdateResult{}, err
	}
	if _, err := n.store.AppendApproval(ctx, p.Update, a); err != nil {
		return refusedUpdate(op, target, ruleOf(err), "%v", err), nil
	}
	n.logger.Info("roster update approved", "update", id[:16], "op", op, "target", target)
	return n.UpdateStatus(id)
}

// rosterStateFor derives the roster state and resolves an update ID (or
// a prefix of one: see MinIDPrefix) in it.
func (n *Node) rosterStateFor(id string) (crypto.UpdateID, log.RosterState, error) {
	st, err := n.store.RosterState()
	if err != nil {
		return crypto.UpdateID{}, st, err
	}
	uid, err := resolveUpdate(id, st)
	return uid, st, err
}

// UpdateStatus says where the roster update with ID id stands on this node.
func (n *Node) UpdateStatus(id string) (UpdateResult, error) {
	uid, st, err := n.rosterStateFor(id)
	if err != nil {
		return UpdateResult{}, err
	}
	r := st.Roster
	res := UpdateResult{UpdateID: uid.String(), RosterVersion: r.Version(), Needed: r.Threshold()}
	for _, a := range st.Applied {
		if a.Update.ID() != uid {
			continue
		}
		res.Op, res.Target = string(a.Update.Op()), describeTarget(r, a.Update)
		res.Approvals = 1 + len(a.Approvals)
		res.Status = UpdateInForce
		if n.engine.RosterVersion() < a.Update.Version() {
			res.Status, res.WaitingFor = UpdatePending, "raft"
		}
		if n := len(r.ActiveVoters()); n%2 == 0 {
			res.Note = fmt.Sprintf("%d voters are active: an even number; make it odd with `crisismesh member voter --on NAME` (or --off NAME)", n)
		}
		return res, nil
	}
	for _, p := range st.Pending {
		if p.Update.ID() != uid {
			continue
		}
		res.Op, res.Target = string(p.Update.Op()), describeTarget(r, p.Update)
		res.Status, res.WaitingFor, res.Approvals, res.Needed = UpdatePending, "approvals", len(p.Approvers), p.Needed
		if n.now().After(p.Expires) {
			res.Status, res.WaitingFor, res.Rule = UpdateRefused, "", "approval-expired"
			res.Detail = fmt.Sprintf("expired at %s with %d of %d admins", p.Expires.Format(time.RFC3339), len(p.Approvers), p.Needed)
		}
		return res, nil
	}
	for _, f := range st.Refused {
		if u, ok := updateOf(f); ok && u.ID() == uid {
			res.Op, res.Target = string(u.Op()), describeTarget(r, u)
			res.Status, res.Rule, res.Detail = UpdateRefused, f.Rule, f.Err.Error()
			return res, nil
		}
	}
	return UpdateResult{}, fmt.Errorf("%w: this node holds no roster update %s", ErrNotFound, id)
}
