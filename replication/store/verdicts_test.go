package store

import (
	"context"
	"testing"

	"github.com/crisismesh/crisismesh/replication/log"
)

// A member's entry at the largest clock the log allows must not stop
// anyone else from writing (issue 11, finding 2): honest appends go on,
// the display order stays total, and the author is charged an offence.
func TestLamportBombDoesNotStopWriters(t *testing.T) {
	n := newTestNet(t)
	dir := t.TempDir()
	s := openStore(t, dir, n, n.lu)
	mustIngest(t, s, n.keyEntry)
	mine := mustAppend(t, s, n.msg("before"))
	bomb, err := log.Build(n.fr, n.genesis.NetworkID(), log.Tip{}, log.MaxLamport-2, t0, []log.Draft{n.msg("bomb")})
	if err != nil {
		t.Fatalf("building the attacker's entry: %v", err)
	}
	if bomb[0].Header.Lamport != log.MaxLamport-1 {
		t.Fatalf("attacker's clock %d, want %d", bomb[0].Header.Lamport, uint64(log.MaxLamport-1))
	}
	if res := mustIngest(t, s, bomb...); len(res.Added) != 1 {
		t.Fatalf("the attacker's entry is valid and must be stored (one verdict everywhere): %+v", res.Rejected)
	}
	for i, text := range []string{"after 1", "after 2"} {
		es, err := s.Append(context.Background(), n.msg(text))
		if err != nil {
			t.Fatalf("honest append %d after the bomb: %v", i+1, err)
		}
		mine = append(mine, es...)
	}
	// The bomb's clock is not carried: honest entries keep their order
	// among themselves, and sort before the bomb.
	if l := mine[len(mine)-1].Header.Lamport; l >= log.MaxJump {
		t.Errorf("the honest writer's clock was dragged to %d", l)
	}
	if got := s.Offences()[n.fr.ID()]; got == 0 {
		t.Errorf("the bomb's author has no offence recorded")
	}
	if got := s.Offences()[n.lu.ID()]; got != 0 {
		t.Errorf("the honest writer has %d offences", got)
	}
	// Another node takes the honest entries after the bomb, whatever order.
	o := openStore(t, t.TempDir(), n, n.admin)
	if res := mustIngest(t, o, append(append([]*log.Entry{n.keyEntry}, mine...), bomb...)...); len(res.Rejected) != 0 {
		t.Fatalf("another node refuses: %v", res.Rejected)
	}
	if o.Digest() != s.Digest() {
		t.Error("the two nodes' digests differ")
	}
	// Reopened, the store still does not carry the bomb's clock.
	s.Close()
	s = openStore(t, dir, n, n.lu)
	if l := s.MaxLamport(); l >= log.MaxJump {
		t.Errorf("reopened: clock %d carries the bomb", l)
	}
	if _, err := s.Append(context.Background(), n.msg("after reopening")); err != nil {
		t.Errorf("append after reopening: %v", err)
	}
}
