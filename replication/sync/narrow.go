package sync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// Narrow links: this node's own entries travel to a narrow-link peer with
// provisional signatures, and their composite signatures follow within the
// link's window (package doc, "Narrow links"; replication/log's doc for
// the scheme and why it is safe).

// narrowPeer is what this node owes one narrow-link peer: own entries
// sent there with a provisional signature and not yet covered.
type narrowPeer struct {
	head    log.Head  // the newest own entry sent provisionally: our store holds it with its composite
	pending int       // own entries sent since the last composite or cover
	bytes   int       // their size
	oldest  time.Time // when the first of them was sent
}

// narrowWindow returns the window of p's link and whether own entries go
// to p provisionally: the link is narrow (Timing.Window set), this node
// has an identity, and p speaks narrow/1 (libp2p's identify told us).
func (svc *Service) narrowWindow(p peer.ID) (log.Window, bool) {
	w := svc.timing(p).Window
	if w == (log.Window{}) || svc.cfg.Identity == nil {
		return w, false
	}
	return w, svc.speaks(p, ProtocolNarrow)
}

// speaks reports whether p serves protocol proto, as libp2p's identify
// told us.
func (svc *Service) speaks(p peer.ID, proto protocol.ID) bool {
	protos, err := svc.cfg.Host.Peerstore().SupportsProtocols(p, proto)
	return err == nil && len(protos) > 0
}

// splitOwn splits entries into this node's own and the others, each in
// the order given.
func (svc *Service) splitOwn(entries []*log.Entry) (own, others []*log.Entry) {
	for _, e := range entries {
		if svc.cfg.Identity != nil && e.Header.Author == svc.cfg.Identity.ID() {
			own = append(own, e)
		} else {
			others = append(others, e)
		}
	}
	return own, others
}

// pushSome pushes out to p, with a cover of our head if cover: on a
// narrow link our own entries go on narrow/1 and the others on push/2,
// on a wide link all on push/2 (and there is never a cover to send). It
// returns the entries p now holds in its feed (as far as we know), how
// many entries it sent, and the bytes written.
func (svc *Service) pushSome(ctx context.Context, p peer.ID, out []*log.Entry, cover bool) ([]*log.Entry, int, int64, error) {
	w, narrow := svc.narrowWindow(p)
	if !narrow {
		if len(out) == 0 {
			return nil, 0, 0, nil
		}
		sent, n, err := svc.push(ctx, p, out, svc.relays(out))
		return sent, len(sent), n, err
	}
	own, others := svc.splitOwn(out)
	var held []*log.Entry
	var count int
	var bytes int64
	if len(own) > 0 || cover {
		h, c, n, err := svc.pushNarrow(ctx, p, w, own, cover)
		held, count, bytes = append(held, h...), count+c, bytes+n
		if err != nil {
			return held, count, bytes, err
		}
	}
	if len(others) > 0 {
		sent, n, err := svc.push(ctx, p, others, true)
		held, count, bytes = append(held, sent...), count+len(sent), bytes+n
		if err != nil {
			return held, count, bytes, err
		}
	}
	return held, count, bytes, nil
}

