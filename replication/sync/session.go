package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// Receiver batching: entries are ingested (durably) every batchEntries
// entries or batchBytes bytes, and at the end of a session.
const (
	batchEntries = 512
	batchBytes   = 4 << 20
	// maxCarry bounds the number of unsigned entries held back waiting
	// for the signed entry that vouches for them (each batch checks them
	// again); Config.MaxPeerBuffer bounds their bytes.
	maxCarry = 20000
)

// busyMessage answers a session the responder turns away because it is
// already syncing with the same peer.
const busyMessage = "busy: a session with you is running"

// diskFullMessage answers a session the responder turns away because its
// disk is full (it names no local path: it goes to the peer).
const diskFullMessage = "disk full: this node stores no entries until its operator frees space; it syncs again by itself then"

// ErrStalled reports a session the watchdog aborted for lack of progress.
var ErrStalled = errors.New("sync: session stalled")

// ErrOffence reports a peer that sent something no honest peer sends.
var ErrOffence = errors.New("sync: peer misbehaved")

// A Report says what one session did.
type Report struct {
	Peer         peer.ID
	Equal        bool // digests were equal: nothing to exchange
	EntriesSent  int
	EntriesRecv  int // newly stored
	BytesSent    int64
	BytesRecv    int64
	Duration     time.Duration
	RoundTripsTo int // round trips before the first entry went out (initiator)
}

type session struct {
	svc      *Service
	id       transferID
	peer     peer.ID
	stream   network.Stream
	c        *conn
	timing   Timing
	progress atomic.Int64 // unix nanos of the last byte moved
	stalled  atomic.Bool
	sent     int
	recv     int
	lastSent map[log.Hash]*log.Entry // per author (keyed by author), the last entry sent; writer goroutine only
	// advertised is the frontier we sent the peer: what it will send
	// beyond.
	advertised log.Frontier
	path       path  // pathSessionStarted or pathSessionServed
	held       int64 // bytes of the peer's entries this session holds (see Service.hold); reader goroutine only
	carried    int   // of which unsigned entries carried to the next batch
}

func (svc *Service) newSession(s network.Stream) *session {
	sess := &session{svc: svc, id: svc.newTransfer(), peer: s.Conn().RemotePeer(), stream: s, timing: svc.timing(s.Conn().RemotePeer())}
	sess.touch()
	sess.c = newConn(s, sess.touch)
	return sess
}

// next reads the next message; a malformed or oversized one is an offence.
func (sess *session) next() (*message, error) {
	m, err := sess.c.recv()
	if err != nil && isProtocol(err) {
		return nil, sess.offence(err)
	}
	return m, err
}

func (sess *session) touch() { sess.progress.Store(time.Now().UnixNano()) }

