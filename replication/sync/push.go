package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
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
// on a push stream, one push in flight per peer: entries arriving while a
// push to p is in flight wait for it and go in the next push (on a slow
// link, starting a session instead would race with the push and with the
// other peers' sessions, and p would receive the same entries several
// times). Batches too large to push are left to anti-entropy. Our own new
// entries go at once (nobody else has them); entries we relay are offered
// first, since p may hold them or be receiving them already from their
// author or another relay (see claim).
func (svc *Service) pushTo(p peer.ID, batch []*log.Entry) {
	svc.mu.Lock()
	out, size := svc.unsentLocked(p, batch)
	step := svc.transfers.queuePush(p, out, size, svc.cfg.PushLimit)
	svc.mu.Unlock()
	switch step {
	case pushStart:
		svc.wg.Add(1)
		go svc.pushAll(p, out, false)
	case pushAsk:
		svc.Kick(p)
	}
}

// unsentLocked keeps the entries of batch that p does not hold as far as
// we know, and their size.
func (svc *Service) unsentLocked(p peer.ID, batch []*log.Entry) ([]*log.Entry, int) {
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
	return out, size
}

// pushAll pushes out to p (with a cover of our head, if cover: narrow
// links), then what queued up meanwhile, until nothing is left. A failed
// push drops what queued up and asks for a session.
func (svc *Service) pushAll(p peer.ID, out []*log.Entry, cover bool) {
	defer svc.wg.Done()
	ctx, cancel := svc.opCtx()
	defer cancel()
	for len(out) > 0 || cover {
		offer := svc.relays(out)
		held, count, n, err := svc.pushSome(ctx, p, out, cover)
		svc.mu.Lock()
		ps := svc.statsLocked(p)
		ps.BytesSent += n
		t := svc.pathLocked(pushPath(offer))
		t.BytesSent += n
		t.EntriesSent += int64(count)
		if err != nil {
			lost := svc.transfers.endPush(p)
			svc.mu.Unlock()
			svc.logger.Debug("push failed", "peer", p, "err", err)
			if lost && !svc.stopping() {
				svc.Kick(p)
			}
			return
		}
		raiseLocked(ps, headsOf(held))
		ps.EntriesSent += int64(count)
		var next []*log.Entry
		next, cover = svc.transfers.nextPush(p)
		out, _ = svc.unsentLocked(p, next)
		if svc.stopping() {
			out, cover = nil, false
		}
		if len(out) == 0 && !cover {
			svc.transfers.endPush(p)
		}
		svc.mu.Unlock()
	}
}

// relays reports whether entries holds any entry of another author than
// this node: such a push is offered first.
func (svc *Service) relays(entries []*log.Entry) bool {
	for _, e := range entries {
		if svc.cfg.Identity == nil || e.Header.Author != svc.cfg.Identity.ID() {
			return true
		}
	}
	return false
}

// push sends entries to p on a stream of their own, announcing their
// heads first; with offer, it waits for p's frontier and sends only what
// p neither holds nor is receiving. It returns the entries sent and the
// bytes written.
func (svc *Service) push(ctx context.Context, p peer.ID, entries []*log.Entry, offer bool) ([]*log.Entry, int64, error) {
	t := svc.timing(p)
	ctx, cancel := context.WithTimeout(ctx, t.SessionTimeout)
	defer cancel()
	// One protocol: libp2p then negotiates it lazily, with the first
	// message, instead of spending a round trip on it (600 ms over a
	// satellite). A peer that speaks only push/1 refuses the stream; its
	// entries reach it by anti-entropy.
	s, err := svc.cfg.Host.NewStream(ctx, p, ProtocolPush)
	if err != nil {
		return nil, 0, err
	}
	s.SetDeadline(time.Now().Add(t.SessionTimeout))
	c := newConn(s, nil)
	fail := func(err error) ([]*log.Entry, int64, error) {
		if isProtocol(err) {
			svc.offence(p, err) // a garbled answer to our offer
		}
		s.Reset()
		return nil, c.written.n.Load(), err
	}
	typ := uint8(msgHeads)
	if offer {
		typ = msgOffer
	}
	if err := c.send(&message{Type: typ, Frontier: encodeFrontier(headsOf(entries))}); err != nil {
		return fail(err)
	}
	if offer {
		m, err := c.recv()
		if err != nil {
			return fail(err)
		}
		switch m.Type {
		case msgFrontier:
		case msgError:
			return fail(fmt.Errorf("sync: %s declined the offer: %s", p, m.Error))
		default:
			return fail(errUnexpected(m.Type))
		}
		theirs, err := decodeFrontier(m.Frontier)
		if err != nil {
			return fail(err)
		}
		svc.membersOnly(theirs)
		svc.raiseFrontier(p, theirs)
		if entries = lacking(entries, theirs); len(entries) == 0 {
			if err := c.send(&message{Type: msgEnd}); err != nil {
				return fail(err)
			}
			return nil, c.written.n.Load(), s.Close()
		}
	}
	raw := make([][]byte, len(entries))
	for i, e := range entries {
		raw[i] = e.Bytes()
	}
	if err := c.send(&message{Type: msgEntries, Entries: raw}); err != nil {
		return fail(err)
	}
	switch err := awaitStored(s, c, t.PushTimeout); {
	case errors.Is(err, errUnconfirmed):
		// The peer did not say within the push timeout: carry on as if
		// it had (the entries were sent), rather than hold back the next
		// push to it; sessions catch up whatever it lacks.
		svc.logger.Debug("push not confirmed stored in time", "peer", p, "entries", len(entries), "timeout", t.PushTimeout)
		s.Reset()
		return entries, c.written.n.Load(), nil
	case err != nil:
		return fail(err)
	}
	return entries, c.written.n.Load(), s.Close()
}

