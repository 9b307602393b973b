package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// PeerStats is what this node knows of its exchanges with one peer.
type PeerStats struct {
	Peer           peer.ID
	LastFrontier   log.Frontier // as last seen (nil if never)
	LastFrontierAt time.Time
	LastSync       time.Time // last session that completed
	LastError      string
	LastErrorAt    time.Time
	// LastOffence is the newest misbehaviour scored against the peer: a
	// later connection error does not hide it.
	LastOffence   string
	LastOffenceAt time.Time
	Sessions      int
	Failures      int
	Offences      int
	BytesSent     int64 // by sessions and pushes
	BytesRecv     int64
	EntriesSent   int64
	EntriesRecv   int64 // newly stored from this peer
	Connected     bool
	LastConnected time.Time
}

// Service runs anti-entropy, push and the sync protocol handlers. It is
// safe for concurrent use. Start begins its work, Close ends it.
type Service struct {
	cfg    Config
	logger *slog.Logger

	mu    gosync.Mutex
	peers map[peer.ID]*PeerStats
	// transfers: sessions and pushes in flight, and what they bring.
	transfers *transfers
	// limits: per peer, its entries held in memory, its pushes being
	// served, and its quota's buckets.
	limits map[peer.ID]*peerLimits
	// narrow: per narrow-link peer, our own entries sent there
	// provisionally and not yet covered (narrow.go).
	narrow map[peer.ID]*narrowPeer
	// narrowChanged is signalled when a narrow peer's debt is settled or
	// a peer disconnects: flushCovers waits on it.
	narrowChanged chan struct{}
	// narrowOut and narrowIn: the narrow/2 stream to and from each
	// narrow-link peer (narrowstream.go).
	narrowOut map[peer.ID]*narrowOut
	narrowIn  map[peer.ID]network.Stream
	// announced is closed (and replaced) whenever a transfer is
	// expected: offers waiting for an author's own push look again
	// (authorFirst).
	announced chan struct{}
	// traffic: what went by which path (Traffic).
	traffic Traffic

	// paused is set while this node's disk is full: it asks no peer for
	// entries (it could not store them) until space is back.
	paused atomic.Bool

	stop  chan struct{} // closed by Close
	wg    gosync.WaitGroup
	kick  chan peer.ID
	sub   *store.Subscription
	notif *network.NotifyBundle
}

// New checks cfg (Config.Validate) and returns a Service; call Start.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Service{
		cfg: cfg, logger: cfg.Logger.With("component", "sync"),
		peers: map[peer.ID]*PeerStats{}, transfers: newTransfers(), limits: map[peer.ID]*peerLimits{},
		narrow: map[peer.ID]*narrowPeer{}, narrowChanged: make(chan struct{}, 1),
		narrowOut: map[peer.ID]*narrowOut{}, narrowIn: map[peer.ID]network.Stream{},
		announced: make(chan struct{}),
		kick:      make(chan peer.ID, 64),
	}, nil
}

func (svc *Service) timing(p peer.ID) Timing {
	if svc.cfg.Timing != nil {
		t := svc.cfg.Timing(p)
		if t.ChunkSize > 0 && t.SessionTimeout > 0 {
			if t.PushTimeout <= 0 {
				t.PushTimeout = t.SessionTimeout / 10
			}
			return t
		}
	}
	return DefaultTiming
}

// Start registers the protocol handlers and starts anti-entropy and push.
func (svc *Service) Start() {
	svc.stop = make(chan struct{})
	h := svc.cfg.Host
	h.SetStreamHandler(ProtocolSync, svc.respond)
	h.SetStreamHandler(ProtocolPush, svc.handlePush)
	h.SetStreamHandler(ProtocolPushV1, svc.handlePushV1)
	h.SetStreamHandler(ProtocolNarrow, svc.handleNarrow)
	h.SetStreamHandler(ProtocolNarrow2, svc.handleNarrowStream)
	svc.notif = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			svc.connected(c.RemotePeer(), true)
			svc.coverOnConnect(c.RemotePeer())
			svc.kickOnConnect(c.RemotePeer())
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			if n.Connectedness(c.RemotePeer()) != network.Connected {
				svc.connected(c.RemotePeer(), false)
			}
		},
	}
	h.Network().Notify(svc.notif)
	svc.sub = svc.cfg.Store.Subscribe(256)
	svc.wg.Add(3)
	go svc.antiEntropy()
	go svc.pushLoop()
	go svc.coverLoop()
	for _, p := range h.Network().Peers() {
		svc.connected(p, true)
		svc.kickOnConnect(p)
	}
}

// kickOnConnect starts a session with a newly connected peer, from one
// side only (the lower peer ID): if both sides started one, both would
// send the whole backlog. The other side's periodic rounds cover a session
// that fails.
func (svc *Service) kickOnConnect(p peer.ID) {
	if svc.cfg.Host.ID() < p {
		svc.Kick(p)
	}
}