// pushNarrow sends own (our own new entries, in seq order) to p on
// narrow/1. When the window makes a composite due (log.Window.Due), when
// one of them must travel signed (log.TravelsSigned), when what waits at
// p would pass half of log.MaxUnsignedRun bytes, or when cover asks for
// it, they go as stored, the last carrying its composite, which
// covers them and every entry sent before; with nothing to send, a
// cover of the newest entry sent goes alone. Otherwise they go
// provisionally: the last with the Ed25519 half of its composite, the
// others unsigned (the last vouches for them through the chain). It
// returns the entries p now holds in its feed (those covered), how many
// it sent and the bytes written.
func (svc *Service) pushNarrow(ctx context.Context, p peer.ID, w log.Window, own []*log.Entry, cover bool) ([]*log.Entry, int, int64, error) {
	now := time.Now()
	svc.mu.Lock()
	np := svc.narrowLocked(p)
	since := time.Duration(0)
	if np.pending > 0 {
		since = now.Sub(np.oldest)
	}
	due := cover || w.Due(np.pending+len(own), since)
	prev := *np
	svc.mu.Unlock()
	size := 0
	for _, e := range own {
		size += e.Size()
	}
	if prev.bytes+size > log.MaxUnsignedRun/2 {
		// The receiver holds at most log.MaxUnsignedRun bytes of ours
		// waiting: large entries go covered well before that.
		due = true
	}
	for _, e := range own {
		if log.TravelsSigned(e) {
			due = true
		}
	}
	if len(own) > 0 && !own[len(own)-1].Signed() {
		due = true // no composite to split: send as stored
	}
	m := &message{Type: msgNarrow}
	var held []*log.Entry
	switch {
	case due && len(own) > 0:
		for _, e := range own {
			m.Entries = append(m.Entries, e.Bytes())
		}
		held = own
	case due:
		if prev.pending == 0 {
			return nil, 0, 0, nil // nothing waits at p
		}
		e, err := svc.cfg.Store.Get(prev.head.ID)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("sync: cover of %s: %w", prev.head.ID.Short(), err)
		}
		c, err := log.CoverOf(e)
		if err != nil {
			return nil, 0, 0, err
		}
		b, err := c.Encode()
		if err != nil {
			return nil, 0, 0, err
		}
		m.Covers = [][]byte{b}
	default:
		for i, e := range own {
			switch {
			case i == len(own)-1:
				pe, err := e.WithProvisional()
				if err != nil {
					return nil, 0, 0, err
				}
				e = pe
			case e.Signed():
				e = e.Unsigned()
			}
			m.Entries = append(m.Entries, e.Bytes())
		}
	}
	if !due {
		// Recorded before sending, so that a session planned meanwhile
		// does not send the same entries in full.
		last := own[len(own)-1]
		svc.mu.Lock()
		np = svc.narrowLocked(p)
		if np.pending == 0 {
			np.oldest = now
		}
		np.pending += len(own)
		np.bytes += size
		np.head = log.Head{Seq: last.Header.Seq, ID: last.ID(), Lamport: last.Header.Lamport}
		svc.mu.Unlock()
	}
	n, err := svc.sendNarrow(ctx, p, m)
	if err != nil || due {
		// Sent covered: nothing waits at p. Failed: p may lack what we
		// sent; forget it, so that sessions send p whatever it lacks of
		// our feed, covered.
		svc.mu.Lock()
		*svc.narrowLocked(p) = narrowPeer{}
		svc.mu.Unlock()
		svc.signalNarrow()
	}
	return held, len(own), n, err
}

// sendNarrow sends one narrow message to p, on p's narrow/2 stream if p
// speaks it, else on a narrow/1 stream of its own, and waits until p
// stored it, at most the push timeout, as push does.
func (svc *Service) sendNarrow(ctx context.Context, p peer.ID, m *message) (int64, error) {
	if svc.speaks(p, ProtocolNarrow2) {
		return svc.sendOnNarrowStream(ctx, p, m)
	}
	t := svc.timing(p)
	ctx, cancel := context.WithTimeout(ctx, t.SessionTimeout)
	defer cancel()
	s, err := svc.cfg.Host.NewStream(ctx, p, ProtocolNarrow)
	if err != nil {
		return 0, err
	}
	s.SetDeadline(time.Now().Add(t.SessionTimeout))
	c := newConn(s, nil)
	if err := c.send(m); err != nil {
		s.Reset()
		return c.written.n.Load(), err
	}
	switch err := awaitStored(s, c, t.PushTimeout); {
	case errors.Is(err, errUnconfirmed):
		s.Reset()
		return c.written.n.Load(), nil
	case err != nil:
		s.Reset()
		return c.written.n.Load(), err
	}
	return c.written.n.Load(), s.Close()
}

func (svc *Service) narrowLocked(p peer.ID) *narrowPeer {
	np := svc.narrow[p]
	if np == nil {
		np = &narrowPeer{}
		svc.narrow[p] = np
	}
	return np
}