// awaitStored waits, at most wait, until the receiver of a push closes
// the stream, which it does once it has ingested the entries (durably) or
// dropped them. So the next push to that peer leaves only then: pushes to
// one peer do not overlap and are ingested in the order they were sent
// (overlapping pushes of one feed were ingested out of order, refused as
// gaps and sent again by sessions), and what queues up meanwhile goes in
// one larger push (one fsync on the receiver for the lot). A receiver
// that says nothing within wait (errUnconfirmed) holds back the next push
// no longer.
func awaitStored(s network.Stream, c *conn, wait time.Duration) error {
	if err := s.CloseWrite(); err != nil {
		return err
	}
	if err := s.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	var timeout net.Error
	switch _, err := c.r.ReadByte(); {
	case errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &timeout) && timeout.Timeout():
		return fmt.Errorf("%w within %v", errUnconfirmed, wait)
	case err != nil:
		return err
	default:
		return errors.New("sync: the receiver of a push wrote after its answer")
	}
}

// errUnconfirmed: the receiver of a push did not close the stream within
// the push timeout.
var errUnconfirmed = errors.New("sync: push not confirmed stored")

// headsOf is the newest entry of each author among entries.
func headsOf(entries []*log.Entry) log.Frontier {
	f := log.Frontier{}
	for _, e := range entries {
		if h := f[e.Header.Author]; e.Header.Seq > h.Seq {
			f[e.Header.Author] = log.Head{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport}
		}
	}
	return f
}

// lacking keeps the entries beyond theirs.
func lacking(entries []*log.Entry, theirs log.Frontier) []*log.Entry {
	var out []*log.Entry
	for _, e := range entries {
		if theirs[e.Header.Author].Seq < e.Header.Seq {
			out = append(out, e)
		}
	}
	return out
}

// handlePush serves push/2: the heads of what follows (registered as
// incoming at once, so that sessions and offers running meanwhile do not
// bring the same entries), or an offer we answer with our frontier for
// the offered authors; then the entries, or end.
func (svc *Service) handlePush(s network.Stream) {
	defer s.Close()
	p, c, m, ok := svc.openPush(s, msgHeads, msgOffer)
	if !ok {
		return
	}
	defer svc.endPush(p)
	heads, err := decodeFrontier(m.Frontier)
	if err != nil {
		svc.offence(p, err)
		s.Reset()
		return
	}
	svc.membersOnly(heads)
	id := svc.newTransfer()
	defer svc.finish(id)
	offered := m.Type == msgOffer
	if offered {
		if err := svc.cfg.Store.CheckDisk(); err != nil {
			svc.diskFull()
			c.send(&message{Type: msgError, Error: diskFullMessage})
			return
		}
		svc.authorFirst(p, heads)
		err := c.send(&message{Type: msgFrontier, Frontier: encodeFrontier(svc.claim(id, p, heads))})
		svc.countAnswer(c.written.n.Load())
		if err != nil {
			s.Reset()
			return
		}
	} else {
		svc.expect(id, heads, nil)
	}
	if m, err = c.recv(); err != nil {
		svc.pushFailed(p, s, err)
		return
	}
	switch m.Type {
	case msgEnd:
	case msgEntries:
		svc.ingestPushed(p, pushPath(offered), s, m)
	default:
		svc.offence(p, errUnexpected(m.Type))
		s.Reset()
	}
}

// handlePushV1 serves push/1: one message of entries.
func (svc *Service) handlePushV1(s network.Stream) {
	defer s.Close()
	if p, _, m, ok := svc.openPush(s, msgEntries); ok {
		defer svc.endPush(p)
		svc.ingestPushed(p, pathPush, s, m)
	}
}

