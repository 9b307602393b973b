package crisis

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// t0 is the time of the first test entry. It has milliseconds, so tests see
// that they survive.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 7_000_000, time.UTC)

// The test cast: one member per role, two of some, one revoked, one
// outsider. Identities cost about a millisecond each, so they are made once.
type testCast struct {
	ids      map[string]*crypto.Identity
	roles    map[string][]crypto.Role
	roster   *crypto.Roster // cert-be revoked
	network  crypto.NetworkID
	outsider *crypto.Identity
}

// castRoles are the roster's members. Every active one but admin and
// observer holds exactly one crisis role, so a role table reads plainly.
var castRoles = map[string][]crypto.Role{
	"admin":      {crypto.RoleAdmin},
	"cert-lu":    {crypto.RoleCSIRT},
	"cert-fr":    {crypto.RoleCSIRT},
	"cert-be":    {crypto.RoleCSIRT}, // revoked
	"cyclone-lu": {crypto.RoleCyclone},
	"presidency": {crypto.RolePresidency},
	"commission": {crypto.RoleCommission},
	"enisa":      {crypto.RoleENISA},
	"cert-eu":    {crypto.RoleCERTEU},
	"observer":   {crypto.RoleObserver},
}

// activeNames are the members a role table tries, in a fixed order.
var activeNames = []string{"admin", "cert-lu", "cyclone-lu", "presidency", "commission", "enisa", "cert-eu", "observer"}

var (
	castOnce sync.Once
	theCast  *testCast
	castErr  error
)

func cast(t testing.TB) *testCast {
	t.Helper()
	castOnce.Do(func() { theCast, castErr = newCast() })
	if castErr != nil {
		t.Fatalf("test cast: %v", castErr)
	}
	return theCast
}

func newCast() (*testCast, error) {
	c := &testCast{ids: map[string]*crypto.Identity{}, roles: castRoles}
	spec := crypto.GenesisSpec{Network: "crisis-test", Created: t0}
	for name, roles := range castRoles {
		id, err := crypto.NewIdentity(name, t0)
		if err != nil {
			return nil, err
		}
		c.ids[name] = id
		spec.Members = append(spec.Members, crypto.Member{Card: id.Card(), Roles: roles})
	}
	admin := c.ids["admin"]
	spec.Admins = []crypto.MemberID{admin.ID()}
	spec.Voters = []crypto.MemberID{admin.ID()}
	g, err := crypto.NewGenesis(spec, admin)
	if err != nil {
		return nil, err
	}
	u, err := crypto.NewUpdate(g.Roster(), crypto.UpdateSpec{
		Op: crypto.OpRevoke, Target: c.ids["cert-be"].ID(), Reason: "key lost", Created: t0,
	}, admin)
	if err != nil {
		return nil, err
	}
	if c.roster, err = g.Roster().Apply(u); err != nil {
		return nil, err
	}
	c.network = g.NetworkID()
	if c.outsider, err = crypto.NewIdentity("cert-xx", t0); err != nil {
		return nil, err
	}
	return c, nil
}

// idCounter makes test command IDs unique within a test binary run.
var idCounter atomic.Uint64

// newID returns a fresh, non-zero command ID. Production IDs are random;
// a counter in the first bytes (what Short shows) keeps test failures
// readable.
func newID() ID {
	var id ID
	n := idCounter.Add(1)
	for i := range 4 {
		id[3-i] = byte(n >> (8 * i))
	}
	id[15] = 0xc0
	return id
}

// sign signs cmd as the member called name (giving it a fresh ID when it
// has none) or fails the test.
func (c *testCast) sign(t testing.TB, name string, cmd Command) *SignedCommand {
	t.Helper()
	if cmd.ID.IsZero() {
		cmd.ID = newID()
	}
	id := c.ids[name]
	if name == "cert-xx" {
		id = c.outsider
	}
	if id == nil {
		t.Fatalf("no cast member %q", name)
	}
	sc, err := Sign(id, c.network, cmd)
	if err != nil {
		t.Fatalf("Sign(%s, %+v): %v", name, cmd, err)
	}
	return sc
}

// signUnchecked signs cmd without Sign's shape check, as a buggy or
// hostile member's software could, to show that Apply checks again.
func signUnchecked(t testing.TB, id *crypto.Identity, network crypto.NetworkID, cmd Command) *SignedCommand {
	t.Helper()
	body, err := marshal(&commandBody{Suite: SuiteCommand, Network: network, Signer: id.ID(), Command: cmd})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := id.Sign(crypto.ContextCommand, body)
	if err != nil {
		t.Fatal(err)
	}
	return reassemble(t, body, sig)
}

