package crisis

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// TestDeterminism is the property the Raft FSM rests on: a random sequence
// of commands, applied twice from the same start, gives identical encoded
// states and identical refusals after every step, also when the second run
// passes through a snapshot (MarshalBinary, UnmarshalState) on the way. The
// invariants of checkInvariants hold after every step, and a refused
// command leaves the state as it was.
//
// Every run prints its seed; CRISIS_SEED=n replays it and CRISIS_STEPS=n
// makes the run longer.
func TestDeterminism(t *testing.T) {
	t.Parallel()
	seed := envUint(t, "CRISIS_SEED", uint64(time.Now().UnixNano()))
	defaultSteps := uint64(300)
	if raceEnabled {
		defaultSteps = 100
	}
	steps := int(envUint(t, "CRISIS_STEPS", defaultSteps))
	t.Logf("seed %d, %d steps (replay with CRISIS_SEED=%d)", seed, steps, seed)

	c := cast(t)
	g := &generator{t: t, c: c, rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: t0}
	type result struct {
		state []byte
		err   string
	}
	var (
		log     []*SignedCommand
		metas   []Meta
		results []result
		s       State
		applied = map[string]int{}
	)
	for range steps {
		sc, meta := g.next(s, log)
		next, err := Apply(s, sc, c.roster, meta)
		switch {
		case err == nil:
			applied[string(sc.dec.Command.Kind)]++
		case !errors.Is(err, ErrRefused):
			t.Fatalf("step %d (seed %d): Apply returned %v, want nil or a refusal", len(log), seed, err)
		case string(encode(t, next)) != string(encode(t, s)):
			t.Fatalf("step %d (seed %d): refused (%v) but the state changed", len(log), seed, err)
		}
		checkInvariants(t, next)
		log, metas = append(log, sc), append(metas, meta)
		results = append(results, result{encode(t, next), fmt.Sprint(err)})
		s = next
	}
	t.Logf("applied per kind: %v", applied)

	// Replay twice: once straight, once through a snapshot every few steps.
	for _, snapshotEvery := range []int{0, 7} {
		var s State
		for i, sc := range log {
			if snapshotEvery > 0 && i%snapshotEvery == 0 {
				var err error
				if s, err = UnmarshalState(encode(t, s)); err != nil {
					t.Fatalf("snapshot at step %d: %v", i, err)
				}
			}
			next, err := Apply(s, sc, c.roster, metas[i])
			if got := (result{encode(t, next), fmt.Sprint(err)}); got.err != results[i].err || string(got.state) != string(results[i].state) {
				t.Fatalf("replay (snapshot every %d) diverges at step %d (seed %d): got %q, want %q", snapshotEvery, i, seed, got.err, results[i].err)
			}
			s = next
		}
	}
}

func envUint(t *testing.T, name string, def uint64) uint64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// generator makes plausible commands from the current state: mostly by a
// member who may issue them and for the open crisis, sometimes not, and
// now and then a resubmission, an outsider, a revoked member or another
// network, so every rule gets exercised.
type generator struct {
	t     *testing.T
	c     *testCast
	rng   *rand.Rand
	index uint64
	term  uint64
	now   time.Time
}

var (
	genTitles   = []string{"Grid outage", "DNS hijack", "Ransomware in hospitals", "Satellite jamming"}
	genServices = []string{"incident response", "forensics", "malware analysis", "threat intelligence"}
	genStates   = []string{"AT", "BE", "DE", "FR", "GR", "LU", "NL", "PL"}
	genSectors  = []string{"energy", "health", "transport", "banking", "digital-infrastructure"}
	genSigners  = map[Kind][]string{
		KindOpen:             {"cert-lu", "cyclone-lu", "commission", "enisa", "cert-eu"},
		KindAdviseLevel2:     {"cert-lu", "cert-fr"},
		KindEscalateLevel3:   {"cyclone-lu"},
		KindSetMode:          {"presidency", "commission"},
		KindDeescalate:       {"presidency"},
		KindAffected:         {"cert-lu", "cert-fr", "cyclone-lu"},
		KindSectors:          {"cert-lu", "cyclone-lu"},
		KindSeverity:         {"cert-fr", "cyclone-lu"},
		KindOutlook:          {"cert-lu"},
		KindRootCause:        {"cyclone-lu"},
		KindPhase:            {"cyclone-lu", "presidency"},
		KindReserveRequest:   {"cert-lu", "cyclone-lu"},
		KindReserveDeployed:  {"commission", "enisa"},
		KindReserveWithdrawn: {"enisa"},
		KindClose:            {"presidency", "cyclone-lu"},
	}
)