// openPush sets a pushed stream's deadline and reads its first message,
// which must be of one of the types want; anything else ends the stream
// (an offence if no honest peer sends it). A peer with maxPushesPerPeer
// pushes being served already has the stream reset before anything is
// read (not an offence: its entries come by anti-entropy). If ok, the
// caller must call endPush(p) when done.
func (svc *Service) openPush(s network.Stream, want ...uint8) (p peer.ID, c *conn, m *message, ok bool) {
	p = s.Conn().RemotePeer()
	if !svc.startPush(p) {
		svc.logger.Debug("push refused: the peer has too many pushes being served", "peer", p, "limit", maxPushesPerPeer)
		s.Reset()
		return p, nil, nil, false
	}
	defer func() {
		if !ok {
			svc.endPush(p)
		}
	}()
	s.SetDeadline(time.Now().Add(svc.timing(p).SessionTimeout))
	c = newConn(s, nil)
	m, err := c.recv()
	if err != nil {
		svc.pushFailed(p, s, err)
		return p, nil, nil, false
	}
	if !slices.Contains(want, m.Type) {
		svc.offence(p, errUnexpected(m.Type))
		s.Reset()
		return p, nil, nil, false
	}
	return p, c, m, true
}

// pushFailed ends a push we could not read: a malformed message is an
// offence, a broken stream is not.
func (svc *Service) pushFailed(p peer.ID, s network.Stream, err error) {
	if isProtocol(err) {
		svc.offence(p, err)
	}
	s.Reset()
}

// ingestPushed ingests pushed entries; if they do not chain onto what we
// hold, it asks for an anti-entropy session with the pusher. A push beyond
// the peer's quota or memory budget is refused and scored.
func (svc *Service) ingestPushed(p peer.ID, w path, s network.Stream, m *message) {
	entries, release, ok := svc.decodePushed(p, s, m.Entries, 0, 0)
	if !ok {
		return
	}
	defer release()
	svc.ingestFrom(p, w, entries)
}

// decodePushed takes a push's entries (and extra items of extraBytes, such
// as covers) from p's push quota, holds them against its memory budget
// and decodes them; release gives the budget back. A push beyond either,
// or an undecodable entry, is refused and scored (ok false, the stream
// reset).
func (svc *Service) decodePushed(p peer.ID, s network.Stream, raws [][]byte, extra, extraBytes int) (entries []*log.Entry, release func(), ok bool) {
	size, cost := int64(extraBytes), int64(extraBytes)
	for _, raw := range raws {
		size += int64(len(raw))
		cost += 2*int64(len(raw)) + 512 // as heldCost, before decoding
	}
	if _, err := svc.take(p, len(raws)+extra, int(size), false); err != nil {
		svc.offence(p, err)
		s.Reset()
		return nil, nil, false
	}
	if err := svc.hold(p, cost, fmt.Sprintf("a push of %d entries", len(raws))); err != nil {
		svc.offence(p, err)
		s.Reset()
		return nil, nil, false
	}
	release = func() { svc.hold(p, -cost, "") }
	entries = make([]*log.Entry, 0, len(raws))
	for _, raw := range raws {
		e, err := log.Decode(raw)
		if err != nil {
			release()
			svc.offence(p, err)
			s.Reset()
			return nil, nil, false
		}
		entries = append(entries, e)
	}
	return entries, release, true
}

// authorFirst waits, briefly, before an offer of relayed entries from
// peer from is answered, for the authors of those entries to announce
// them themselves: an author pushes its new entries to every peer it is
// connected to at once, and a relay that got them first can offer them
// here before the author's own push arrives (its heads cannot be
// declined, so the entries would come twice: about one post in three
// did in a four-node mesh, TestRelayedEntriesReachEachPeerOnce). It
// returns once every offered author that is connected here (and is not
// from) has its offered head stored, held waiting or announced, or after
// authorWait.
func (svc *Service) authorFirst(from peer.ID, heads log.Frontier) {
	authors := map[crypto.MemberID]bool{}
	longest := time.Duration(0)
	for _, m := range svc.cfg.Store.Roster().Members() {
		a := m.Card.ID()
		if _, offered := heads[a]; !offered {
			continue
		}
		if p := m.Card.PeerID(); p != from && p != svc.cfg.Host.ID() && svc.cfg.Host.Network().Connectedness(p) == network.Connected {
			authors[a] = true
			longest = max(longest, authorWait(svc.cfg.Host.Peerstore().LatencyEWMA(p)))
		}
	}
	if len(authors) == 0 {
		return
	}
	timer := time.NewTimer(longest)
	defer timer.Stop()
	for {
		mine := svc.withWaiting(svc.cfg.Store.Frontier(), heads) // a narrow-link author's entries arrive waiting
		svc.mu.Lock()
		ahead := false
		for a, h := range heads {
			if authors[a] && mine[a].Seq < h.Seq && !svc.transfers.bringing(a, h.Seq) {
				ahead = true
			}
		}
		announced := svc.announced
		svc.mu.Unlock()
		if !ahead {
			return
		}
		select {
		case <-announced:
		case <-timer.C:
			return
		}
	}
}

// authorWait is how long an offer waits for an author's own push
// (authorFirst): about two round trips to the author, between 5 and 25
// ms (10 ms when the round trip is not known yet). On a LAN the author's
// push arrives within a millisecond of a relay's offer; a longer wait
// would hold relays back where they matter, when the author is far.
func authorWait(rtt time.Duration) time.Duration {
	if rtt <= 0 {
		return 10 * time.Millisecond
	}
	return min(max(2*rtt, 5*time.Millisecond), 25*time.Millisecond)
}
