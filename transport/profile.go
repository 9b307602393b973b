package transport

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUnknownProfile is returned by [ProfileByName] for a name that is not
// one of [Profiles].
var ErrUnknownProfile = errors.New("transport: unknown link profile")

// Profile names.
const (
	ProfileLAN       = "lan"
	ProfileInternet  = "internet"
	ProfileSatellite = "satellite"
)

// A Profile is a named set of numbers that fit one kind of link. Sync,
// consensus and this package read them; nothing else should hard-code a
// timeout. A Profile is a plain value: copies are independent.
type Profile struct {
	// Name is "lan", "internet" or "satellite".
	Name string

	// MaxRTT is the largest round trip for which [ProfileForRTT] picks this
	// profile (zero: no limit).
	MaxRTT time.Duration

	// SyncInterval is how often anti-entropy runs with a random peer.
	SyncInterval time.Duration
	// ChunkSize is how many bytes sync sends in one piece: also how much
	// low-priority data may be in flight before a flash entry can go next.
	ChunkSize int
	// SessionTimeout is the watchdog: a sync session that moves no byte for
	// this long is aborted and retried with another peer.
	SessionTimeout time.Duration
	// PushTimeout is the longest a push waits for the peer to say it
	// stored the entries before the next push to that peer may go.
	PushTimeout time.Duration
	// Narrow marks a link whose bytes are scarce: a node's own entries go
	// over it with provisional signatures and their composite signatures
	// follow within a window (replication/log, "Narrow links";
	// replication/sync). Only the satellite profile is narrow.
	Narrow bool

	// DialTimeout bounds one connection attempt (TCP or QUIC, TLS, muxer).
	DialTimeout time.Duration
	// ReconnectBase is the first wait after a failed dial; it doubles up
	// to ReconnectMax, with jitter.
	ReconnectBase time.Duration
	// ReconnectMax caps the wait between dials to a roster peer.
	ReconnectMax time.Duration

	// Raft timings (hashicorp/raft Config fields of the same names).
	// LeaderLeaseTimeout must not exceed HeartbeatTimeout.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// RaftIOTimeout is raft.NetworkTransportConfig.Timeout: how long one
	// RPC may take before Raft gives up on it. STACK-NOTES: keep it small,
	// because a dial to a dead QUIC peer fails only at the timeout.
	RaftIOTimeout time.Duration
}

// The numbers, and why.
//
// lan: a building's network, round trips well under a millisecond, but
// this machine's loaded loopback sometimes shows 10 ms: MaxRTT 20 ms.
// hashicorp/raft's own defaults (1 s heartbeat and election, 500 ms lease,
// 50 ms commit) are tuned for data-centre links and fit. Chunks of 256 KiB
// hold a flash entry back by about 2 ms at 1 Gbit/s. Reconnect cap 10 s: a
// LAN peer that is gone is usually rebooting. A push waits at most 1 s for
// its receiver to say it stored it (an ingest takes milliseconds; a loaded
// machine under the race detector has shown hundreds).
//
// internet: round trips up to ~400 ms (intercontinental, mobile). Raft
// timeouts at 2–3 s stay above ten round trips; 64 KiB chunks keep
// head-of-line blocking near 50 ms at 10 Mbit/s; reconnect cap 30 s; a
// push waits at most 4 s (ten round trips) for its receiver's answer.
//
// satellite: GEO links, 600 ms round trips and a few hundred kbit/s,
// bursts of loss. The election timeout is 10 s, more than 10 round trips
// (DESIGN: elections must not fire on a slow but live link); the heartbeat
// timeout is 6 s (hashicorp/raft heartbeats every timeout/10 = 600 ms, one
// round trip). 16 KiB chunks take 0.5 s at 256 kbit/s, so a flash entry waits
// at most about one round trip behind bulk data. A push waits at most 15 s
// for its receiver's answer: a push of 256 KiB (sync's default limit)
// takes about 8 s to cross at 256 kbit/s. Dials take 4 round trips
// (TCP, multistream, TLS, muxer) plus losses: 30 s. The reconnect cap is
// 2 minutes: a satellite terminal is costly and slow to wake, and hammering
// it helps nobody.
var profiles = [...]Profile{
	{
		Name:           ProfileLAN,
		MaxRTT:         20 * time.Millisecond,
		SyncInterval:   2 * time.Second,
		ChunkSize:      256 << 10,
		SessionTimeout: 10 * time.Second,
		PushTimeout:    1 * time.Second,
		DialTimeout:    5 * time.Second,
		ReconnectBase:  250 * time.Millisecond,
		ReconnectMax:   10 * time.Second,
		// 500 ms: a dead leader is noticed and replaced in about 1 s on a
		// LAN (measured: failover median 0.97 s, BENCHMARKS.md), well
		// inside the 1.5 s target; 1 s gave a 2 s median.
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		RaftIOTimeout:      1 * time.Second,
	},
	{
		Name:               ProfileInternet,
		MaxRTT:             400 * time.Millisecond,
		SyncInterval:       5 * time.Second,
		ChunkSize:          64 << 10,
		SessionTimeout:     20 * time.Second,
		PushTimeout:        4 * time.Second,
		DialTimeout:        10 * time.Second,
		ReconnectBase:      500 * time.Millisecond,
		ReconnectMax:       30 * time.Second,
		HeartbeatTimeout:   2 * time.Second,
		ElectionTimeout:    3 * time.Second,
		LeaderLeaseTimeout: 1 * time.Second,
		CommitTimeout:      100 * time.Millisecond,
		RaftIOTimeout:      2 * time.Second,
	},
	{
		Name:               ProfileSatellite,
		SyncInterval:       30 * time.Second,
		ChunkSize:          16 << 10,
		SessionTimeout:     60 * time.Second,
		PushTimeout:        15 * time.Second,
		Narrow:             true,
		DialTimeout:        30 * time.Second,
		ReconnectBase:      2 * time.Second,
		ReconnectMax:       2 * time.Minute,
		HeartbeatTimeout:   6 * time.Second,
		ElectionTimeout:    10 * time.Second,
		LeaderLeaseTimeout: 3 * time.Second,
		CommitTimeout:      300 * time.Millisecond,
		RaftIOTimeout:      10 * time.Second,
	},
}

// Profiles returns the link profiles from the fastest link to the slowest.
// The slice is the caller's.
func Profiles() []Profile {
	out := profiles // a copy: callers cannot change the package's table
	return out[:]
}

// ProfileByName returns the profile called name.
func ProfileByName(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("%w %q (profiles: %s)", ErrUnknownProfile, name, strings.Join(profileNames(), ", "))
}

// ProfileForRTT returns the profile for a link with round trip rtt: the
// fastest whose MaxRTT is at least rtt.
func ProfileForRTT(rtt time.Duration) Profile {
	for _, p := range profiles {
		if p.MaxRTT == 0 || rtt <= p.MaxRTT {
			return p
		}
	}
	return profiles[len(profiles)-1]
}

func profileNames() []string {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	return names
}
