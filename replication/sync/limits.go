package sync

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/crisismesh/crisismesh/replication/log"
)

// What one peer may make this node hold and do; see "Bounded resources"
// in the package doc for the values and why.
const (
	// DefaultMaxPeerBuffer is the default of Config.MaxPeerBuffer.
	DefaultMaxPeerBuffer = 64 << 20
	// maxPushesPerPeer bounds the pushes from one peer served at once; an
	// honest peer has one in flight (and its previous one may still be
	// ingesting here).
	maxPushesPerPeer = 4
	// maxCarryBytes bounds a bundle import's unsigned carry, as the
	// per-peer budget bounds a session's.
	maxCarryBytes = DefaultMaxPeerBuffer
)

// heldCost is the memory a decoded entry holds: its encoding and, copied
// out of it by the decoder, its body (the bulk of it), plus the fixed
// overhead of the structure.
func heldCost(e *log.Entry) int64 { return 2*int64(e.Size()) + 512 }

// ErrOverBudget marks a peer (or bundle) that would make this node hold
// more entry bytes in memory than its budget allows. From a peer it is
// also an offence (it wraps ErrOffence).
var ErrOverBudget = errors.New("sync: over the memory budget")

// ErrQuota marks a peer that pushed more entries or bytes per second than
// its quota allows; it is an offence (it wraps ErrOffence).
var ErrQuota = errors.New("sync: over the per-peer quota")

// Quota bounds the entries and bytes one peer sends this node per
// second: a pair of token buckets that fill at the given rates up to
// their bursts. Config.SessionQuota paces the entries of a peer's
// sessions (which this node asked for): the receiver waits for tokens
// before it reads on, and libp2p's flow control holds the sender.
// Config.PushQuota bounds its pushes (which nobody asked for): a push
// that finds too few tokens is refused and counted as an offence.
type Quota struct {
	EntriesPerSecond float64
	EntriesBurst     float64
	BytesPerSecond   float64
	BytesBurst       float64
}

// DefaultSessionQuota and DefaultPushQuota: see "Bounded resources" in
// the package doc for why.
var (
	DefaultSessionQuota = Quota{
		EntriesPerSecond: 50_000,
		EntriesBurst:     500_000,
		BytesPerSecond:   256 << 20,
		BytesBurst:       2 << 30,
	}
	DefaultPushQuota = Quota{
		EntriesPerSecond: 10_000,
		EntriesBurst:     100_000,
		BytesPerSecond:   64 << 20,
		BytesBurst:       512 << 20,
	}
)

// check names every problem of q, called name in the messages, with bad.
func (q Quota) check(name string, bad func(format string, args ...any)) {
	if q.EntriesPerSecond <= 0 || q.BytesPerSecond <= 0 {
		bad("%s: rates must be positive (entries %v/s, bytes %v/s)", name, q.EntriesPerSecond, q.BytesPerSecond)
	}
	if q.EntriesBurst < 1 {
		bad("%s: entries burst %v: want at least 1", name, q.EntriesBurst)
	}
	// The byte burst must hold one whole message, or a peer could never
	// push one.
	if q.BytesBurst < float64(maxFrame) {
		bad("%s: bytes burst %v: want at least %d (one message)", name, q.BytesBurst, maxFrame)
	}
}

// bucket is a token bucket; the Service's mutex guards it.
type bucket struct {
	tokens float64
	last   time.Time
}

// refill adds what the rate earned since the last call, up to burst.
func (b *bucket) refill(now time.Time, rate, burst float64) {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+rate*now.Sub(b.last).Seconds())
	}
	b.last = now
}

// rate is a quota's pair of buckets.
type rate struct{ entries, bytes bucket }

// peerLimits is what one peer uses of its budget and quota. Sessions and
// pushes have buckets of their own: a session paced into debt (a long
// catch-up) must not make the peer's next push look like a flood.
type peerLimits struct {
	held     int64 // bytes of entries from the peer held in memory
	pushes   int   // push streams from the peer being served
	sessions rate
	pushed   rate
}

