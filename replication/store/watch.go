package store

import (
	"slices"

	"github.com/crisismesh/crisismesh/replication/log"
)

// A Subscription receives the entries the store adds, in batches, right
// after they are durable. A subscriber that falls behind loses batches
// (Lagged counts them): subscriptions are a fast path, and sync's
// anti-entropy is what guarantees delivery.
type Subscription struct {
	C      <-chan []*log.Entry
	c      chan []*log.Entry
	lagged int
	s      *Store
}

// Lagged returns how many batches were dropped because the subscriber was
// slow.
func (sub *Subscription) Lagged() int {
	sub.s.mu.RLock()
	defer sub.s.mu.RUnlock()
	return sub.lagged
}

// Close ends the subscription and closes C.
func (sub *Subscription) Close() {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	if i := slices.Index(sub.s.subs, sub); i >= 0 {
		sub.s.subs = slices.Delete(sub.s.subs, i, i+1)
		close(sub.c)
	}
}

// Subscribe returns a subscription to added entries with room for buf
// batches.
func (s *Store) Subscribe(buf int) *Subscription {
	c := make(chan []*log.Entry, buf)
	sub := &Subscription{C: c, c: c, s: s}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	return sub
}

// notifyLocked hands added entries to subscribers without blocking. The
// caller holds mu.
func (s *Store) notifyLocked(added []*log.Entry) {
	for _, sub := range s.subs {
		select {
		case sub.c <- added:
		default:
			sub.lagged++
		}
	}
}