// coverOnConnect sends a peer that reconnects the cover of what it holds
// of ours waiting, if anything, before any entry (narrow links).
func (svc *Service) coverOnConnect(p peer.ID) {
	svc.mu.Lock()
	np := svc.narrow[p]
	owed := np != nil && np.pending > 0
	svc.mu.Unlock()
	if owed {
		svc.queueCover(p)
	}
}

// Close stops every goroutine of the service and removes its handlers.
// First it sends the covers narrow-link peers are owed (flushCovers).
func (svc *Service) Close() {
	if svc.stop == nil {
		return
	}
	svc.flushCovers()
	h := svc.cfg.Host
	h.RemoveStreamHandler(ProtocolSync)
	h.RemoveStreamHandler(ProtocolPush)
	h.RemoveStreamHandler(ProtocolPushV1)
	h.RemoveStreamHandler(ProtocolNarrow)
	h.RemoveStreamHandler(ProtocolNarrow2)
	svc.closeNarrowStreams()
	h.Network().StopNotify(svc.notif)
	close(svc.stop)
	svc.sub.Close()
	svc.wg.Wait()
	svc.closeNarrowStreams() // any a push opened meanwhile
	svc.stop = nil
}

// opCtx returns a context for one operation of a goroutine the service
// owns: it ends when the service closes.
func (svc *Service) opCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := svc.stop
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (svc *Service) stopping() bool {
	select {
	case <-svc.stop:
		return true
	default:
		return false
	}
}

// Kick asks for an anti-entropy session with p soon.
func (svc *Service) Kick(p peer.ID) {
	select {
	case svc.kick <- p:
	default:
	}
}

// diskRecheck is how often a node whose disk is full looks whether space
// is back (at most every sync interval).
const diskRecheck = time.Second

func (svc *Service) antiEntropy() {
	defer svc.wg.Done()
	tick := time.NewTicker(svc.cfg.Interval)
	defer tick.Stop()
	recheck := time.NewTicker(min(diskRecheck, svc.cfg.Interval))
	defer recheck.Stop()
	for {
		select {
		case <-svc.stop:
			return
		case p := <-svc.kick:
			if !svc.diskFull() {
				svc.goSession(p)
			}
		case <-tick.C:
			if !svc.diskFull() {
				svc.roundWithRandomPeer()
			}
		case <-recheck.C:
			if svc.paused.Load() {
				svc.diskFull()
			}
		}
	}
}

// diskFull measures whether this node's disk is full. While it is, the
// service starts no session and refuses those peers start: it could store
// nothing they send, and a peer is not to blame for our disk. When space
// is back it starts a session with every connected peer to catch up.
func (svc *Service) diskFull() bool {
	err := svc.cfg.Store.CheckDisk()
	full := err != nil
	switch was := svc.paused.Swap(full); {
	case full && !was:
		svc.logger.Warn("sync paused: this node's disk is full; it asks no peer for entries until space is freed", "err", err)
	case !full && was:
		svc.logger.Info("sync resumed: disk space is back")
		for _, p := range svc.cfg.Host.Network().Peers() {
			svc.Kick(p)
		}
	}
	return full
}

// roundWithRandomPeer runs one session with a random connected peer, and
// tries the others in random order while sessions fail.
func (svc *Service) roundWithRandomPeer() {
	peers := svc.cfg.Host.Network().Peers()
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	svc.wg.Add(1)
	go func() {
		defer svc.wg.Done()
		ctx, cancel := svc.opCtx()
		defer cancel()
		for _, p := range peers {
			if svc.stopping() {
				return
			}
			if _, err := svc.session(ctx, p, false, false); err == nil || errors.Is(err, errBusy) || errors.Is(err, store.ErrDiskFull) {
				return
			}
		}
	}()
}

// goSession runs a kicked session with p. If p turns it away busy (its
// side of a session a partition cut may still be ending), it asks again
// after a short, growing delay, a few times, rather than waiting for the
// next periodic round.
func (svc *Service) goSession(p peer.ID) {
	svc.wg.Add(1)
	go func() {
		defer svc.wg.Done()
		delay := busyRetry
		for attempt := 1; ; attempt++ {
			ctx, cancel := svc.opCtx()
			_, err := svc.session(ctx, p, false, true)
			cancel()
			if !errors.Is(err, errPeerBusy) || attempt >= busyRetries {
				return
			}
			select {
			case <-svc.stop:
				return
			case <-time.After(delay):
			}
			delay *= 2
		}
	}()
}

// A kicked session the peer turns away busy is asked for again
// busyRetries times, after busyRetry, then twice as long each time.
const (
	busyRetry   = 100 * time.Millisecond
	busyRetries = 6
)

