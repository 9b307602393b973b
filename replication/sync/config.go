package sync

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/replication/store"
)

// Timing is what sync needs to know of the link to one peer.
type Timing struct {
	ChunkSize      int           // bytes per entries message
	SessionTimeout time.Duration // no progress for this long aborts a session
	// PushTimeout is the longest a push waits for the peer to say it
	// stored the entries (by closing the stream); then the next push to
	// that peer may go, as if it had. It is short, apart from the session
	// timeout, so that a push to a peer that stopped answering (a cut
	// link, a stalled process) holds back the next push to it for this
	// long at most. Zero: SessionTimeout / 10.
	PushTimeout time.Duration
	// Window, when set, makes the link narrow: this node's own entries
	// go to the peer with provisional signatures and their composite
	// signatures follow within the window (package doc, "Narrow links").
	// Zero: a wide link, every entry travels with its composite.
	Window log.Window
}

// DefaultTiming suits a LAN or a good internet link.
var DefaultTiming = Timing{ChunkSize: 256 << 10, SessionTimeout: 30 * time.Second, PushTimeout: 3 * time.Second}

// ErrConfig is the class of every problem [Config.Validate] reports.
var ErrConfig = errors.New("sync: bad config")

// Config is what [New] needs. It is data: build it with [DefaultConfig],
// change fields, and [Config.Validate] (New calls it) names every problem
// at once. Store and Host are required. The zero value of every other
// field stands for its default (that of DefaultConfig), so a literal
// Config that sets only the required fields works too.
type Config struct {
	Store    *store.Store
	Host     host.Host
	Identity *crypto.Identity // signs exported bundles
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// Interval between anti-entropy rounds with a random connected peer.
	// Default 5 s.
	Interval time.Duration
	// Timing returns the link timing for a peer; default (nil, or a
	// timing with a zero field) DefaultTiming.
	Timing func(peer.ID) Timing
	// OnMisbehave is told when a peer is disconnected for repeated
	// offences (e.g. so the transport can block it for a while).
	OnMisbehave func(p peer.ID, reason string)
	// MaxOffences before disconnecting a peer. Default 3.
	MaxOffences int
	// PushLimit is the most bytes of new entries pushed in one message;
	// larger batches are left to anti-entropy. Default 256 KiB.
	PushLimit int
	// MaxPeerBuffer bounds the bytes of one peer's entries this node holds
	// in memory at once, across that peer's sessions and pushes: batches
	// not yet stored and unsigned entries waiting for the signed entry
	// that vouches for them. A peer that would pass it is cut off and
	// scored. Zero: DefaultMaxPeerBuffer (64 MiB). See "Bounded resources"
	// in the package doc.
	MaxPeerBuffer int64
	// SessionQuota paces the entries one peer sends this node in
	// sessions; PushQuota bounds its pushes, and a push beyond it is an
	// offence. Zero values mean DefaultSessionQuota and DefaultPushQuota.
	SessionQuota, PushQuota Quota
}

// DefaultConfig returns a configuration with anti-entropy every 5 s,
// DefaultTiming for every peer, disconnection after 3 offences, pushes
// of at most 256 KiB, and the default budget and quotas (see "Bounded
// resources" in the package doc). Store and Host must still be set.
func DefaultConfig() Config {
	return Config{
		Interval:      5 * time.Second,
		MaxOffences:   3,
		PushLimit:     256 << 10,
		MaxPeerBuffer: DefaultMaxPeerBuffer,
		SessionQuota:  DefaultSessionQuota,
		PushQuota:     DefaultPushQuota,
	}
}

// Validate reports every problem of c, each wrapping [ErrConfig], joined
// into one error; nil if there is none.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Store == nil {
		bad("no store")
	}
	if c.Host == nil {
		bad("no host")
	}
	if c.Interval < 0 {
		bad("negative Interval %v", c.Interval)
	}
	if c.MaxOffences < 0 {
		bad("negative MaxOffences %d", c.MaxOffences)
	}
	if c.PushLimit < 0 {
		bad("negative PushLimit %d", c.PushLimit)
	}
	if c.MaxPeerBuffer < 0 {
		bad("negative MaxPeerBuffer %d", c.MaxPeerBuffer)
	} else if c.MaxPeerBuffer > 0 && c.MaxPeerBuffer < 4*maxFrame {
		bad("MaxPeerBuffer %d bytes: want at least %d (a few messages' worth)", c.MaxPeerBuffer, 4*maxFrame)
	}
	if c.SessionQuota != (Quota{}) {
		c.SessionQuota.check("SessionQuota", bad)
	}
	if c.PushQuota != (Quota{}) {
		c.PushQuota.check("PushQuota", bad)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.MaxOffences == 0 {
		c.MaxOffences = d.MaxOffences
	}
	if c.PushLimit == 0 {
		c.PushLimit = d.PushLimit
	}
	if c.MaxPeerBuffer == 0 {
		c.MaxPeerBuffer = d.MaxPeerBuffer
	}
	if c.SessionQuota == (Quota{}) {
		c.SessionQuota = d.SessionQuota
	}
	if c.PushQuota == (Quota{}) {
		c.PushQuota = d.PushQuota
	}
	return c
}
