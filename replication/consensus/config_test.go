package consensus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/replication/store"
)

func TestConfigValidate(t *testing.T) {
	_, trans := raft.NewInmemTransport("")
	good := DefaultConfig()
	good.Store, good.Identity, good.Genesis = &store.Store{}, &crypto.Identity{}, &crypto.Genesis{}
	good.Transport, good.Snapshots = trans, raft.NewInmemSnapshotStore()
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good config) = %v, want nil", err)
	}
	// Zero values stand for the defaults.
	literal := Config{Store: good.Store, Identity: good.Identity, Genesis: good.Genesis, Transport: trans, Snapshots: good.Snapshots}
	if err := literal.Validate(); err != nil {
		t.Fatalf("Validate(only the required fields) = %v, want nil", err)
	}
	if got := literal.withDefaults(); got.Timing != LANTiming || got.CheckpointEvery != time.Second || got.Now == nil || got.Logger == nil {
		t.Errorf("withDefaults: timing %+v, checkpoints every %v, clock set %v, logger set %v: want the defaults",
			got.Timing, got.CheckpointEvery, got.Now != nil, got.Logger != nil)
	}

	bad := DefaultConfig()
	bad.Timing = Timing{Heartbeat: time.Second, Election: 500 * time.Millisecond, LeaderLease: 2 * time.Second, Commit: time.Microsecond}
	bad.CheckpointEvery = -time.Second
	err := bad.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Validate(bad) = %v, want ErrConfig", err)
	}
	for _, want := range []string{
		"no store", "no identity", "no genesis", "no Raft transport", "no snapshot store",
		"commit 1µs", "leader lease 2s is longer", "election timeout 500ms is shorter", "negative CheckpointEvery",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) does not mention %q; got:\n%v", want, err)
		}
	}
	tiny := good
	tiny.Timing = Timing{Heartbeat: time.Millisecond, Election: time.Millisecond, LeaderLease: time.Millisecond, Commit: time.Millisecond}
	if err := tiny.Validate(); err == nil || !strings.Contains(err.Error(), "want each at least 5ms") {
		t.Errorf("Validate(timeouts of 1ms) = %v, want a refusal", err)
	}
	if _, err := New(bad); !errors.Is(err, ErrConfig) {
		t.Errorf("New(bad) = %v, want ErrConfig", err)
	}
}
