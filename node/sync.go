package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/store"
)

// WhoHas says which members hold an entry, as far as this node knows.
func (n *Node) WhoHas(id string) ([]HolderView, error) {
	h, err := n.resolveEntry(id)
	if err != nil {
		return nil, err
	}
	hs, err := n.sync.WhoHas(h)
	if err != nil {
		return nil, err
	}
	out := make([]HolderView, 0, len(hs))
	for _, x := range hs {
		v := HolderView{Member: x.Member, PeerID: x.Peer.String(), Has: x.Has, Why: x.Why, CanRead: x.CanRead}
		if !x.AsOf.IsZero() {
			t := x.AsOf.UTC()
			v.AsOf = &t
		}
		out = append(out, v)
	}
	return out, nil
}

// resolvePeer finds a member by name or peer ID.
func (n *Node) resolvePeer(who string) (peer.ID, string, error) {
	r := n.store.Roster()
	if m, ok := r.ByName(who); ok {
		return m.Card.PeerID(), m.Card.Name(), nil
	}
	if p, err := peer.Decode(who); err == nil {
		if m, ok := r.ByPeer(p); ok {
			return p, m.Card.Name(), nil
		}
		return "", "", fmt.Errorf("peer %s is not a member of this network", who)
	}
	return "", "", fmt.Errorf("no member called %q (give a member name or a peer ID)", who)
}

// ForceSync runs a full resync with one member now.
func (n *Node) ForceSync(ctx context.Context, who string) (SyncReport, error) {
	p, name, err := n.resolvePeer(who)
	if err != nil {
		return SyncReport{}, err
	}
	rep, err := n.sync.ForceResync(ctx, p)
	out := SyncReport{Peer: p.String(), Member: name, Equal: rep.Equal, EntriesSent: rep.EntriesSent, EntriesRecv: rep.EntriesRecv,
		BytesSent: rep.BytesSent, BytesRecv: rep.BytesRecv, DurationMS: rep.Duration.Milliseconds()}
	if errors.Is(err, store.ErrDiskFull) {
		return out, fmt.Errorf("sync with %s: %w", name, err)
	}
	if err != nil {
		return out, fmt.Errorf("sync with %s: %w (is it connected? see crisismesh status)", name, err)
	}
	return out, nil
}
