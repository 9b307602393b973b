package node

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/sync"
)

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

// ExportBundle writes a bundle to out (an absolute path): everything the
// member called forMember lacks as far as this node last saw, or every
// entry when forMember is "".
func (n *Node) ExportBundle(out, forMember string) (BundleView, error) {
	if !filepath.IsAbs(out) {
		return BundleView{}, fmt.Errorf("bundle path %q must be absolute", out)
	}
	var base log.Frontier
	if forMember != "" {
		p, _, err := n.resolvePeer(forMember)
		if err != nil {
			return BundleView{}, err
		}
		for _, ps := range n.sync.Peers() {
			if ps.Peer == p {
				base = ps.LastFrontier
			}
		}
	}
	info, err := sync.Export(n.store, n.id, base, out, n.now())
	if err != nil {
		return BundleView{}, err
	}
	return n.bundleView(out, info), nil
}

// ImportBundle checks and ingests a bundle file (an absolute path).
func (n *Node) ImportBundle(ctx context.Context, file string) (BundleView, error) {
	if !filepath.IsAbs(file) {
		return BundleView{}, fmt.Errorf("bundle path %q must be absolute", file)
	}
	res, err := sync.Import(ctx, n.store, file)
	if err != nil {
		return BundleView{}, err
	}
	v := n.bundleView(file, res.Info)
	v.Added, v.Dups, v.Rejected = res.Added, res.Duplicates, len(res.Rejected)
	return v, nil
}

func (n *Node) bundleView(file string, info sync.BundleInfo) BundleView {
	exp := info.Exporter.Short()
	if m, ok := n.store.Roster().Member(info.Exporter); ok {
		exp = m.Card.Name()
	}
	return BundleView{File: file, Network: info.Network.String(), Exporter: exp, Created: info.Created, Entries: info.Entries, Bytes: info.Bytes}
}