// reassemble builds a signed command from a body and a signature.
func reassemble(t testing.TB, body, sig []byte) *SignedCommand {
	t.Helper()
	sc, err := ParseSigned(signedBytes(t, body, sig))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// signedBytes encodes body and sig as a signed command's bytes, without
// any check.
func signedBytes(t testing.TB, body, sig []byte) []byte {
	t.Helper()
	raw, err := marshal(&signedWire{Body: body, Sig: sig})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// world is a state and the Raft log position it has reached, for tests
// that apply a sequence of commands.
type world struct {
	t     testing.TB
	c     *testCast
	s     State
	index uint64
	now   time.Time
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return &world{t: t, c: cast(t), now: t0}
}

// next returns the Meta of the next log entry: one index and one minute on.
func (w *world) next() Meta {
	w.index++
	w.now = w.now.Add(time.Minute)
	return Meta{Time: w.now, Term: 1, Index: w.index}
}

// try signs and applies cmd as name, keeps the new state on success and
// returns Apply's error.
func (w *world) try(name string, cmd Command) error {
	w.t.Helper()
	return w.apply(w.c.sign(w.t, name, cmd))
}

func (w *world) apply(sc *SignedCommand) error {
	w.t.Helper()
	next, err := Apply(w.s, sc, w.c.roster, w.next())
	if err == nil {
		w.s = next
	}
	return err
}

// do is try that must succeed.
func (w *world) do(name string, cmd Command) {
	w.t.Helper()
	if err := w.try(name, cmd); err != nil {
		w.t.Fatalf("%s: %s: %v", name, cmd.Kind, err)
	}
}

// open opens a crisis at level as the member who may.
func (w *world) open(level Level, exercise bool) {
	w.t.Helper()
	by := map[Level]string{1: "cert-lu", 2: "cert-lu", 3: "cyclone-lu"}[level]
	w.do(by, Command{Kind: KindOpen, Title: "Grid outage", Level: level, Exercise: exercise})
}

// at brings the open crisis to level (1–4) from level 1.
func (w *world) at(level Level) {
	w.t.Helper()
	w.open(LevelIncident, false)
	switch level {
	case LevelPotential:
		w.do("cert-lu", Command{Kind: KindAdviseLevel2, Crisis: w.s.Crisis})
	case LevelLargeScale:
		w.do("cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
	case LevelCyber:
		w.do("presidency", Command{Kind: KindSetMode, Crisis: w.s.Crisis, Mode: ModeFull})
	}
}

// request makes a Reserve request as cert-lu and returns its ID.
func (w *world) request() ID {
	w.t.Helper()
	w.do("cert-lu", Command{Kind: KindReserveRequest, Crisis: w.s.Crisis, Sector: "energy", Services: []string{"incident response"}})
	return w.s.Requests[len(w.s.Requests)-1].ID
}

// wantRefusal checks that err is a *Refusal by rule whose detail contains
// every one of parts.
func wantRefusal(t testing.TB, err error, rule string, parts ...string) {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) || !errors.Is(err, ErrRefused) {
		t.Fatalf("got error %v, want a refusal by rule %s", err, rule)
	}
	if r.Rule != rule {
		t.Fatalf("got refusal by rule %s (%s), want rule %s", r.Rule, r.Detail, rule)
	}
	for _, p := range parts {
		if !strings.Contains(r.Detail, p) {
			t.Errorf("refusal detail %q does not contain %q", r.Detail, p)
		}
	}
}

// encode marshals s or fails the test.
func encode(t testing.TB, s State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

// checkInvariants fails the test if s breaks a rule that holds after every
// command, whatever the sequence.
func checkInvariants(t testing.TB, s State) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invariant broken: %s\nstate: %s", fmt.Sprintf(format, args...), s.Summary())
	}
	if s.Status != StatusOpen && (s.Level != LevelNormal || s.Mode != ModeNone || s.Phase != PhasePreparedness) {
		fail("no open crisis but %s, mode %s, phase %s", s.Level, s.Mode, s.Phase)
	}
	if (s.Level == LevelCyber) != (s.Mode == ModeFull) {
		fail("%s with IPCR mode %s: level 4 and full mode go together", s.Level, s.Mode)
	}
	if len(s.History) > maxHistory || uint64(len(s.History)) > s.Decisions {
		fail("history of %d for %d decisions", len(s.History), s.Decisions)
	}
	if len(s.seen) > maxSeen || len(s.crises) > maxCrises {
		fail("dedupe memory of %d commands and %d crises", len(s.seen), len(s.crises))
	}
	for _, list := range [][]string{s.Affected, s.Sectors} {
		for i := 1; i < len(list); i++ {
			if list[i-1] >= list[i] {
				fail("list %v is not sorted and unique", list)
			}
		}
	}
	open := 0
	for _, r := range s.Requests {
		if !r.Deadline.Equal(r.At.Add(ReserveDeadline)) {
			fail("request %s deadline %v is not 24h after %v", r.ID.Short(), r.Deadline, r.At)
		}
		if r.Status == RequestOpen {
			open++
		}
		if r.Exercise != s.Exercise {
			fail("request %s exercise flag %v in a crisis with exercise %v", r.ID.Short(), r.Exercise, s.Exercise)
		}
	}
	if open > maxOpenRequests || len(s.Requests)-open > maxClosedRequests {
		fail("%d open and %d closed requests", open, len(s.Requests)-open)
	}
	if s.Status == StatusClosed && open > 0 {
		fail("closed crisis with %d open requests", open)
	}
	b := encode(t, s)
	back, err := UnmarshalState(b)
	if err != nil {
		fail("UnmarshalState(MarshalBinary()): %v", err)
	}
	if again := encode(t, back); string(again) != string(b) {
		fail("state does not re-encode to the same bytes")
	}
}
