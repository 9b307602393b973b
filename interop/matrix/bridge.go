package matrix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Node is what the bridge needs of the node it runs in. Package node
// implements it; tests may fake it.
type Node interface {
	// After returns up to limit entries not yet handled at pos, in
	// display order; each author's entries follow on from pos.
	After(pos Position, limit int) ([]Entry, error)
	// PostBridged writes a message entry authored by this node's member,
	// marked as bridged from, and returns its ID once it is durable.
	PostBridged(ctx context.Context, text string, tlp log.TLP, from log.Bridged) (string, error)
	// Crisis is the local view of the crisis state, as lines for people.
	Crisis() string
	// ReserveAlerts are the Reserve alerts of the local crisis view now.
	ReserveAlerts() []Alert
}

// errKeyMissing reports an encrypted event whose room key has not
// arrived (yet).
var errKeyMissing = errors.New("matrix: the room key of an encrypted message has not arrived")

// errUndecryptable reports an encrypted event that no key will ever
// decrypt (corrupt, replayed, meant for another room, older than the key
// shared with the bridge): it is skipped, loudly.
var errUndecryptable = errors.New("matrix: an encrypted message cannot be decrypted")

// maxKeyWait is how long a message waits for its room key before it is
// skipped (loudly). Time the homeserver is unreachable counts too, but an
// outage never makes the bridge skip a message: the key is fetched again
// once the homeserver answers.
const maxKeyWait = 5 * time.Minute

// keyPoll is how long decrypt syncs for a missing room key before it
// gives up for this try (the inbound stream retries it, with backoff).
const keyPoll = 20 * time.Second

// ErrNoEncryption reports an encrypted room with a build that cannot
// encrypt (built without the goolm tag).
var ErrNoEncryption = errors.New("matrix: the room is end-to-end encrypted, but this build has no end-to-end encryption: build crisismesh with -tags goolm")

// Options are what New needs beyond the config.
type Options struct {
	// Dir holds the bridge's state and device keys (created 0700).
	Dir string
	// Base resolves the config's relative file names (the data directory).
	Base string
	// Logger receives the bridge's logs; nil: discard.
	Logger *slog.Logger
	// Registerer takes the bridge's metrics; nil: none.
	Registerer prometheus.Registerer
	// MaxBackoff caps the wait between retries (0: 10s).
	MaxBackoff time.Duration
}

// Status is what `crisismesh matrix status` shows.
type Status struct {
	Homeserver  string
	Room        string
	User        string
	Running     bool
	Encrypted   bool
	Queue       int
	LastSuccess time.Time
	LastError   string
	Errors      uint64
	Sent        uint64
	Received    uint64
	Ignored     uint64
	Withheld    map[string]uint64
}

// Bridge joins a node's crisis log and one Matrix room. It is safe for
// concurrent use; Close stops it.
type Bridge struct {
	cfg    Config
	node   Node
	opts   Options
	logger *slog.Logger
	cli    *mautrix.Client
	room   id.RoomID
	e2ee   *e2ee // nil in a plain room

	cancel context.CancelFunc
	wg     sync.WaitGroup

	syncMu sync.Mutex // one sync at a time: to-device events are consumed once
	since  string

	mu         sync.Mutex
	st         state
	unsaved    int           // changes to st not yet written (advance)
	savedAt    time.Time     // when st was last written
	saveEvery  int           // advance writes st at this many changes…
	saveAfter  time.Duration // …or this long after the last write
	seen       map[string]bool
	status     Status
	needCheck  bool                 // the timeline must be checked before the next send
	sentLately map[string]bool      // entry IDs found in the timeline by the check
	keyWait    map[string]time.Time // event ID → first failure for want of its room key

	mQueue   prometheus.Gauge
	mLast    prometheus.Gauge
	mErrors  *prometheus.CounterVec
	mCrossed *prometheus.CounterVec
	mHeld    *prometheus.CounterVec
}

