package sync

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/crisismesh/crisismesh/replication/store"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Store, good.Host = &store.Store{}, struct{ host.Host }{} // Validate only looks whether they are set
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good config) = %v, want nil", err)
	}
	// Zero values stand for the defaults.
	literal := Config{Store: good.Store, Host: good.Host}
	if err := literal.Validate(); err != nil {
		t.Fatalf("Validate(only the required fields) = %v, want nil", err)
	}
	got := literal.withDefaults()
	got.Store, got.Host, got.Logger = nil, nil, nil
	if want := DefaultConfig(); got.Interval != want.Interval || got.MaxOffences != want.MaxOffences || got.PushLimit != want.PushLimit ||
		got.MaxPeerBuffer != want.MaxPeerBuffer || got.SessionQuota != want.SessionQuota || got.PushQuota != want.PushQuota {
		t.Errorf("withDefaults of a literal config = %+v, want DefaultConfig's values %+v", got, want)
	}

	bad := DefaultConfig()
	bad.Interval = -time.Second
	bad.MaxOffences = -1
	bad.PushLimit = -1
	bad.MaxPeerBuffer = 1
	bad.SessionQuota = Quota{EntriesPerSecond: 1, BytesPerSecond: 1, EntriesBurst: 0.5, BytesBurst: maxFrame}
	bad.PushQuota = Quota{EntriesPerSecond: -1, BytesPerSecond: 1, EntriesBurst: 1, BytesBurst: 1}
	err := bad.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Validate(bad) = %v, want ErrConfig", err)
	}
	for _, want := range []string{
		"no store", "no host", "negative Interval", "negative MaxOffences", "negative PushLimit", "MaxPeerBuffer 1 bytes",
		"SessionQuota: entries burst", "PushQuota: rates must be positive", "PushQuota: bytes burst",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) does not mention %q; got:\n%v", want, err)
		}
	}
	negative := good
	negative.MaxPeerBuffer = -1
	if err := negative.Validate(); err == nil || !strings.Contains(err.Error(), "negative MaxPeerBuffer") {
		t.Errorf("Validate(negative MaxPeerBuffer) = %v, want a refusal", err)
	}
	if _, err := New(bad); !errors.Is(err, ErrConfig) {
		t.Errorf("New(bad) = %v, want ErrConfig", err)
	}
}
