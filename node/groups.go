package node

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crisismesh/crisismesh/crypto"
)

// Groups returns the named groups of the roster this node holds.
func (n *Node) Groups() []GroupView {
	r := n.store.Roster()
	out := []GroupView{}
	for _, g := range r.Groups() {
		ids, _ := r.Group(g)
		v := GroupView{Name: g, Members: []string{}, Member: slices.Contains(ids, n.id.ID())}
		for _, id := range ids {
			v.Members = append(v.Members, memberName(r, id))
		}
		if k, _, ok := n.store.GroupKey(g); ok && v.Member {
			v.Epoch = k.Epoch()
		}
		out = append(out, v)
	}
	return out
}

// ChangeGroup turns a group change into a roster update (signed by this
// node's admin, approved like any roster change).
func (n *Node) ChangeGroup(ctx context.Context, req GroupRequest) (UpdateResult, error) {
	r := n.store.Roster()
	refuse := func(rule, format string, args ...any) (UpdateResult, error) {
		return refusedUpdate("group", req.Group, rule, format, args...), nil
	}
	if err := crypto.CheckGroupName(req.Group); err != nil {
		return refuse("group-name", "%v", err)
	}
	have, exists := r.Group(req.Group)
	set := map[crypto.MemberID]bool{}
	for _, id := range have {
		set[id] = true
	}
	switch req.Op {
	case "create":
		if exists {
			return refuse("group-exists", "group %s exists already (members: %d); change it with `crisismesh group add|remove`", req.Group, len(have))
		}
		if len(req.Members) == 0 {
			return refuse("group-members", "a group needs at least one member")
		}
	case "add", "remove", "delete":
		if !exists {
			return refuse("group-unknown", "there is no group %s (crisismesh group list)", req.Group)
		}
	default:
		return UpdateResult{}, fmt.Errorf("%w: unknown group change %q (want create, add, remove or delete)", ErrBadRequest, req.Op)
	}
	for _, name := range req.Members {
		m, ok := r.ByName(name)
		if !ok || m.Revoked {
			return refuse("member-unknown", "%s is not an active member of network %s (crisismesh member list)", name, r.Name())
		}
		set[m.Card.ID()] = req.Op != "remove"
	}
	var ids []crypto.MemberID
	if req.Op != "delete" {
		for id, in := range set {
			if in {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return refuse("group-members", "removing the last member of %s: delete the group instead (crisismesh group delete %s)", req.Group, req.Group)
		}
	}
	return n.signRosterUpdate(ctx, crypto.UpdateSpec{Op: crypto.OpGroup, Group: req.Group, Members: ids, Created: n.now()}, req.Group)
}

// ensureGroupKeys is a member's key duty for its named groups: a group it
// is in with no key sealed to exactly its members (new, or changed since)
// gets a new epoch from this node. Several members may do so at once; all
// pick the same key to write under (log.Keyring.ForGroup).
func (n *Node) ensureGroupKeys(ctx context.Context) error {
	r := n.store.Roster()
	var errs []error
	for _, g := range r.Groups() {
		ids, _ := r.Group(g)
		if !slices.Contains(ids, n.id.ID()) {
			continue
		}
		if _, _, ok := n.store.GroupKey(g); ok {
			continue
		}
		if _, err := n.newGroupEpoch(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newGroupEpoch issues a new key epoch of the named group, sealed to
// exactly its members.
func (n *Node) newGroupEpoch(ctx context.Context, g string) (*crypto.GroupKey, error) {
	r := n.store.Roster()
	ids, ok := r.Group(g)
	if !ok || !slices.Contains(ids, n.id.ID()) {
		return nil, fmt.Errorf("%w: %s is not a member of group %s", ErrBadRequest, n.id.Name(), g)
	}
	epoch := uint64(1)
	if k, ok := n.store.CurrentKey(crypto.GroupKeyName(g)); ok {
		epoch = k.Epoch() + 1
	}
	key, err := crypto.NewGroupKey(crypto.GroupKeyName(g), epoch)
	if err != nil {
		return nil, err
	}
	var recips []crypto.Recipient
	for _, id := range ids {
		if m, ok := r.Member(id); ok {
			recips = append(recips, m.Card.Recipient())
		}
	}
	if _, err := n.store.AppendKey(ctx, key, recips); err != nil {
		return nil, fmt.Errorf("node: key of group %s: %w", g, err)
	}
	n.logger.Info("group key distributed", "group", g, "epoch", epoch, "members", len(ids))
	return key, nil
}

// RotateKey starts a new key epoch by hand: of the network key (group ""
// or "all": admins only), or of a named group this node's member is in.
func (n *Node) RotateKey(ctx context.Context, group string) (KeyRotation, error) {
	if group == "" || group == networkGroup {
		r := n.store.Roster()
		if !r.IsAdmin(n.id.ID()) {
			return KeyRotation{}, fmt.Errorf("%w: only an admin's node issues the network key; rotate a named group's key with --group NAME", ErrBadRequest)
		}
		key, members, err := n.newNetworkEpoch(ctx)
		if err != nil {
			return KeyRotation{}, err
		}
		return KeyRotation{Group: networkGroup, Epoch: key.Epoch(), Members: members}, nil
	}
	key, err := n.newGroupEpoch(ctx, group)
	if err != nil {
		return KeyRotation{}, err
	}
	ids, _ := n.store.Roster().Group(group)
	return KeyRotation{Group: group, Epoch: key.Epoch(), Members: len(ids)}, nil
}