// New prepares a bridge: it loads its state, reads the bot's credentials
// and registers its metrics. Start runs it.
func New(cfg Config, n Node, opts Options) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	st, err := loadState(opts.Dir)
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, node: n, opts: opts, logger: opts.Logger.With("component", "matrix"), room: id.RoomID(cfg.Room),
		st: st, seen: map[string]bool{}, needCheck: true, sentLately: map[string]bool{}, keyWait: map[string]time.Time{},
		savedAt: time.Now(), saveEvery: saveEvery, saveAfter: saveAfter}
	for _, s := range st.Seen {
		b.seen[s] = true
	}
	b.status = Status{Homeserver: cfg.Homeserver, Room: cfg.Room, User: cfg.User, Withheld: map[string]uint64{}}
	if b.cli, err = mautrix.NewClient(cfg.Homeserver, id.UserID(cfg.User), ""); err != nil {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	b.cli.Client.Timeout = 60 * time.Second
	if cfg.AccessTokenFile != "" {
		tok, err := os.ReadFile(b.path(cfg.AccessTokenFile))
		if err != nil {
			return nil, fmt.Errorf("matrix: access_token_file: %w", err)
		}
		b.cli.AccessToken = strings.TrimSpace(string(tok))
	}
	b.mQueue = prometheus.NewGauge(prometheus.GaugeOpts{Name: "crisismesh_matrix_queue_entries",
		Help: "Entries of the log not yet handled by the Matrix bridge (sent or withheld); counted up to 1000."})
	b.mLast = prometheus.NewGauge(prometheus.GaugeOpts{Name: "crisismesh_matrix_last_success_timestamp_seconds",
		Help: "Unix time of the last successful exchange with the homeserver (0: none yet)."})
	b.mErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crisismesh_matrix_errors_total",
		Help: "Failed exchanges with the homeserver (each is retried), by direction."}, []string{"direction"})
	b.mCrossed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crisismesh_matrix_bridged_total",
		Help: "Messages bridged, by direction (to_matrix, to_mesh)."}, []string{"direction"})
	b.mHeld = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crisismesh_matrix_withheld_total",
		Help: "Entries kept from the room, by reason (TLP, kind, member, sealed, from-matrix)."}, []string{"reason"})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{b.mQueue, b.mLast, b.mErrors, b.mCrossed, b.mHeld} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("matrix: metrics: %w", err)
			}
		}
	}
	return b, nil
}

func (b *Bridge) path(p string) string {
	if filepath.IsAbs(p) || b.opts.Base == "" {
		return p
	}
	return filepath.Join(b.opts.Base, p)
}

// Start logs in if needed, remembers the Matrix events the log already
// holds, and starts the two directions. It returns once they run; a
// homeserver that is down is retried in the background.
func (b *Bridge) Start() error {
	// Entries not yet handled may include ones written from the room
	// just before a crash: remember their events before reading the room.
	pos := b.position()
	for {
		es, err := b.node.After(pos, 1000)
		if err != nil {
			return fmt.Errorf("matrix: %w", err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if e.Bridged != nil && e.Bridged.Via == "matrix" {
				b.seen[e.Bridged.Event] = true
			}
			if e.Seq > pos[e.AuthorID] {
				pos[e.AuthorID] = e.Seq
			}
		}
	}
	if b.st.fresh {
		// A new bridge starts from the log's present, as it starts from
		// the room's: what was written before is not sent to the room.
		if err := b.update(func(s *state) { s.Position, s.fresh = pos, false }); err != nil {
			return err
		}
		b.logger.Info("matrix: new bridge: entries written from now on go to the room", "authors", len(pos))
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.mu.Lock()
	b.status.Running = true
	b.mu.Unlock()
	b.wg.Add(1)
	go b.run(ctx)
	return nil
}

// Close stops the bridge and writes what it handled.
func (b *Bridge) Close() error {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
	b.mu.Lock()
	b.status.Running = false
	b.mu.Unlock()
	err := b.flush()
	if b.e2ee != nil {
		err = errors.Join(err, b.e2ee.Close())
	}
	return err
}

// Status reports the bridge's state.
func (b *Bridge) Status() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.status
	s.Withheld = make(map[string]uint64, len(b.status.Withheld))
	for k, v := range b.status.Withheld {
		s.Withheld[k] = v
	}
	return s
}

// run connects (login, join, encryption), then runs both directions.
func (b *Bridge) run(ctx context.Context) {
	defer b.wg.Done()
	if err := b.retry(ctx, "connect", b.connect); err != nil {
		return // stopped
	}
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.outbound(ctx) }()
	go func() { defer b.wg.Done(); b.inbound(ctx) }()
}