func pick[T any](rng *rand.Rand, list []T) T { return list[rng.IntN(len(list))] }

// some returns 1 to n distinct elements of list.
func some(rng *rand.Rand, list []string, n int) []string {
	perm := rng.Perm(len(list))
	out := make([]string, 1+rng.IntN(n))
	for i := range out {
		out[i] = list[perm[i]]
	}
	return out
}

func (g *generator) chance(p float64) bool { return g.rng.Float64() < p }

func (g *generator) id() ID {
	var id ID
	for i := range id {
		id[i] = byte(g.rng.Uint32())
	}
	return id
}

// next returns the next signed command and its Raft entry's Meta.
func (g *generator) next(s State, log []*SignedCommand) (*SignedCommand, Meta) {
	g.index += 1 + uint64(g.rng.IntN(3))
	if g.term == 0 || g.chance(0.05) {
		g.term++
	}
	// Leaders' clocks differ: time mostly goes on, sometimes back a little.
	step := time.Duration(g.rng.IntN(int(3*time.Hour/time.Millisecond))) * time.Millisecond
	if g.chance(0.05) {
		step = -time.Duration(g.rng.IntN(60)) * time.Second
	}
	g.now = g.now.Add(step)
	meta := Meta{Time: g.now, Term: g.term, Index: g.index}

	if len(log) > 0 && g.chance(0.04) {
		return pick(g.rng, log), meta // an offline proposal submitted twice
	}
	cmd := g.command(s)
	signer := pick(g.rng, genSigners[cmd.Kind])
	if g.chance(0.25) {
		signer = pick(g.rng, activeNames)
	}
	switch {
	case g.chance(0.02):
		signer = "cert-be" // revoked
	case g.chance(0.02):
		signer = "cert-xx" // outsider
	case g.chance(0.02):
		sc, err := Sign(g.c.ids[signer], crypto.NetworkID{7}, cmd)
		if err != nil {
			g.t.Fatal(err)
		}
		return sc, meta
	}
	return g.c.sign(g.t, signer, cmd), meta
}

func (g *generator) command(s State) Command {
	rng := g.rng
	kind := pick(rng, Kinds())
	cmd := Command{ID: g.id(), Kind: kind, Crisis: s.Crisis}
	if s.Crisis.IsZero() || g.chance(0.05) {
		cmd.Crisis = g.id() // a command for some other crisis
	}
	switch kind {
	case KindOpen:
		cmd.Crisis = ID{}
		cmd.Title, cmd.Level, cmd.Exercise = pick(rng, genTitles), Level(1+rng.IntN(3)), g.chance(0.3)
	case KindSetMode:
		cmd.Mode = Mode(rng.IntN(4))
	case KindDeescalate:
		cmd.Level = Level(rng.IntN(4))
		if s.Level > 0 && g.chance(0.8) {
			cmd.Level = s.Level - 1
		}
	case KindAffected, KindSectors:
		values := genStates
		if kind == KindSectors {
			values = genSectors
		}
		both := some(rng, values, 4)
		split := rng.IntN(len(both) + 1)
		cmd.Add, cmd.Remove = both[:split], both[split:]
	case KindSeverity:
		cmd.Value = pick(rng, Severities()).Value
	case KindOutlook:
		cmd.Value = pick(rng, Outlooks()).Value
	case KindRootCause:
		cmd.Value = pick(rng, RootCauses()).Value
	case KindPhase:
		cmd.Phase = Phase(rng.IntN(4))
	case KindReserveRequest:
		cmd.Sector, cmd.Services = pick(rng, genSectors), some(rng, genServices, 3)
		if g.chance(0.5) {
			cmd.Note = "please hurry"
		}
	case KindReserveDeployed, KindReserveWithdrawn:
		cmd.Request = g.id()
		if len(s.Requests) > 0 && g.chance(0.9) {
			cmd.Request = pick(rng, s.Requests).ID
		}
	case KindClose:
		cmd.Reason = "resolved"
		if g.chance(0.5) {
			cmd.Lessons = "keep the satellite link"
		}
	}
	return cmd
}