var errBusy = errors.New("sync: a session with this peer is already running")

// errPeerBusy is errBusy said by the peer (its side is still in a session
// with this node).
var errPeerBusy = fmt.Errorf("%w (on the peer's side)", errBusy)

// initiating reports whether this node runs a session it started with p.
func (svc *Service) initiating(p peer.ID) bool {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.transfers.initiating(p)
}

// SyncWith runs one anti-entropy session with p now and reports it.
func (svc *Service) SyncWith(ctx context.Context, p peer.ID) (Report, error) {
	return svc.session(ctx, p, false, false)
}

// ForceResync runs a full session with p, skipping the digest shortcut:
// frontiers are exchanged and everything either side lacks is sent.
func (svc *Service) ForceResync(ctx context.Context, p peer.ID) (Report, error) {
	return svc.session(ctx, p, true, false)
}

// session runs one session with p. A kicked session (kicked) that finds
// one already running is asked for again when that one ends: a kick on a
// reconnect after a partition must not be lost because the old session was
// still winding down.
func (svc *Service) session(ctx context.Context, p peer.ID, force, kicked bool) (Report, error) {
	if err := svc.cfg.Store.CheckDisk(); err != nil {
		svc.diskFull() // pause, and log it once
		return Report{Peer: p}, fmt.Errorf("sync: not syncing with %s: %w", p, err)
	}
	svc.mu.Lock()
	started := svc.transfers.startSession(p, kicked)
	svc.mu.Unlock()
	if !started {
		return Report{Peer: p}, errBusy
	}
	defer func() {
		svc.mu.Lock()
		again := svc.transfers.endSession(p)
		svc.mu.Unlock()
		if again {
			svc.Kick(p)
		}
	}()
	rep, err := svc.initiateWith(ctx, p, force, force || kicked)
	svc.finished(rep, pathSessionStarted, err)
	return rep, err
}

// finished records the outcome of a session (on path w: started or
// served).
func (svc *Service) finished(rep Report, w path, err error) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	t := svc.pathLocked(w)
	t.BytesSent += rep.BytesSent
	t.EntriesSent += int64(rep.EntriesSent)
	ps := svc.statsLocked(rep.Peer)
	ps.Sessions++
	ps.BytesSent += rep.BytesSent
	ps.BytesRecv += rep.BytesRecv
	ps.EntriesSent += int64(rep.EntriesSent)
	if errors.Is(err, errBusy) {
		return // the other side is already syncing with us: not a failure
	}
	if errors.Is(err, store.ErrDiskFull) {
		// Our disk, not the peer's fault: not a failure of the link.
		svc.logger.Debug("session ended: this node's disk is full", "peer", rep.Peer)
		return
	}
	if err != nil {
		ps.Failures++
		ps.LastError, ps.LastErrorAt = err.Error(), time.Now()
		svc.logger.Debug("session failed", "peer", rep.Peer, "err", err)
		return
	}
	ps.LastSync = time.Now()
	if rep.EntriesRecv > 0 || rep.EntriesSent > 0 {
		svc.logger.Info("synced", "peer", rep.Peer, "received", rep.EntriesRecv, "sent", rep.EntriesSent, "took", rep.Duration)
	}
}

func (svc *Service) statsLocked(p peer.ID) *PeerStats {
	ps, ok := svc.peers[p]
	if !ok {
		ps = &PeerStats{Peer: p}
		svc.peers[p] = ps
	}
	return ps
}

func (svc *Service) connected(p peer.ID, up bool) {
	if !up {
		defer svc.signalNarrow()
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	ps := svc.statsLocked(p)
	if ps.Connected && !up {
		ps.LastConnected = time.Now()
	}
	ps.Connected = up
	if up {
		ps.LastConnected = time.Now()
	}
}

func (svc *Service) sawFrontier(p peer.ID, f log.Frontier) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	ps := svc.statsLocked(p)
	ps.LastFrontier, ps.LastFrontierAt = f.Clone(), time.Now()
}

// raiseFrontier raises what we know p holds by f (a partial frontier,
// such as the answer to an offer), keeping what we know of other authors.
func (svc *Service) raiseFrontier(p peer.ID, f log.Frontier) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	ps := svc.statsLocked(p)
	raiseLocked(ps, f)
	ps.LastFrontierAt = time.Now()
}

// raiseLocked raises what ps says its peer holds by f, author by author.
func raiseLocked(ps *PeerStats, f log.Frontier) {
	if ps.LastFrontier == nil {
		ps.LastFrontier = log.Frontier{}
	}
	for a, h := range f {
		if h.Seq > ps.LastFrontier[a].Seq {
			ps.LastFrontier[a] = h
		}
	}
}

