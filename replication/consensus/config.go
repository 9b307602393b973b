package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/store"
)

// ErrConfig is the class of every problem [Config.Validate] reports.
var ErrConfig = errors.New("consensus: bad config")

// Timing is the Raft timing of a link profile.
type Timing struct {
	Heartbeat   time.Duration
	Election    time.Duration
	LeaderLease time.Duration
	Commit      time.Duration
}

// LANTiming suits a LAN.
var LANTiming = Timing{Heartbeat: 500 * time.Millisecond, Election: 500 * time.Millisecond, LeaderLease: 250 * time.Millisecond, Commit: 20 * time.Millisecond}

// Config is what [New] needs. It is data: build it with [DefaultConfig],
// change fields, and [Config.Validate] (New calls it) names every problem
// at once. Store, Identity, Genesis, Transport and Snapshots are
// required. The zero values of Timing, CheckpointEvery and Now stand for
// their defaults (those of DefaultConfig), so a literal Config that sets
// only the required fields works too.
type Config struct {
	Store     *store.Store
	Identity  *crypto.Identity
	Genesis   *crypto.Genesis
	Transport raft.Transport
	Snapshots raft.SnapshotStore
	// Timing is Raft's timing (default LANTiming). Set, it must satisfy
	// hashicorp/raft's rules: every timeout at least 5 ms (Commit 1 ms),
	// LeaderLease at most Heartbeat, Election at least Heartbeat.
	Timing Timing
	// Logger receives the engine's logs (and Raft's warnings); nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock of this node (default time.Now). As leader the
	// engine stamps it into the Raft entries it submits: it is the
	// committed time of commands (see the package doc on clocks). It also
	// dates provisional proposals and the age of views built from
	// checkpoints. Durations (timeouts, coalescing) use the monotonic
	// clock, never Now.
	Now func() time.Time
	// CheckpointEvery coalesces checkpoints; default 1 s.
	CheckpointEvery time.Duration
	// TrailingLogs is how many Raft entries a snapshot leaves in the log
	// (0: hashicorp/raft's default, 10240). A follower further behind is
	// sent the snapshot instead.
	TrailingLogs uint64
	// RaftLogs and RaftStable override the store's badger-backed Raft
	// stores (tests use raft.InmemStore, which passes the same suite).
	RaftLogs   raft.LogStore
	RaftStable raft.StableStore
}

// DefaultConfig returns a configuration with LAN timing, checkpoints
// coalesced to one a second and the system clock. Store, Identity,
// Genesis, Transport and Snapshots must still be set.
func DefaultConfig() Config {
	return Config{
		Timing:          LANTiming,
		CheckpointEvery: time.Second,
		Now:             time.Now,
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
		bad("no store (Store)")
	}
	if c.Identity == nil {
		bad("no identity (Identity)")
	}
	if c.Genesis == nil {
		bad("no genesis (Genesis)")
	}
	if c.Transport == nil {
		bad("no Raft transport (Transport)")
	}
	if c.Snapshots == nil {
		bad("no snapshot store (Snapshots)")
	}
	if t := c.Timing; t != (Timing{}) {
		// hashicorp/raft's own rules (raft.ValidateConfig), said here with
		// the others instead of one at a time when Raft starts.
		if t.Heartbeat < 5*time.Millisecond || t.Election < 5*time.Millisecond || t.LeaderLease < 5*time.Millisecond {
			bad("timing: heartbeat %v, election %v, leader lease %v: want each at least 5ms", t.Heartbeat, t.Election, t.LeaderLease)
		}
		if t.Commit < time.Millisecond {
			bad("timing: commit %v: want at least 1ms", t.Commit)
		}
		if t.LeaderLease > t.Heartbeat {
			bad("timing: leader lease %v is longer than the heartbeat timeout %v", t.LeaderLease, t.Heartbeat)
		}
		if t.Election < t.Heartbeat {
			bad("timing: election timeout %v is shorter than the heartbeat timeout %v", t.Election, t.Heartbeat)
		}
	}
	if c.CheckpointEvery < 0 {
		bad("negative CheckpointEvery %v", c.CheckpointEvery)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero Timing, CheckpointEvery, Now and
// Logger replaced by their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Timing == (Timing{}) {
		c.Timing = d.Timing
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = d.CheckpointEvery
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
