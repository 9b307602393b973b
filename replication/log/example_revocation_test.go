package log_test

import (
	"fmt"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/log"
)

// A member revoked by an admin entry at Lamport clock 10, naming seq 2 as
// the last entry the admin saw of it.
func ExampleRevocationKeeps() {
	m := &crypto.Member{Revoked: true, FeedSeq: 2, RevokedClock: 10}
	for _, e := range []struct{ seq, lamport uint64 }{{2, 8}, {3, 9}, {4, 10}, {5, log.MaxLamport}} {
		fmt.Printf("seq %d at clock %d kept: %v\n", e.seq, e.lamport, log.RevocationKeeps(m, e.seq, e.lamport))
	}
	// Output:
	// seq 2 at clock 8 kept: true
	// seq 3 at clock 9 kept: true
	// seq 4 at clock 10 kept: false
	// seq 5 at clock 4611686018427387904 kept: false
}