// watch resets the stream when nothing moved for the session timeout; it
// returns a function that stops watching.
func (sess *session) watch() func() {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(sess.timing.SessionTimeout/8, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if time.Since(time.Unix(0, sess.progress.Load())) > sess.timing.SessionTimeout {
					sess.stalled.Store(true)
					sess.stream.Reset()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

func (sess *session) fail(err error) error {
	if sess.stalled.Load() {
		return fmt.Errorf("%w: no progress with %s for %s", ErrStalled, sess.peer, sess.timing.SessionTimeout)
	}
	return err
}

func (sess *session) report(start time.Time) Report {
	return Report{
		Peer: sess.peer, EntriesSent: sess.sent, EntriesRecv: sess.recv,
		BytesSent: sess.c.written.n.Load(), BytesRecv: sess.c.read.n.Load(), Duration: time.Since(start),
	}
}

// initiate runs a session as initiator on a fresh stream; a forced one
// announces our frontier in its hello (see announce).
func (svc *Service) initiate(ctx context.Context, p peer.ID, force bool) (Report, error) {
	return svc.initiateWith(ctx, p, force, force)
}

// initiateWith runs a session as initiator on a fresh stream. With
// announce, the hello carries our frontier: a session we expect to find
// a difference (a kick: a new or returning peer, a transfer that ended
// short) lets the responder claim at once what we are about to send it,
// before it tells anyone else what it holds (see transfers.claimSession).
// Periodic rounds, which mostly find equal digests, keep their hello
// small.
func (svc *Service) initiateWith(ctx context.Context, p peer.ID, force, announce bool) (Report, error) {
	start := time.Now()
	s, err := svc.cfg.Host.NewStream(ctx, p, ProtocolSync)
	if err != nil {
		return Report{Peer: p}, fmt.Errorf("sync: open stream to %s: %w", p, err)
	}
	sess := svc.newSession(s)
	sess.path = pathSessionStarted
	stop := sess.watch()
	defer stop()
	rep, err := sess.initiate(force, announce)
	rep.Duration = time.Since(start)
	if err != nil {
		s.Reset()
		return rep, sess.fail(err)
	}
	s.Close()
	return rep, nil
}

func (sess *session) initiate(force, announce bool) (Report, error) {
	st := sess.svc.cfg.Store
	net := st.Network()
	mine, digest := st.FrontierDigest()
	hello := &message{Type: msgHello, Network: net[:8], Digest: digest[:], Force: force}
	if announce {
		hello.Frontier = encodeFrontier(mine)
	}
	if err := sess.c.send(hello); err != nil {
		return sess.report(time.Now()), err
	}
	m, err := sess.next()
	if err != nil {
		return sess.report(time.Now()), err
	}
	switch m.Type {
	case msgEqual:
		// Equal digests: the peer holds what we held when we said hello
		// (an entry may have reached it through a third node).
		sess.svc.sawFrontier(sess.peer, mine)
		rep := sess.report(time.Now())
		rep.Equal = true
		return rep, nil
	case msgError:
		if m.Error == busyMessage {
			return sess.report(time.Now()), errPeerBusy
		}
		return sess.report(time.Now()), fmt.Errorf("sync: %s refused: %s", sess.peer, m.Error)
	case msgFrontier:
	default:
		return sess.report(time.Now()), sess.offence(fmt.Errorf("%w: expected frontier, got message %d", ErrProtocol, m.Type))
	}
	theirs, err := decodeFrontier(m.Frontier)
	if err != nil {
		return sess.report(time.Now()), sess.offence(err)
	}
	sess.svc.membersOnly(theirs)
	sess.svc.sawFrontier(sess.peer, theirs)
	err = sess.exchange(theirs, true)
	rep := sess.report(time.Now())
	rep.RoundTripsTo = 1
	return rep, err
}

// respond runs a session as responder on an incoming stream.
func (svc *Service) respond(s network.Stream) {
	start := time.Now()
	sess := svc.newSession(s)
	sess.path = pathSessionServed
	stop := sess.watch()
	defer stop()
	err := sess.respond()
	rep := sess.report(start)
	switch {
	case errors.Is(err, store.ErrDiskFull):
		s.Close() // let the peer read why (the exchange, if any, reset it already)
	case err != nil:
		s.Reset()
		err = sess.fail(err)
	default:
		s.Close()
	}
	svc.finished(rep, pathSessionServed, err)
}

func (sess *session) respond() error {
	st := sess.svc.cfg.Store
	m, err := sess.next()
	if err != nil {
		return err
	}
	if m.Type != msgHello {
		return sess.offence(fmt.Errorf("%w: expected hello, got message %d", ErrProtocol, m.Type))
	}
	// One session a peer started at a time: an honest peer runs one with
	// us (see Service.session); more would only multiply what it makes us
	// hold and do.
	if !sess.svc.startResponding(sess.peer) {
		return sess.c.send(&message{Type: msgError, Error: busyMessage})
	}
	defer sess.svc.endResponding(sess.peer)
	if err := st.CheckDisk(); err != nil {
		// We could store nothing the peer sends: turn it away, without
		// blaming it. It tries another peer; we ask when space is back.
		sess.svc.diskFull()
		sess.c.send(&message{Type: msgError, Error: diskFullMessage})
		return fmt.Errorf("sync: turned %s away: %w", sess.peer, err)
	}
	// Both sides may start a session at once (periodic rounds); two
	// sessions would both send the whole backlog. The side with the lower
	// peer ID keeps its own and turns the other away.
	if sess.svc.initiating(sess.peer) && sess.svc.cfg.Host.ID() < sess.peer {
		return sess.c.send(&message{Type: msgError, Error: busyMessage})
	}
	net := st.Network()
	if !bytes.Equal(m.Network, net[:8]) {
		sess.c.send(&message{Type: msgError, Error: "another network"})
		return sess.offence(fmt.Errorf("%w: peer is on network %x…", ErrOffence, m.Network))
	}
	mine, digest := st.FrontierDigest()
	if !m.Force && bytes.Equal(m.Digest, digest[:]) {
		// The peer holds exactly what we hold (see initiate).
		sess.svc.sawFrontier(sess.peer, mine)
		return sess.c.send(&message{Type: msgEqual})
	}
	// An initiator that announced its frontier in the hello (a newer
	// one) is about to send us what it holds beyond ours: claim it now,
	// in the same step as we work out what we tell it, so that no other
	// session or offer brings the same entries. Without it we learn what
	// it brings only a round trip later (expect, in exchange), and every
	// session that arrives meanwhile would bring them too.
	announced := m.Frontier != nil
	if announced {
		theirs, err := decodeFrontier(m.Frontier)
		if err != nil {
			return sess.offence(err)
		}
		sess.svc.membersOnly(theirs)
		sess.advertised = sess.svc.claimSession(sess.id, sess.peer, theirs)
		// However the session ends: a claim left behind would have us
		// tell every peer we are receiving these entries, for ever.
		defer sess.svc.finish(sess.id)
	} else {
		sess.advertised = sess.svc.advertised(sess.id, sess.peer)
	}
	if err := sess.c.send(&message{Type: msgFrontier, Frontier: encodeFrontier(sess.advertised)}); err != nil {
		return err
	}
	m, err = sess.next()
	if err != nil {
		return err
	}
	if m.Type != msgFrontier {
		return sess.offence(fmt.Errorf("%w: expected frontier, got message %d", ErrProtocol, m.Type))
	}
	theirs, err := decodeFrontier(m.Frontier)
	if err != nil {
		return sess.offence(err)
	}
	sess.svc.membersOnly(theirs)
	sess.svc.sawFrontier(sess.peer, theirs)
	if !announced {
		sess.svc.expect(sess.id, theirs, sess.advertised)
	}
	return sess.exchange(theirs, false)
}

// exchange sends what the peer lacks while receiving what we lack. The
// initiator first works out and sends its frontier, and claims what the
// responder is about to send in the same step (the responder did so
// before, see respond).
func (sess *session) exchange(theirs log.Frontier, initiator bool) error {
	if initiator {
		sess.advertised = sess.svc.claimSession(sess.id, sess.peer, theirs)
	}
	defer sess.svc.finish(sess.id)
	errc := make(chan error, 1)
	go func() {
		if initiator {
			if err := sess.c.send(&message{Type: msgFrontier, Frontier: encodeFrontier(sess.advertised)}); err != nil {
				errc <- err
				return
			}
		}
		errc <- sess.sendMissing(theirs)
	}()
	rerr := sess.receive()
	if rerr != nil {
		sess.stream.Reset() // unblock the sender
		<-errc
		return rerr
	}
	if err := <-errc; err != nil {
		return err
	}
	sess.svc.peerHolds(sess.peer, sess.lastSent)
	return nil
}

// sendMissing streams what theirs lacks, evidence first, then in passes of
// falling priority, and ends with end.
func (sess *session) sendMissing(theirs log.Frontier) error {
	st := sess.svc.cfg.Store
	plans, evidence, err := plan(st, sess.svc.narrowHeld(sess.peer, theirs))
	if err != nil {
		return err
	}
	out := newBatcher(sess)
	for _, e := range evidence {
		if err := out.add(e); err != nil {
			return err
		}
	}
	sent := make([]uint64, len(plans))
	for i, p := range plans {
		sent[i] = p.from
	}
	for c := range numClasses {
		for i, p := range plans {
			for sent[i] < p.cut[c] {
				es, err := st.Feed(p.author, sent[i], 256)
				if err != nil {
					return err
				}
				if len(es) == 0 {
					return fmt.Errorf("sync: own feed of %s ends at %d, expected %d", p.author.Short(), sent[i], p.cut[c])
				}
				for _, e := range es {
					if e.Header.Seq > p.cut[c] {
						break
					}
					if err := out.add(e); err != nil {
						return err
					}
					sent[i] = e.Header.Seq
				}
			}
		}
	}
	if err := out.flush(); err != nil {
		return err
	}
	return sess.c.send(&message{Type: msgEnd})
}

// batcher packs entries into messages of about the chunk size.
type batcher struct {
	sess  *session
	buf   [][]byte
	bytes int
}

func newBatcher(sess *session) *batcher { return &batcher{sess: sess} }

func (b *batcher) add(e *log.Entry) error {
	if b.bytes > 0 && b.bytes+e.Size() > b.sess.timing.ChunkSize {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.buf = append(b.buf, e.Bytes())
	b.bytes += e.Size()
	if b.sess.lastSent == nil {
		b.sess.lastSent = map[log.Hash]*log.Entry{}
	}
	b.sess.lastSent[log.Hash(e.Header.Author)] = e
	return nil
}

func (b *batcher) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	err := b.sess.c.send(&message{Type: msgEntries, Entries: b.buf})
	b.sess.sent += len(b.buf)
	b.buf, b.bytes = nil, 0
	return err
}

// receive ingests entries until end. What it holds of the peer's entries
// (the batch not yet stored, unsigned entries carried to the next batch)
// counts against the peer's budget; the peer's quota paces it.
func (sess *session) receive() error {
	defer sess.setHeld(0)
	var pending []*log.Entry
	size := 0
	for {
		m, err := sess.next()
		if err != nil {
			return err
		}
		switch m.Type {
		case msgEntries:
			sess.pace(m.Entries)
			var cost int64
			for _, raw := range m.Entries {
				e, err := log.Decode(raw)
				if err != nil {
					return sess.offence(fmt.Errorf("%w: undecodable entry: %v", ErrOffence, err))
				}
				pending = append(pending, e)
				size += e.Size()
				cost += heldCost(e)
			}
			what := fmt.Sprintf("a session holding %d entries not yet stored (%d of them unsigned, with no signed successor yet)", len(pending), sess.carried)
			if err := sess.hold(cost, what); err != nil {
				return sess.offence(err)
			}
			if len(pending) >= batchEntries || size >= batchBytes {
				if pending, err = sess.ingest(pending); err != nil {
					return err
				}
				size = 0
			}
		case msgEnd:
			_, err := sess.ingest(pending)
			return err
		case msgError:
			return fmt.Errorf("sync: %s: %s", sess.peer, m.Error)
		default:
			return sess.offence(fmt.Errorf("%w: unexpected message %d", ErrProtocol, m.Type))
		}
	}
}

// pace takes a message of entries from the peer's quota and waits, if
// the quota is spent, until it is earned: libp2p's flow control holds the
// sender meanwhile. The peer is not blamed: we asked for the entries. The
// wait is at most one message's worth of the quota (the debt of the
// message before was paid by waiting).
func (sess *session) pace(entries [][]byte) {
	size := 0
	for _, raw := range entries {
		size += len(raw)
	}
	if wait, _ := sess.svc.take(sess.peer, len(entries), size, true); wait > 0 {
		time.Sleep(wait)
		sess.touch() // waiting for the quota is not a stall
	}
}

// hold adds delta bytes to what the session holds of the peer's entries;
// see Service.hold.
func (sess *session) hold(delta int64, what string) error {
	if err := sess.svc.hold(sess.peer, delta, what); err != nil {
		return err
	}
	sess.held += delta
	return nil
}

// setHeld sets what the session holds to n bytes, n at most what it
// holds already.
func (sess *session) setHeld(n int64) {
	sess.svc.hold(sess.peer, n-sess.held, "")
	sess.held = n
}

// ingest stores pending and returns the entries to carry to the next
// batch: unsigned entries waiting for the signed one that vouches for
// them. They stay counted against the peer's budget.
func (sess *session) ingest(pending []*log.Entry) ([]*log.Entry, error) {
	if len(pending) == 0 {
		return nil, nil
	}
	added, carry, err := sess.svc.ingest(sess.peer, sess.path, pending)
	sess.recv += added
	if err != nil {
		return nil, err
	}
	if len(carry) > maxCarry {
		return nil, sess.offence(fmt.Errorf("%w: %d unsigned entries without a signed successor", ErrOffence, len(carry)))
	}
	var cost int64
	for _, e := range carry {
		cost += heldCost(e)
	}
	sess.setHeld(cost)
	sess.carried = len(carry)
	return carry, nil
}

// offence records misbehaviour of the session's peer and returns err.
func (sess *session) offence(err error) error {
	sess.svc.offence(sess.peer, err)
	return err
}

// honest reports whether an honest (if out-of-date) peer can cause the
// refusal: gaps, duplicates, revoked authors it has not heard of, forks.
func honest(r log.Reason) bool {
	switch r {
	case log.ReasonGap, log.ReasonDuplicateSeq, log.ReasonBadPrev, log.ReasonRevokedAuthor,
		log.ReasonUnknownAuthor, log.ReasonForked, log.ReasonUnsignedTail, log.ReasonLamport, "":
		return true
	}
	return false
}

// ingest stores entries from p. It returns how many were added, the
// unsigned tail to retry with the next batch, and an offence error if p
// sent something invalid. A store error (a full disk: store.ErrDiskFull)
// is returned as it is: it is this node's trouble, never p's offence.
func (svc *Service) ingest(p peer.ID, w path, entries []*log.Entry) (int, []*log.Entry, error) {
	res, err := svc.cfg.Store.Ingest(context.Background(), entries...)
	if err != nil {
		added := 0
		if res != nil {
			svc.recordIngest(p, w, res) // what was stored before the error
			added = len(res.Added)
		}
		if errors.Is(err, store.ErrDiskFull) {
			svc.diskFull() // pause, and say so once
		}
		return added, nil, err
	}
	byID := make(map[log.Hash]*log.Entry, len(entries))
	for _, e := range entries {
		byID[e.ID()] = e
	}
	var carry []*log.Entry
	var bad error
	for _, r := range res.Rejected {
		reason := log.ReasonOf(r.Err)
		switch {
		case reason == log.ReasonUnsignedTail:
			carry = append(carry, byID[r.ID])
		case !honest(reason) && bad == nil:
			bad = fmt.Errorf("%w: entry %s/%d: %v", ErrOffence, r.Author.Short(), r.Seq, r.Err)
		}
	}
	svc.recordIngest(p, w, res)
	if bad != nil {
		svc.offence(p, bad)
		return len(res.Added), nil, bad
	}
	return len(res.Added), carry, nil
}

// The Service's side of transfers (transfers.go): each call reads what
// the store holds, then takes the mutex.

// newTransfer returns the ID of a new session or push.
func (svc *Service) newTransfer() transferID {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.transfers.newID()
}

// expect records the heads the peer of transfer id is about to send us
// (theirs), beyond what we told it we hold (advertised; nil: what we
// store); see transfers.expect.
func (svc *Service) expect(id transferID, theirs, advertised log.Frontier) {
	theirs = svc.notWaitingHere(theirs)
	mine := svc.cfg.Store.Frontier()
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.transfers.expect(id, mine, theirs, advertised)
	svc.announceLocked()
}

// announceLocked wakes the offers waiting for an author's own push
// (authorFirst): a transfer was just expected.
func (svc *Service) announceLocked() {
	close(svc.announced)
	svc.announced = make(chan struct{})
}

// finish forgets transfer id when it ends; if it ended short, the peers
// we told we held its entries are asked for a session again.
func (svc *Service) finish(id transferID) {
	mine := svc.cfg.Store.Frontier()
	svc.mu.Lock()
	ask := svc.transfers.finish(id, mine)
	svc.mu.Unlock()
	for _, p := range ask {
		svc.Kick(p)
	}
}

// advertised is the frontier we tell peer to (in transfer id) we hold:
// what we store, plus what other running sessions and pushes are bringing
// us right now; see transfers.advertise.
func (svc *Service) advertised(id transferID, to peer.ID) log.Frontier {
	mine := svc.cfg.Store.Frontier()
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.transfers.advertise(id, to, mine)
}

// claimSession works out the frontier we tell peer to in session id and
// records what it is about to send us, in one step; see
// transfers.claimSession.
func (svc *Service) claimSession(id transferID, to peer.ID, theirs log.Frontier) log.Frontier {
	theirs = svc.notWaitingHere(theirs)
	mine := svc.cfg.Store.Frontier()
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.transfers.claimSession(id, to, mine, theirs)
}

// claim answers an offer of entries up to heads from peer from (push
// id); see transfers.claim.
func (svc *Service) claim(id transferID, from peer.ID, heads log.Frontier) log.Frontier {
	mine := svc.withWaiting(svc.cfg.Store.Frontier(), heads)
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.transfers.claim(id, from, mine, heads)
}