// peerHolds records that p now holds the entries up to these heads (after
// a completed session in which we sent them).
func (svc *Service) peerHolds(p peer.ID, heads map[log.Hash]*log.Entry) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	ps := svc.statsLocked(p)
	if ps.LastFrontier == nil {
		ps.LastFrontier = log.Frontier{}
	}
	for _, e := range heads {
		if h := ps.LastFrontier[e.Header.Author]; e.Header.Seq > h.Seq {
			ps.LastFrontier[e.Header.Author] = log.Head{Seq: e.Header.Seq, ID: e.ID(), Lamport: e.Header.Lamport}
		}
	}
	ps.LastFrontierAt = time.Now()
}

func (svc *Service) recordIngest(p peer.ID, w path, res *store.IngestResult) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	t := svc.pathLocked(w)
	t.EntriesRecv += int64(len(res.Added))
	t.Duplicates += int64(res.Duplicates)
	t.Refused += int64(len(res.Rejected))
	ps := svc.statsLocked(p)
	ps.EntriesRecv += int64(len(res.Added))
	raiseLocked(ps, headsOf(res.Added)) // what p sent, p holds
	for _, f := range res.Forks {
		svc.logger.Error("fork found", "peer", p, "author", f.Author.Short(), "seq", f.Seq)
	}
}

// offence counts misbehaviour by p, and disconnects p after MaxOffences.
func (svc *Service) offence(p peer.ID, err error) {
	svc.mu.Lock()
	ps := svc.statsLocked(p)
	ps.Offences++
	ps.LastError, ps.LastErrorAt = err.Error(), time.Now()
	ps.LastOffence, ps.LastOffenceAt = ps.LastError, ps.LastErrorAt
	n := ps.Offences
	svc.mu.Unlock()
	svc.logger.Warn("peer misbehaved", "peer", p, "offences", n, "err", err)
	if n >= svc.cfg.MaxOffences {
		svc.cfg.Host.Network().ClosePeer(p)
		if svc.cfg.OnMisbehave != nil {
			svc.cfg.OnMisbehave(p, err.Error())
		}
	}
}

// Peers returns what this node knows of every peer it exchanged with.
func (svc *Service) Peers() []PeerStats {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	out := make([]PeerStats, 0, len(svc.peers))
	for _, ps := range svc.peers {
		c := *ps
		if ps.LastFrontier != nil {
			c.LastFrontier = ps.LastFrontier.Clone()
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b PeerStats) int { return compareStrings(string(a.Peer), string(b.Peer)) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Holder says whether one member holds an entry, as far as this node
// knows, and why not.
type Holder struct {
	Member   string
	MemberID crypto.MemberID
	Peer     peer.ID
	Has      bool
	AsOf     time.Time // when we last saw the member's frontier
	Why      string    // for Has == false: a reason a person can act on
	CanRead  bool      // the member holds the entry's key (or it is plain)
}

// WhoHas answers "who has entry E, and why has member X not got it" from
// the frontiers last seen from each peer.
func (svc *Service) WhoHas(id log.Hash) ([]Holder, error) {
	st := svc.cfg.Store
	e, err := st.Get(id)
	if err != nil {
		return nil, err
	}
	var readers []crypto.MemberID
	if !e.Header.Plain() {
		readers = st.KeyRecipients(e.Header.KeyID)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	var out []Holder
	for _, m := range st.Roster().Members() {
		if m.Revoked {
			continue
		}
		h := Holder{Member: m.Card.Name(), MemberID: m.Card.ID(), Peer: m.Card.PeerID()}
		h.CanRead = e.Header.Plain() || slices.Contains(readers, h.MemberID)
		if h.MemberID == e.Header.Author {
			h.Has, h.Why = true, "author"
			out = append(out, h)
			continue
		}
		if svc.cfg.Identity != nil && h.MemberID == svc.cfg.Identity.ID() {
			h.Has, h.Why = true, "this node"
			out = append(out, h)
			continue
		}
		ps := svc.peers[h.Peer]
		switch {
		case ps == nil || ps.LastFrontier == nil:
			h.Why = "never synced with this node"
		case ps.LastFrontier[e.Header.Author].Seq >= e.Header.Seq:
			h.Has, h.AsOf = true, ps.LastFrontierAt
		case !ps.Connected && !ps.LastConnected.IsZero():
			h.AsOf = ps.LastFrontierAt
			h.Why = "not connected since " + ps.LastConnected.UTC().Format(time.RFC3339)
		case !ps.Connected:
			h.Why = "never connected"
		default:
			h.AsOf = ps.LastFrontierAt
			h.Why = "connected; not yet synced past it"
		}
		if !h.CanRead {
			h.Why += "; not a recipient of its key: stores and forwards it, cannot read it"
		}
		out = append(out, h)
	}
	return out, nil
}
