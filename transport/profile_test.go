package transport

import (
	"errors"
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	ps := Profiles()
	if len(ps) != 3 || ps[0].Name != ProfileLAN || ps[1].Name != ProfileInternet || ps[2].Name != ProfileSatellite {
		t.Fatalf("Profiles() = %v, want lan, internet, satellite", ps)
	}
	ps[0].Name = "changed"
	if Profiles()[0].Name != ProfileLAN {
		t.Fatalf("changing the slice Profiles returned changed the package's table")
	}
	for _, p := range Profiles() {
		if p.LeaderLeaseTimeout > p.HeartbeatTimeout {
			t.Errorf("%s: LeaderLeaseTimeout %v > HeartbeatTimeout %v (hashicorp/raft refuses it)", p.Name, p.LeaderLeaseTimeout, p.HeartbeatTimeout)
		}
		if p.ReconnectBase <= 0 || p.ReconnectMax < p.ReconnectBase {
			t.Errorf("%s: reconnect %v..%v", p.Name, p.ReconnectBase, p.ReconnectMax)
		}
		if p.ChunkSize <= 0 || p.SyncInterval <= 0 || p.SessionTimeout <= 0 || p.DialTimeout <= 0 || p.CommitTimeout <= 0 || p.RaftIOTimeout <= 0 {
			t.Errorf("%s: a zero number: %+v", p.Name, p)
		}
		// A watchdog must outlast a chunk at the link's pace plus a few
		// round trips: satellite chunk 16 KiB at 256 kbit/s is 0.5 s.
		if p.SessionTimeout < 10*p.MaxRTT {
			t.Errorf("%s: session timeout %v below 10 round trips", p.Name, p.SessionTimeout)
		}
		// A push waits for its receiver's answer a few round trips at
		// least, and well under the session timeout: that is its point.
		if p.PushTimeout < 10*p.MaxRTT || p.PushTimeout > p.SessionTimeout/2 {
			t.Errorf("%s: push timeout %v: want 10 round trips (%v) to half the session timeout (%v)", p.Name, p.PushTimeout, 10*p.MaxRTT, p.SessionTimeout/2)
		}
	}
	for _, name := range []string{ProfileLAN, ProfileInternet} {
		if p, _ := ProfileByName(name); p.ReconnectMax > 30*time.Second {
			t.Errorf("%s: reconnect cap %v, want <= 30s", name, p.ReconnectMax)
		}
	}
	sat, _ := ProfileByName(ProfileSatellite)
	if sat.ElectionTimeout < 10*600*time.Millisecond {
		t.Errorf("satellite election timeout %v, want >= 10 × 600 ms", sat.ElectionTimeout)
	}
	if _, err := ProfileByName("pigeon"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("ProfileByName(pigeon) = %v, want ErrUnknownProfile", err)
	}
}

func TestProfileForRTT(t *testing.T) {
	for _, tc := range []struct {
		rtt  time.Duration
		want string
	}{
		{0, ProfileLAN},
		{300 * time.Microsecond, ProfileLAN},
		{20 * time.Millisecond, ProfileLAN},
		{21 * time.Millisecond, ProfileInternet},
		{150 * time.Millisecond, ProfileInternet},
		{400 * time.Millisecond, ProfileInternet},
		{600 * time.Millisecond, ProfileSatellite},
		{5 * time.Second, ProfileSatellite},
	} {
		if got := ProfileForRTT(tc.rtt).Name; got != tc.want {
			t.Errorf("ProfileForRTT(%v) = %s, want %s", tc.rtt, got, tc.want)
		}
	}
}

// TestBackoff: the waits grow from the base to the cap, with jitter in
// [b/2, b), from a seeded generator.
func TestBackoff(t *testing.T) {
	seed := testSeed(t)
	rng := newTestRand(seed)
	for _, p := range Profiles() {
		var b time.Duration
		for i := range 20 {
			b = grow(b, p)
			if i == 0 && b != p.ReconnectBase {
				t.Errorf("%s: first backoff %v, want %v", p.Name, b, p.ReconnectBase)
			}
			if b > p.ReconnectMax {
				t.Fatalf("%s: backoff %v above the cap %v", p.Name, b, p.ReconnectMax)
			}
			if w := jitter(b, rng); w < b/2 || w >= b {
				t.Errorf("%s: jitter(%v) = %v, want in [b/2, b)", p.Name, b, w)
			}
		}
		if b != p.ReconnectMax {
			t.Errorf("%s: backoff after 20 failures %v, want the cap %v", p.Name, b, p.ReconnectMax)
		}
	}
}