// connect logs in (password), joins the room and sets up encryption if
// the room is encrypted.
func (b *Bridge) connect(ctx context.Context) error {
	if b.cli.AccessToken == "" {
		pw, err := os.ReadFile(b.path(b.cfg.PasswordFile))
		if err != nil {
			return fmt.Errorf("matrix: password_file: %w", err)
		}
		b.mu.Lock()
		dev := b.st.DeviceID
		b.mu.Unlock()
		resp, err := b.cli.Login(ctx, &mautrix.ReqLogin{Type: mautrix.AuthTypePassword,
			Identifier: mautrix.UserIdentifier{Type: mautrix.IdentifierTypeUser, User: b.cfg.User},
			Password:   strings.TrimSpace(string(pw)), DeviceID: id.DeviceID(dev),
			InitialDeviceDisplayName: "crisismesh bridge", StoreCredentials: true})
		if err != nil {
			return fmt.Errorf("matrix: login: %w", err)
		}
		if err := b.update(func(s *state) { s.DeviceID = string(resp.DeviceID) }); err != nil {
			return err
		}
	} else if b.cli.DeviceID == "" {
		who, err := b.cli.Whoami(ctx)
		if err != nil {
			return fmt.Errorf("matrix: whoami: %w", err)
		}
		b.cli.DeviceID = who.DeviceID
	}
	if _, err := b.cli.JoinRoomByID(ctx, b.room); err != nil {
		return fmt.Errorf("matrix: join %s: %w", b.room, err)
	}
	enc, err := b.encrypted(ctx)
	if err != nil {
		return err
	}
	if enc && b.e2ee == nil {
		if b.e2ee, err = newE2EE(ctx, b); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.status.Encrypted = enc
	b.mu.Unlock()
	return nil
}

// encrypted reports whether the room has an m.room.encryption state event.
func (b *Bridge) encrypted(ctx context.Context) (bool, error) {
	var c event.EncryptionEventContent
	err := b.cli.StateEvent(ctx, b.room, event.StateEncryption, "", &c)
	if errors.Is(err, mautrix.MNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("matrix: room encryption: %w", err)
	}
	return c.Algorithm != "", nil
}

// roomState is what an AMBER send is checked against, read fresh.
func (b *Bridge) roomState(ctx context.Context) (Room, error) {
	enc, err := b.encrypted(ctx)
	if err != nil {
		return Room{}, err
	}
	jm, err := b.cli.JoinedMembers(ctx, b.room)
	if err != nil {
		return Room{}, fmt.Errorf("matrix: joined members: %w", err)
	}
	r := Room{Encrypted: enc && b.e2ee != nil}
	for u := range jm.Joined {
		r.Joined = append(r.Joined, string(u))
	}
	slices.Sort(r.Joined)
	return r, nil
}

// retry runs f until it succeeds or ctx ends, backing off between
// failures; it counts and logs each failure.
func (b *Bridge) retry(ctx context.Context, direction string, f func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		err := f(ctx)
		if err == nil {
			b.success()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.failure(direction, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, b.opts.MaxBackoff)
	}
}

func (b *Bridge) success() {
	now := time.Now()
	b.mLast.Set(float64(now.UnixMilli()) / 1000)
	b.mu.Lock()
	b.status.LastSuccess = now
	b.status.LastError = ""
	b.mu.Unlock()
}

func (b *Bridge) failure(direction string, err error) {
	b.mErrors.WithLabelValues(direction).Inc()
	b.mu.Lock()
	b.status.Errors++
	b.status.LastError = err.Error()
	b.needCheck = true
	b.mu.Unlock()
	b.logger.Warn("matrix: will retry", "direction", direction, "err", err)
}

// position returns a copy of the recorded position.
func (b *Bridge) position() Position {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st.Position.Clone()
}

// State writes while the queue is long (a catch-up): at most every
// saveEvery entries or saveAfter, and whenever the queue empties. A
// crash loses the record of at most those entries, which the timeline
// check after the restart finds in the room (it reads up to
// maxCheckPages pages of 100 events: far more than saveEvery).
const (
	saveEvery = 64
	saveAfter = time.Second
)

// update changes the state and writes it durably.
func (b *Bridge) update(f func(*state)) error { return b.change(f, false) }

// advance changes the state, writing it only after saveEvery changes or
// saveAfter since the last write; flush writes the rest.
func (b *Bridge) advance(f func(*state)) error { return b.change(f, true) }

// flush writes the changes advance kept in memory.
func (b *Bridge) flush() error {
	b.mu.Lock()
	n := b.unsaved
	b.mu.Unlock()
	if n == 0 {
		return nil
	}
	return b.update(func(*state) {})
}

func (b *Bridge) change(f func(*state), batch bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := b.st
	next.Position = b.st.Position.Clone()
	next.Seen = slices.Clone(b.st.Seen)
	next.Notices = slices.Clone(b.st.Notices)
	f(&next)
	if batch && b.unsaved+1 < b.saveEvery && time.Since(b.savedAt) < b.saveAfter {
		b.unsaved++
	} else {
		if err := saveState(b.opts.Dir, next); err != nil {
			return err
		}
		b.unsaved, b.savedAt = 0, time.Now()
	}
	if len(next.Seen) > maxSeen {
		next.Seen = next.Seen[len(next.Seen)-maxSeen:]
	}
	if len(next.Notices) > maxNotices {
		next.Notices = next.Notices[len(next.Notices)-maxNotices:]
	}
	b.st = next
	return nil
}

// outbound sends the log's entries to the room, in display order, each
// exactly once.
func (b *Bridge) outbound(ctx context.Context) {
	tick := time.NewTicker(b.cfg.poll())
	defer tick.Stop()
	for {
		es, err := b.node.After(b.position(), 1000)
		if err != nil {
			b.failure("to_matrix", err)
		}
		b.mQueue.Set(float64(len(es)))
		b.mu.Lock()
		b.status.Queue = len(es)
		b.mu.Unlock()
		for i, e := range es {
			if err := b.handleEntry(ctx, e); err != nil {
				return // stopped
			}
			b.mQueue.Set(float64(len(es) - i - 1))
			b.mu.Lock()
			b.status.Queue = len(es) - i - 1
			b.mu.Unlock()
		}
		if len(es) > 0 {
			continue
		}
		if err := b.retry(ctx, "state", func(context.Context) error { return b.flush() }); err != nil {
			return // stopped
		}
		if err := b.handleNotices(ctx); err != nil {
			return // stopped
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// handleEntry sends or withholds one entry and records it as handled.
func (b *Bridge) handleEntry(ctx context.Context, e Entry) error {
	var reason string
	err := b.retry(ctx, "to_matrix", func(ctx context.Context) error {
		var err error
		reason, err = b.cfg.withhold(e, func() (Room, error) { return b.roomState(ctx) })
		if err != nil || reason != "" {
			return err
		}
		// A send under way is not cut off by Close: it finishes (or times
		// out) and is recorded, so a clean stop never leaves a sent entry
		// unrecorded.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
		defer cancel()
		return b.send(sctx, e.ID, formatEntry(e))
	})
	if err != nil {
		return err
	}
	if err := b.retry(ctx, "state", func(context.Context) error {
		return b.advance(func(s *state) {
			s.Position[e.AuthorID] = e.Seq
			if reason == "" {
				s.LastSent = e.ID
			}
			if e.Bridged != nil && e.Bridged.Via == "matrix" && !slices.Contains(s.Seen, e.Bridged.Event) {
				s.Seen = append(s.Seen, e.Bridged.Event)
			}
		})
	}); err != nil {
		return err
	}
	if e.Bridged != nil && e.Bridged.Via == "matrix" {
		b.mu.Lock()
		b.seen[e.Bridged.Event] = true
		b.mu.Unlock()
	}
	if reason != "" {
		b.withheld(reason)
		b.logger.Debug("matrix: entry withheld from the room", "entry", e.ID[:16], "reason", reason)
	}
	return nil
}

func (b *Bridge) withheld(reason string) {
	b.mHeld.WithLabelValues(reason).Inc()
	b.mu.Lock()
	b.status.Withheld[reason]++
	b.mu.Unlock()
}

// handleNotices posts the node's Reserve alerts not handled yet, each
// once, and records them as handled (sent or withheld).
func (b *Bridge) handleNotices(ctx context.Context) error {
	for _, a := range b.node.ReserveAlerts() {
		key := a.key()
		b.mu.Lock()
		done := slices.Contains(b.st.Notices, key)
		b.mu.Unlock()
		if done {
			continue
		}
		var reason string
		if err := b.retry(ctx, "to_matrix", func(ctx context.Context) error {
			var err error
			reason, err = b.cfg.withholdNotice(func() (Room, error) { return b.roomState(ctx) })
			if err != nil || reason != "" {
				return err
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
			defer cancel()
			return b.send(sctx, key, formatNotice(a))
		}); err != nil {
			return err
		}
		if err := b.retry(ctx, "state", func(context.Context) error {
			return b.update(func(s *state) {
				s.Notices = append(s.Notices, key)
				if reason == "" {
					s.LastSent = key
				}
			})
		}); err != nil {
			return err
		}
		if reason != "" {
			b.withheld(reason)
			b.logger.Info("matrix: Reserve deadline notice withheld from the room", "notice", key, "reason", reason)
		}
	}
	return nil
}

// send posts c, marked mark (an entry ID or a notice's key, also in c),
// to the room unless the timeline check finds it there.
func (b *Bridge) send(ctx context.Context, mark string, c content) error {
	b.mu.Lock()
	check := b.needCheck
	b.mu.Unlock()
	if check {
		found, err := b.sentSince(ctx)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.sentLately, b.needCheck = found, false
		b.mu.Unlock()
	}
	b.mu.Lock()
	already := b.sentLately[mark]
	b.mu.Unlock()
	if already {
		b.logger.Info("matrix: already in the room (sent before an outage or restart)", "mark", mark)
		return nil
	}
	var err error
	if b.e2ee != nil {
		err = b.e2ee.Send(ctx, c, "crisismesh-"+mark)
	} else {
		_, err = b.cli.SendMessageEvent(ctx, b.room, event.EventMessage, c, mautrix.ReqSendEvent{TransactionID: "crisismesh-" + mark})
	}
	if err != nil {
		return fmt.Errorf("matrix: send %s: %w", mark, err)
	}
	b.mCrossed.WithLabelValues("to_matrix").Inc()
	b.mu.Lock()
	b.status.Sent++
	b.mu.Unlock()
	return nil
}

// sendTimeout bounds one send (and so how long Close may wait for it).
const sendTimeout = 15 * time.Second

// maxCheckPages bounds the timeline check (pages of 100 events).
const maxCheckPages = 20

// sentSince reads the room backwards from now to the last event recorded
// as sent and returns the marks (entry IDs, notice keys) of those the bot
// sent after it: sent, but not recorded before an outage or a crash.
func (b *Bridge) sentSince(ctx context.Context) (map[string]bool, error) {
	b.mu.Lock()
	last := b.st.LastSent
	b.mu.Unlock()
	found := map[string]bool{}
	if last == "" {
		// Nothing was ever recorded as sent: the room may still hold an
		// event sent just before the first record; read it too.
		last = "\x00"
	}
	from, err := b.now(ctx)
	if err != nil {
		return nil, err
	}
	for page := 0; page < maxCheckPages; page++ {
		resp, err := b.cli.Messages(ctx, b.room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			return nil, fmt.Errorf("matrix: timeline check: %w", err)
		}
		for _, ev := range resp.Chunk {
			if ev.Sender != b.cli.UserID {
				continue
			}
			eid, err := b.markOf(ctx, ev)
			if err != nil {
				return nil, fmt.Errorf("matrix: timeline check: %w", err)
			}
			if eid == last {
				return found, nil
			}
			if eid != "" {
				found[eid] = true
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	return found, nil
}

// markOf returns the entry ID or notice key an event of the bot carries
// ("" if none, or if it cannot be decrypted: the bot's own room keys are
// its own, so none is on its way). Any other failure is returned: reading
// the event as carrying no mark would send it again.
func (b *Bridge) markOf(ctx context.Context, ev *event.Event) (string, error) {
	if ev.Type == event.EventEncrypted && b.e2ee != nil {
		dec, err := b.e2ee.Decrypt(ctx, ev)
		if errors.Is(err, errKeyMissing) || errors.Is(err, errUndecryptable) {
			b.logger.Warn("matrix: timeline check: cannot decrypt an event of the bot", "event", ev.ID, "err", err)
			return "", nil
		}
		if err != nil {
			return "", err
		}
		ev = dec
	}
	if s, ok := ev.Content.Raw[KeyEntry].(string); ok {
		return s, nil
	}
	s, _ := ev.Content.Raw[KeyNotice].(string)
	return s, nil
}

// now returns a token for the room's present (a sync's next_batch).
func (b *Bridge) now(ctx context.Context) (string, error) {
	resp, err := b.cli.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: 0, FilterID: b.filter(1)})
	if err != nil {
		return "", fmt.Errorf("matrix: sync: %w", err)
	}
	return resp.NextBatch, nil
}

// filter is an inline sync filter: only the room, at most limit timeline
// events, no presence or account data.
func (b *Bridge) filter(limit int) string {
	return fmt.Sprintf(`{"room":{"rooms":[%q],"timeline":{"limit":%d},"state":{"lazy_load_members":true},"ephemeral":{"not_types":["*"]},"account_data":{"not_types":["*"]}},"presence":{"not_types":["*"]},"account_data":{"not_types":["*"]}}`, b.room, limit)
}

// inbound reads the room forward from the recorded token and writes the
// allowed users' messages into the mesh, each exactly once.
func (b *Bridge) inbound(ctx context.Context) {
	b.mu.Lock()
	from := b.st.From
	b.mu.Unlock()
	if from == "" {
		// A new bridge starts from the room's present: history before it
		// is not the mesh's business.
		if err := b.retry(ctx, "to_mesh", func(ctx context.Context) error {
			var err error
			if from, err = b.now(ctx); err != nil {
				return err
			}
			return b.update(func(s *state) { s.From = from })
		}); err != nil {
			return
		}
	}
	for ctx.Err() == nil {
		var resp *mautrix.RespMessages
		err := b.retry(ctx, "to_mesh", func(ctx context.Context) error {
			var err error
			resp, err = b.cli.Messages(ctx, b.room, from, "", mautrix.DirectionForward, nil, 100)
			if err != nil {
				return fmt.Errorf("matrix: read room: %w", err)
			}
			return nil
		})
		if err != nil {
			return
		}
		for _, ev := range resp.Chunk {
			var record bool
			if err := b.retry(ctx, "to_mesh", func(ctx context.Context) error {
				var err error
				record, err = b.handleEvent(ctx, ev)
				return err
			}); err != nil {
				return
			}
			if !record {
				continue
			}
			if err := b.retry(ctx, "state", func(context.Context) error {
				return b.update(func(s *state) { s.Seen = append(s.Seen, string(ev.ID)) })
			}); err != nil {
				return
			}
		}
		if resp.End != "" && resp.End != from {
			from = resp.End
			if err := b.retry(ctx, "state", func(context.Context) error { return b.update(func(s *state) { s.From = from }) }); err != nil {
				return
			}
		}
		if len(resp.Chunk) > 0 {
			continue
		}
		// Nothing new: wait for the room to change (a long poll).
		if err := b.syncNow(ctx, 25000); err != nil {
			if ctx.Err() != nil {
				return
			}
			b.failure("to_mesh", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// syncNow runs one sync (waiting up to timeout ms for news) from the
// bridge's sync token, hands it to encryption (room keys arrive as
// to-device events) and advances the token. The token need not survive a
// restart: the room itself is read with /messages from the recorded token.
func (b *Bridge) syncNow(ctx context.Context, timeout int) error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	sr, err := b.cli.FullSyncRequest(ctx, mautrix.ReqSync{Timeout: timeout, Since: b.since, FilterID: b.filter(1)})
	if err != nil {
		return fmt.Errorf("matrix: sync: %w", err)
	}
	if b.e2ee != nil {
		// Not cut off by Close: a room key handled halfway (its Olm
		// message recorded as decrypted, the key not yet stored) would
		// be lost for good, as the homeserver's copy is then refused as
		// a replay.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
		b.e2ee.ProcessSync(pctx, sr, b.since)
		cancel()
	}
	b.since = sr.NextBatch
	return nil
}

// handleEvent writes one room event into the mesh (or answers it).
// It reports whether the event is to be recorded as seen; once written
// or answered, it is marked seen in memory so a retry does not repeat it.
func (b *Bridge) handleEvent(ctx context.Context, ev *event.Event) (bool, error) {
	eid := string(ev.ID)
	b.mu.Lock()
	seen := b.seen[eid]
	b.mu.Unlock()
	if seen || ev.Sender == b.cli.UserID {
		return false, nil
	}
	if ev.Type == event.EventEncrypted {
		if b.e2ee == nil {
			return false, nil
		}
		dec, err := b.decrypt(ctx, ev)
		switch {
		case err == nil:
			ev = dec
		case errors.Is(err, errUndecryptable), errors.Is(err, errKeyMissing) && b.keyWaited(eid) >= maxKeyWait:
			b.logger.Error("matrix: cannot decrypt an event: skipped", "event", eid, "sender", ev.Sender, "err", err)
			b.keyDone(eid)
			return false, nil
		default:
			// The room key may still come (a loaded homeserver, a sender
			// that shares late), or the homeserver did not answer while
			// the bridge fetched it: try again, the stream waiting
			// meanwhile. Skipping here would lose the message for good
			// once an event after it moves the recorded token past it.
			return false, err
		}
	}
	if ev.Type != event.EventMessage {
		return false, nil
	}
	if !b.cfg.allowed(string(ev.Sender)) {
		b.mu.Lock()
		b.status.Ignored++
		b.seen[eid] = true
		b.mu.Unlock()
		b.logger.Info("matrix: message from a user not allowed ignored", "sender", ev.Sender, "event", eid)
		return true, nil
	}
	body, _ := ev.Content.Raw["body"].(string)
	msgtype, _ := ev.Content.Raw["msgtype"].(string)
	if msgtype != "m.text" && msgtype != "m.notice" && msgtype != "m.emote" || strings.TrimSpace(body) == "" {
		return false, nil
	}
	if cmd := strings.TrimSpace(body); cmd == "!status" || cmd == "!crisis" {
		if err := b.answer(ctx, cmd); err != nil {
			return false, err
		}
	} else {
		b.mu.Lock()
		enc := b.status.Encrypted
		b.mu.Unlock()
		if _, err := b.node.PostBridged(ctx, body, b.cfg.inboundTLP(enc && b.e2ee != nil),
			log.Bridged{Via: "matrix", Sender: string(ev.Sender), Event: eid, Room: string(b.room)}); err != nil {
			return false, fmt.Errorf("matrix: write to the log: %w", err)
		}
		b.mCrossed.WithLabelValues("to_mesh").Inc()
		b.mu.Lock()
		b.status.Received++
		b.mu.Unlock()
	}
	b.mu.Lock()
	b.seen[eid] = true
	b.mu.Unlock()
	return true, nil
}

// decrypt decrypts an encrypted room event. A missing room key may still
// be on its way (a to-device event): it syncs and tries again for up to
// keyPoll, then reports errKeyMissing. A failed sync is returned as it is
// (the homeserver is down: retried, never a reason to skip).
func (b *Bridge) decrypt(ctx context.Context, ev *event.Event) (*event.Event, error) {
	deadline := time.Now().Add(keyPoll)
	for {
		dec, err := b.e2ee.Decrypt(ctx, ev)
		if !errors.Is(err, errKeyMissing) {
			if err == nil {
				b.keyDone(string(ev.ID))
			}
			return dec, err
		}
		b.mu.Lock()
		if _, ok := b.keyWait[string(ev.ID)]; !ok {
			b.keyWait[string(ev.ID)] = time.Now()
		}
		b.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, err
		}
		if err := b.syncNow(ctx, 1000); err != nil {
			return nil, err
		}
	}
}

// keyWaited is how long the event has waited for its room key.
func (b *Bridge) keyWaited(eid string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	first, ok := b.keyWait[eid]
	if !ok {
		return 0
	}
	return time.Since(first)
}

// keyDone forgets the event's wait for its room key.
func (b *Bridge) keyDone(eid string) {
	b.mu.Lock()
	delete(b.keyWait, eid)
	b.mu.Unlock()
}

// answer replies to a command from the local view, read-only.
func (b *Bridge) answer(ctx context.Context, cmd string) error {
	var text string
	switch cmd {
	case "!crisis":
		text = b.node.Crisis()
	case "!status":
		s := b.Status()
		text = fmt.Sprintf("crisismesh bridge of %s: %d entries queued for the room, %d sent, %d received, %d errors",
			b.cfg.User, s.Queue, s.Sent, s.Received, s.Errors)
		if line, _, _ := strings.Cut(b.node.Crisis(), "\n"); line != "" {
			text += "\n" + line
		}
	}
	c := content{MsgType: "m.notice", Body: text}
	var err error
	if b.e2ee != nil {
		err = b.e2ee.Send(ctx, c, "")
	} else {
		_, err = b.cli.SendMessageEvent(ctx, b.room, event.EventMessage, c)
	}
	if err != nil {
		return fmt.Errorf("matrix: answer %s: %w", cmd, err)
	}
	return nil
}
