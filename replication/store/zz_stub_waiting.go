package store

// TEMPORARY stub of the waiting-area API (branch waiting, see
// /work/briefs/waiting.md); removed when that branch is merged.

import (
	"context"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// WaitingEntry is an entry this store holds apart from the feed, waiting
// for its composite signature.
type WaitingEntry struct {
	Entry       *log.Entry
	Since       time.Time
	Conflicting bool
}

func (s *Store) Waiting() []WaitingEntry                         { return nil }
func (s *Store) WaitingOf(author crypto.MemberID) []WaitingEntry { return nil }
func (s *Store) WaitingHead(author crypto.MemberID) (log.Head, bool) {
	return log.Head{}, false
}

func (s *Store) Cover(ctx context.Context, c log.Cover) (*IngestResult, error) {
	return &IngestResult{}, nil
}
