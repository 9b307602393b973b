package node

import (
	"context"
	"fmt"
	"slices"

	"github.com/crisismesh/crisismesh/crypto"
)

// networkGroup is the group key every member holds: it seals TLP:CLEAR,
// GREEN and AMBER entries, proposals and checkpoints.
const networkGroup = "all"

// ensureGroupKey is an admin node's key duty: make sure every active member
// holds the current whole-network key, and rotate to a new epoch when a
// member who holds it was revoked (so what is written from then on is
// closed to them). Non-admin nodes do nothing.
func (n *Node) ensureGroupKey(ctx context.Context) error {
	roster := n.store.Roster()
	if !roster.IsAdmin(n.id.ID()) {
		return nil
	}
	var active []*crypto.Member
	for _, m := range roster.Members() {
		if !m.Revoked {
			active = append(active, m)
		}
	}
	recipients := func(ms []*crypto.Member) []crypto.Recipient {
		out := make([]crypto.Recipient, len(ms))
		for i, m := range ms {
			out[i] = m.Card.Recipient()
		}
		return out
	}
	key, ok := n.store.CurrentKey(networkGroup)
	if ok {
		holders := n.store.KeyMembers(key)
		revokedHolder := slices.ContainsFunc(holders, func(id crypto.MemberID) bool { return !roster.Active(id) })
		if !revokedHolder {
			var missing []*crypto.Member
			for _, m := range active {
				if !slices.Contains(holders, m.Card.ID()) {
					missing = append(missing, m)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			// Sealed to every active member, not only the missing ones:
			// each member then sees that everyone holds the key, and
			// writes under it (store.NetworkKey).
			if _, err := n.store.AppendKey(ctx, key, recipients(active)); err != nil {
				return fmt.Errorf("node: give the network key to new members: %w", err)
			}
			n.logger.Info("network key given to new members", "members", len(missing), "epoch", key.Epoch())
			return nil
		}
	}
	_, _, err := n.newNetworkEpoch(ctx)
	return err
}

// newNetworkEpoch issues a new epoch of the network key, sealed to every
// active member (an admin's node only).
func (n *Node) newNetworkEpoch(ctx context.Context) (*crypto.GroupKey, int, error) {
	var recips []crypto.Recipient
	for _, m := range n.store.Roster().Members() {
		if !m.Revoked {
			recips = append(recips, m.Card.Recipient())
		}
	}
	epoch := uint64(1)
	if key, ok := n.store.CurrentKey(networkGroup); ok {
		epoch = key.Epoch() + 1
	}
	next, err := crypto.NewGroupKey(networkGroup, epoch)
	if err != nil {
		return nil, 0, err
	}
	if _, err := n.store.AppendKey(ctx, next, recips); err != nil {
		return nil, 0, fmt.Errorf("node: distribute the network key: %w", err)
	}
	n.logger.Info("network key distributed", "epoch", epoch, "members", len(recips))
	return next, len(recips), nil
}
