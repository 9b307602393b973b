package sync

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// pushLoop pushes entries the store adds to connected peers that lack them.
func (svc *Service) pushLoop() {
	defer svc.wg.Done()
	for {
		select {
		case <-svc.stop:
			return
		case batch, ok := <-svc.sub.C:
			if !ok {
				return
			}
			for _, p := range svc.cfg.Host.Network().Peers() {
				svc.pushTo(p, batch)
			}
		}
	}
}

// pushTo sends p the entries of batch it does not hold (as far as we know)
// on a push stream, one push in flight per peer. Batches too large to push,
// or arriving while a push to p is in flight, are left to anti-entropy.
func (svc *Service) pushTo(p peer.ID, batch []*log.Entry) {
	svc.mu.Lock()
	var known log.Frontier
	if ps := svc.peers[p]; ps != nil {
		known = ps.LastFrontier
	}
	var out []*log.Entry
	size := 0
	for _, e := range batch {
		if known != nil && known[e.Header.Author].Seq >= e.Header.Seq {
			continue
		}
		out = append(out, e)
		size += e.Size()
	}
	busy := svc.pushing[p]
	if len(out) > 0 && !busy && size <= svc.cfg.PushLimit {
		svc.pushing[p] = true
	}
	svc.mu.Unlock()
	switch {
	case len(out) == 0:
		return
	case busy || size > svc.cfg.PushLimit:
		svc.Kick(p)
		return
	}
	svc.wg.Add(1)
	go func() {
		defer svc.wg.Done()
		defer func() {
			svc.mu.Lock()
			delete(svc.pushing, p)
			svc.mu.Unlock()
		}()
		ctx, cancel := svc.opCtx()
		defer cancel()
		n, err := svc.push(ctx, p, out)
		if err != nil {
			svc.logger.Debug("push failed", "peer", p, "err", err)
			return
		}
		svc.mu.Lock()
		ps := svc.statsLocked(p)
		if ps.LastFrontier == nil {
			ps.LastFrontier = log.Frontier{}
		}
		for _, e := range out {
			if h := ps.LastFrontier[e.Header.Author]; e.Header.Seq > h.Seq {
				ps.LastFrontier[e.Header.Author] = log.Head{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport}
			}
		}
		ps.EntriesSent += int64(len(out))
		ps.BytesSent += n
		svc.mu.Unlock()
	}()
}

// push sends entries to p on a stream of their own and returns the bytes
// written.
func (svc *Service) push(ctx context.Context, p peer.ID, entries []*log.Entry) (int64, error) {
	t := svc.timing(p)
	ctx, cancel := context.WithTimeout(ctx, t.SessionTimeout)
	defer cancel()
	s, err := svc.cfg.Host.NewStream(ctx, p, ProtocolPush)
	if err != nil {
		return 0, err
	}
	s.SetDeadline(time.Now().Add(t.SessionTimeout))
	raw := make([][]byte, len(entries))
	for i, e := range entries {
		raw[i] = e.Bytes()
	}
	c := newConn(s, nil)
	if err := c.send(&message{Type: msgEntries, Entries: raw}); err != nil {
		s.Reset()
		return c.written.n.Load(), err
	}
	return c.written.n.Load(), s.Close()
}

// handlePush ingests pushed entries; if they do not chain onto what we
// hold, it asks for an anti-entropy session with the pusher.
func (svc *Service) handlePush(s network.Stream) {
	p := s.Conn().RemotePeer()
	defer s.Close()
	s.SetDeadline(time.Now().Add(svc.timing(p).SessionTimeout))
	c := newConn(s, nil)
	m, err := c.recv()
	if err != nil {
		if isProtocol(err) {
			svc.offence(p, err)
		}
		s.Reset()
		return
	}
	if m.Type != msgEntries {
		svc.offence(p, errUnexpected(m.Type))
		s.Reset()
		return
	}
	entries := make([]*log.Entry, 0, len(m.Entries))
	for _, raw := range m.Entries {
		e, err := log.Decode(raw)
		if err != nil {
			svc.offence(p, err)
			s.Reset()
			return
		}
		entries = append(entries, e)
	}
	res, err := svc.cfg.Store.Ingest(context.Background(), entries...)
	if err != nil {
		if res != nil {
			svc.recordIngest(p, res)
		}
		if errors.Is(err, store.ErrDiskFull) {
			// Not the pusher's fault; anti-entropy fetches the entries
			// when space is back.
			svc.diskFull() // pause, and say so once
			svc.logger.Debug("pushed entries dropped: this node's disk is full", "peer", p)
			return
		}
		svc.logger.Warn("ingest of pushed entries failed", "peer", p, "err", err)
		return
	}
	svc.recordIngest(p, res)
	for _, r := range res.Rejected {
		reason := log.ReasonOf(r.Err)
		if !honest(reason) {
			svc.offence(p, r.Err)
			return
		}
	}
	if len(res.Rejected) > 0 {
		svc.Kick(p) // we lack predecessors: fetch them properly
	}
}
