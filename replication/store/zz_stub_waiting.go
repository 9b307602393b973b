package store

// TEMPORARY stub of the waiting-area API (branch waiting); removed at merge.

import (
	"context"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

func (s *Store) WaitingHead(author crypto.MemberID) (log.Head, bool) { return log.Head{}, false }

func (s *Store) Cover(ctx context.Context, c log.Cover) (*IngestResult, error) {
	return &IngestResult{}, nil
}

type WaitingEntry struct {
	Entry       *log.Entry
	Conflicting bool
}

func (s *Store) WaitingOf(author crypto.MemberID) []WaitingEntry { return nil }
