package node

import (
	"context"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Status returns the node's status.
func (n *Node) Status(ctx context.Context) StatusView {
	st := n.store
	f := st.Frontier()
	var count uint64
	for _, h := range f {
		count += h.Seq
	}
	sv := StatusView{
		Member: n.id.Name(), MemberID: n.id.ID().String(), PeerID: n.host.ID().String(), Network: st.Network().String(),
		Entries: count, Digest: st.Digest().String(), Forks: len(st.Forks()), Peers: []PeerView{},
		Disk: n.diskView(),
	}
	sv.DiskFull = sv.Disk.Full
	sv.Offences = []OffenceView{}
	for _, o := range st.Offences() {
		sv.Offences = append(sv.Offences, OffenceView{Member: memberName(st.Roster(), o.Author), MemberID: o.Author.String(), Rule: o.Rule, Entries: o.Entries})
	}
	for _, a := range n.host.Addrs() {
		sv.ListenAddrs = append(sv.ListenAddrs, a.String())
	}
	stats := map[string]syncStats{}
	for _, ps := range n.sync.Peers() {
		stats[ps.Peer.String()] = syncStats{lastSync: ps.LastSync, frontier: ps.LastFrontier}
	}
	for _, m := range st.Roster().Members() {
		if m.Revoked || m.Card.ID() == n.id.ID() {
			continue
		}
		pid := m.Card.PeerID()
		pv := PeerView{Member: m.Card.Name(), PeerID: pid.String(), Profile: n.host.ProfileFor(pid).Name}
		pv.Connected = len(n.host.Host().Network().ConnsToPeer(pid)) > 0
		pv.RTTMS = float64(n.host.Host().Peerstore().LatencyEWMA(pid).Microseconds()) / 1000
		if s, ok := stats[pid.String()]; ok {
			if !s.lastSync.IsZero() {
				t := s.lastSync.UTC()
				pv.LastSync = &t
			}
			if s.frontier != nil {
				for a, h := range f {
					if o := s.frontier[a]; h.Seq > o.Seq {
						pv.Behind += int64(h.Seq - o.Seq)
					}
				}
			}
		}
		sv.Peers = append(sv.Peers, pv)
	}
	r := n.engine.Raft()
	leaderAddr, leaderID := r.LeaderWithID()
	_ = leaderAddr
	sv.Raft = RaftView{Role: strings.ToLower(r.State().String()), Leader: n.peerName(string(leaderID)), Term: r.CurrentTerm(), AppliedIndex: r.AppliedIndex(), LastContactMS: -1}
	if r.State().String() == "Leader" {
		sv.Raft.LastContactMS = 0
	} else if lc := r.LastContact(); !lc.IsZero() {
		sv.Raft.LastContactMS = time.Since(lc).Milliseconds()
	}
	sv.Crisis, _ = n.Crisis(ctx, false)
	now := n.now()
	sv.Alerts = reserveAlerts(n.engine.Local().State, now)
	wv := waitingView(n.waitingEntries(), st.Roster(), n.narrowWindow(), now)
	sv.Waiting, sv.WaitingOverdue = waitingCounts(wv)
	sv.Alerts = append(sv.Alerts, waitingAlerts(wv)...)
	return sv
}

// diskView measures the store's free space now.
func (n *Node) diskView() DiskView {
	d := n.store.Disk()
	v := DiskView{Dir: d.Dir, FreeBytes: d.Free, ReserveBytes: d.Reserve, Full: d.Full}
	switch {
	case d.Full:
		if err := n.store.CheckDisk(); err != nil {
			v.Message = err.Error()
		}
	case d.Err != nil:
		v.Message = "free space unknown, writing without the disk-full guard: " + d.Err.Error()
	}
	return v
}

type syncStats struct {
	lastSync time.Time
	frontier log.Frontier
}

// peerName names the member whose peer ID is pid ("" if none).
func (n *Node) peerName(pid string) string {
	if pid == "" {
		return ""
	}
	for _, m := range n.store.Roster().Members() {
		if m.Card.PeerID().String() == pid {
			return m.Card.Name()
		}
	}
	return pid
}