func (svc *Service) limitsLocked(p peer.ID) *peerLimits {
	l := svc.limits[p]
	if l == nil {
		l = &peerLimits{}
		svc.limits[p] = l
	}
	return l
}

// hold changes by delta the bytes of entries from p held in memory. A
// rise past the per-peer budget is refused (nothing changes) with an
// error wrapping ErrOverBudget and ErrOffence; a fall always succeeds.
// what describes what the peer's entries are held for, for the error.
func (svc *Service) hold(p peer.ID, delta int64, what string) error {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	l := svc.limitsLocked(p)
	if delta > 0 && l.held+delta > svc.cfg.MaxPeerBuffer {
		return fmt.Errorf("%w: %w: %s would make this node hold %d bytes of the peer's entries in memory, its budget is %d bytes",
			ErrOffence, ErrOverBudget, what, l.held+delta, svc.cfg.MaxPeerBuffer)
	}
	l.held += delta
	return nil
}

// take takes n entries of size bytes from p's session quota (pace) or
// push quota. If the buckets hold
// enough it returns 0. Else, with pace, it takes them anyway (the buckets
// go into debt) and returns how long to wait before reading on; without
// pace it takes nothing and returns an error wrapping ErrQuota and
// ErrOffence.
func (svc *Service) take(p peer.ID, n, size int, pace bool) (time.Duration, error) {
	q := svc.cfg.PushQuota
	if pace {
		q = svc.cfg.SessionQuota
	}
	now := time.Now()
	svc.mu.Lock()
	defer svc.mu.Unlock()
	l := svc.limitsLocked(p)
	r := &l.pushed
	if pace {
		r = &l.sessions
	}
	r.entries.refill(now, q.EntriesPerSecond, q.EntriesBurst)
	r.bytes.refill(now, q.BytesPerSecond, q.BytesBurst)
	ne, nb := float64(n), float64(size)
	if r.entries.tokens >= ne && r.bytes.tokens >= nb {
		r.entries.tokens -= ne
		r.bytes.tokens -= nb
		return 0, nil
	}
	if !pace {
		return 0, fmt.Errorf("%w: %w: pushed %d entries (%d bytes) beyond its quota of %.0f entries and %.0f bytes per second (bursts %.0f and %.0f); the push was refused",
			ErrOffence, ErrQuota, n, size, q.EntriesPerSecond, q.BytesPerSecond, q.EntriesBurst, q.BytesBurst)
	}
	r.entries.tokens -= ne
	r.bytes.tokens -= nb
	wait := max(-r.entries.tokens/q.EntriesPerSecond, -r.bytes.tokens/q.BytesPerSecond, 0)
	return time.Duration(wait * float64(time.Second)), nil
}

// startPush counts a push stream from p being served; it reports false
// (and counts nothing) if p already has maxPushesPerPeer of them.
func (svc *Service) startPush(p peer.ID) bool {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	l := svc.limitsLocked(p)
	if l.pushes >= maxPushesPerPeer {
		return false
	}
	l.pushes++
	return true
}

func (svc *Service) endPush(p peer.ID) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.limitsLocked(p).pushes--
}

// startResponding marks a session p started with us as running; it
// reports false if one already runs.
func (svc *Service) startResponding(p peer.ID) bool {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	return svc.transfers.startResponding(p)
}

func (svc *Service) endResponding(p peer.ID) {
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.transfers.endResponding(p)
}

// membersOnly drops from f, a frontier a peer sent, the authors that are
// not members of our roster. What we remember of peers' frontiers (their
// stats, the transfers incoming) then grows with the roster, not with
// what a peer makes up: a frontier message can name thousands of authors,
// and offer answers add up. An honest peer names a member we do not know
// yet only until the roster entry that admits it reaches us; the next
// exchange after that counts it.
func (svc *Service) membersOnly(f log.Frontier) {
	r := svc.cfg.Store.Roster()
	for a := range f {
		if _, ok := r.Member(a); !ok {
			delete(f, a)
		}
	}
}