// coverDue queues a cover of our head to every narrow-link peer whose
// window makes one due by time (all, if all), in order with the pushes to
// it; only to connected peers.
func (svc *Service) coverDue(all bool) {
	now := time.Now()
	var due []peer.ID
	svc.mu.Lock()
	for p, np := range svc.narrow {
		if np.pending == 0 {
			continue
		}
		if w := svc.timing(p).Window; all || w.Due(np.pending, now.Sub(np.oldest)) {
			due = append(due, p)
		}
	}
	svc.mu.Unlock()
	for _, p := range due {
		if svc.cfg.Host.Network().Connectedness(p) == network.Connected {
			svc.queueCover(p)
		}
	}
}

// queueCover sends p a cover of our head with the next push to it, or now.
func (svc *Service) queueCover(p peer.ID) {
	svc.mu.Lock()
	step := svc.transfers.queueCover(p)
	svc.mu.Unlock()
	if step == pushStart {
		svc.wg.Add(1)
		go svc.pushAll(p, nil, true)
	}
}

// coverLoop sends covers as the windows make them due.
func (svc *Service) coverLoop() {
	defer svc.wg.Done()
	tick := time.NewTicker(coverCheck)
	defer tick.Stop()
	for {
		select {
		case <-svc.stop:
			return
		case <-tick.C:
			svc.coverDue(false)
		}
	}
}

// coverCheck is how often the windows are looked at: a cover is sent at
// most this late after it is due (T is minutes).
const coverCheck = time.Second

// flushCovers sends, before the service stops, a cover to every
// connected narrow-link peer that holds our entries waiting, and waits
// for them at most the longest push timeout among them: a graceful
// shutdown leaves nothing waiting at a peer it can reach.
func (svc *Service) flushCovers() {
	svc.coverDue(true)
	var wait time.Duration
	svc.mu.Lock()
	for p, np := range svc.narrow {
		if np.pending > 0 {
			wait = max(wait, svc.timing(p).PushTimeout)
		}
	}
	svc.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for svc.owesConnected() {
		select {
		case <-svc.narrowChanged:
		case <-timer.C:
			return
		}
	}
}

// owesConnected reports whether a connected narrow-link peer still holds
// our entries waiting for their cover.
func (svc *Service) owesConnected() bool {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	for p, np := range svc.narrow {
		if np.pending > 0 && svc.cfg.Host.Network().Connectedness(p) == network.Connected {
			return true
		}
	}
	return false
}

// signalNarrow tells flushCovers to look again (never blocks).
func (svc *Service) signalNarrow() {
	select {
	case svc.narrowChanged <- struct{}{}:
	default:
	}
}

// narrowHeld returns theirs, the frontier of narrow-link peer p, with our
// own head raised to the newest entry we sent p provisionally: p holds
// those waiting, and their cover is coming, so sessions must not send
// them again in full (3.4 KB each). If p lost them, the cover fails there
// (it asks us for a session), and once the cover is sent we forget them.
func (svc *Service) narrowHeld(p peer.ID, theirs log.Frontier) log.Frontier {
	if svc.cfg.Identity == nil {
		return theirs
	}
	self := svc.cfg.Identity.ID()
	svc.mu.Lock()
	np := svc.narrow[p]
	var head log.Head
	if np != nil && np.pending > 0 {
		head = np.head
	}
	svc.mu.Unlock()
	if head.Seq == 0 || theirs[self].Seq >= head.Seq {
		return theirs
	}
	out := theirs.Clone()
	out[self] = head
	return out
}

// notWaitingHere drops from theirs, a peer's frontier, the authors whose
// entries up to that head we hold waiting for their composite: the peer
// (their author, on a narrow link) sends the cover, not the entries, so
// a transfer that does not bring them is not short.
func (svc *Service) notWaitingHere(theirs log.Frontier) log.Frontier {
	var out log.Frontier
	for a, h := range theirs {
		if wh, ok := svc.cfg.Store.WaitingHead(a); ok && wh.Seq >= h.Seq {
			if out == nil {
				out = theirs.Clone()
			}
			delete(out, a)
		}
	}
	if out == nil {
		return theirs
	}
	return out
}

// withWaiting raises mine, our frontier, for the authors of heads by the
// entries we hold waiting for their composite: a relay offering them is
// told we hold them, since their author's cover is coming (narrow links:
// otherwise every relay would send each entry again with its 3.4 KB
// signature). Sessions still count the feed only, so a session brings
// them covered if the author never does.
func (svc *Service) withWaiting(mine, heads log.Frontier) log.Frontier {
	out, cloned := mine, false
	for a := range heads {
		if wh, ok := svc.cfg.Store.WaitingHead(a); ok && wh.Seq > mine[a].Seq {
			if !cloned {
				out, cloned = mine.Clone(), true
			}
			out[a] = wh
		}
	}
	return out
}

// handleNarrow serves narrow/1: one message (serveNarrow), ingested and
// applied before the stream closes (which tells the pusher they are
// stored).
func (svc *Service) handleNarrow(s network.Stream) {
	defer s.Close()
	p, _, m, ok := svc.openPush(s, msgNarrow)
	if !ok {
		return
	}
	defer svc.endPush(p)
	svc.serveNarrow(p, s, m)
}

// serveNarrow ingests one narrow message of p: the pusher's own entries
// (with provisional, composite or no signatures), then covers. Anything
// else is an offence (the stream reset). It reports whether all went
// well (false: an offence, or an ingest that failed or asked for a
// session).
func (svc *Service) serveNarrow(p peer.ID, s network.Stream, m *message) bool {
	extra := 0
	for _, c := range m.Covers {
		extra += len(c)
	}
	entries, release, ok := svc.decodePushed(p, s, m.Entries, len(m.Covers), extra)
	if !ok {
		return false
	}
	defer release()
	member, known := svc.memberOf(p)
	for _, e := range entries {
		if !known || e.Header.Author != member {
			svc.offence(p, fmt.Errorf("%w: a narrow push carries the pusher's own entries only, got one of %s", ErrProtocol, e.Header.Author.Short()))
			s.Reset()
			return false
		}
	}
	covers := make([]log.Cover, 0, len(m.Covers))
	for _, raw := range m.Covers {
		c, err := log.DecodeCover(raw)
		if err != nil {
			svc.offence(p, fmt.Errorf("%w: %w", ErrProtocol, err))
			s.Reset()
			return false
		}
		covers = append(covers, c)
	}
	if len(entries) > 0 && !svc.ingestFrom(p, pathPush, entries) {
		return false
	}
	for _, c := range covers {
		res, err := svc.cfg.Store.Cover(context.Background(), c)
		if !svc.judgeIngest(p, pathPush, res, err) {
			return false
		}
	}
	return true
}

// memberOf returns the member whose card names peer p.
func (svc *Service) memberOf(p peer.ID) (crypto.MemberID, bool) {
	for _, m := range svc.cfg.Store.Roster().Members() {
		if m.Card.PeerID() == p {
			return m.Card.ID(), true
		}
	}
	return crypto.MemberID{}, false
}

// ingestFrom ingests entries p pushed and judges the result; it reports
// false if the push ended there (a store error or an offence).
func (svc *Service) ingestFrom(p peer.ID, w path, entries []*log.Entry) bool {
	res, err := svc.cfg.Store.Ingest(context.Background(), entries...)
	return svc.judgeIngest(p, w, res, err)
}

// judgeIngest records what an ingest of p's push did: a store error is
// ours (a full disk pauses sync), a refusal no honest peer causes is p's
// offence, and a refusal an honest peer can cause (we lack predecessors,
// a cover of something we no longer hold waiting) asks p for a session.
// It reports whether all went well.
func (svc *Service) judgeIngest(p peer.ID, w path, res *store.IngestResult, err error) bool {
	if res != nil {
		svc.recordIngest(p, w, res)
	}
	if err != nil {
		if errors.Is(err, store.ErrDiskFull) {
			// Not the pusher's fault; anti-entropy fetches the entries
			// when space is back.
			svc.diskFull() // pause, and say so once
			svc.logger.Debug("pushed entries dropped: this node's disk is full", "peer", p)
			return false
		}
		svc.logger.Warn("ingest of pushed entries failed", "peer", p, "err", err)
		return false
	}
	for _, r := range res.Rejected {
		if !honest(log.ReasonOf(r.Err)) {
			svc.offence(p, r.Err)
			return false
		}
	}
	if len(res.Rejected) > 0 {
		svc.Kick(p) // we lack predecessors: fetch them properly
		return false
	}
	return true
}
