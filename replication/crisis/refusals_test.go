package crisis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
)

// TestRefusals covers every refusal rule that is about the state or the
// command's content (the role rule has TestRoles).
func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(w *world)
		by    string
		cmd   func(s State) Command
		rule  string
		parts []string
	}{
		{
			name: "no crisis", setup: func(*world) {}, by: "cyclone-lu",
			cmd:  func(State) Command { return Command{Kind: KindEscalateLevel3, Crisis: newID()} },
			rule: RuleNoCrisis, parts: []string{"no crisis is open"},
		},
		{
			name: "closed crisis",
			setup: func(w *world) {
				w.open(1, false)
				w.do("cyclone-lu", Command{Kind: KindClose, Crisis: w.s.Crisis, Reason: "false alarm"})
			},
			by:   "cyclone-lu",
			cmd:  func(s State) Command { return Command{Kind: KindEscalateLevel3, Crisis: s.Crisis} },
			rule: RuleNoCrisis, parts: []string{"was closed"},
		},
		{
			name: "other crisis", setup: func(w *world) { w.open(1, false) }, by: "cyclone-lu",
			cmd:  func(State) Command { return Command{Kind: KindEscalateLevel3, Crisis: newID()} },
			rule: RuleCrisis, parts: []string{"the open crisis is", "Grid outage"},
		},
		{
			name: "already open", setup: func(w *world) { w.open(1, false) }, by: "cert-fr",
			cmd:  func(State) Command { return Command{Kind: KindOpen, Title: "Second", Level: 1} },
			rule: RuleAlreadyOpen, parts: []string{"crisis", "Grid outage", "closes it first"},
		},
		{
			name: "exercise during a real crisis", setup: func(w *world) { w.open(1, false) }, by: "cert-fr",
			cmd:  func(State) Command { return Command{Kind: KindOpen, Title: "Drill", Level: 1, Exercise: true} },
			rule: RuleAlreadyOpen,
		},
		{
			name: "exercise during an exercise", setup: func(w *world) { w.open(1, true) }, by: "cert-fr",
			cmd:  func(State) Command { return Command{Kind: KindOpen, Title: "Drill", Level: 1, Exercise: true} },
			rule: RuleAlreadyOpen, parts: []string{"exercise"},
		},
		{
			name: "advise level 2 at level 2", setup: func(w *world) { w.at(2) }, by: "cert-lu",
			cmd:  func(s State) Command { return Command{Kind: KindAdviseLevel2, Crisis: s.Crisis} },
			rule: RuleNoChange, parts: []string{"already at level 2"},
		},
		{
			name: "advise level 2 at level 3", setup: func(w *world) { w.at(3) }, by: "cert-lu",
			cmd:  func(s State) Command { return Command{Kind: KindAdviseLevel2, Crisis: s.Crisis} },
			rule: RuleLevel, parts: []string{"would lower it", "de-escalate instead"},
		},
		{
			name: "escalate to 3 at level 4", setup: func(w *world) { w.at(4) }, by: "cyclone-lu",
			cmd:  func(s State) Command { return Command{Kind: KindEscalateLevel3, Crisis: s.Crisis} },
			rule: RuleLevel, parts: []string{"level 4"},
		},
		{
			name: "full at full", setup: func(w *world) { w.at(4) }, by: "presidency",
			cmd:  func(s State) Command { return Command{Kind: KindSetMode, Crisis: s.Crisis, Mode: ModeFull} },
			rule: RuleNoChange,
		},
		{
			name: "monitoring at level 4", setup: func(w *world) { w.at(4) }, by: "commission",
			cmd:  func(s State) Command { return Command{Kind: KindSetMode, Crisis: s.Crisis, Mode: ModeMonitoring} },
			rule: RuleMode, parts: []string{"full mode", "de-escalates to level 3"},
		},
		{
			name: "same mode", setup: func(w *world) { w.open(1, false) }, by: "commission",
			cmd:  func(s State) Command { return Command{Kind: KindSetMode, Crisis: s.Crisis, Mode: ModeNone} },
			rule: RuleNoChange,
		},
		{
			name: "stale de-escalation", setup: func(w *world) { w.at(3) }, by: "presidency",
			cmd:  func(s State) Command { return Command{Kind: KindDeescalate, Crisis: s.Crisis, Level: 1} },
			rule: RuleLevel, parts: []string{"goes down from level 2", "crisis is at level 3"},
		},
		{
			name: "de-escalate below 0",
			setup: func(w *world) {
				w.open(1, false)
				w.do("cert-lu", Command{Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 0})
			},
			by:   "presidency",
			cmd:  func(s State) Command { return Command{Kind: KindDeescalate, Crisis: s.Crisis, Level: 0} },
			rule: RuleLevel, parts: []string{"nothing to de-escalate"},
		},
		{
			name: "affected no change",
			setup: func(w *world) {
				w.open(1, false)
				w.do("cert-lu", Command{Kind: KindAffected, Crisis: w.s.Crisis, Add: []string{"LU"}})
			},
			by: "cert-fr",
			cmd: func(s State) Command {
				return Command{Kind: KindAffected, Crisis: s.Crisis, Add: []string{"LU"}, Remove: []string{"FR"}}
			},
			rule: RuleNoChange,
		},
		{
			name: "same severity",
			setup: func(w *world) {
				w.open(1, false)
				w.do("cert-lu", Command{Kind: KindSeverity, Crisis: w.s.Crisis, Value: "red"})
			},
			by:   "cyclone-lu",
			cmd:  func(s State) Command { return Command{Kind: KindSeverity, Crisis: s.Crisis, Value: "red"} },
			rule: RuleNoChange,
		},
		{
			name: "same phase", setup: func(w *world) { w.open(1, false) }, by: "cyclone-lu",
			cmd:  func(s State) Command { return Command{Kind: KindPhase, Crisis: s.Crisis, Phase: PhaseDetection} },
			rule: RuleNoChange,
		},
		{
			name: "deploy an unknown request", setup: func(w *world) { w.open(1, false); w.request() }, by: "enisa",
			cmd:  func(s State) Command { return Command{Kind: KindReserveDeployed, Crisis: s.Crisis, Request: newID()} },
			rule: RuleRequest, parts: []string{"has no Reserve request"},
		},
		{
			name: "deploy a closed request",
			setup: func(w *world) {
				w.open(1, false)
				id := w.request()
				w.do("commission", Command{Kind: KindReserveWithdrawn, Crisis: w.s.Crisis, Request: id, Note: "not needed"})
			},
			by: "enisa",
			cmd: func(s State) Command {
				return Command{Kind: KindReserveDeployed, Crisis: s.Crisis, Request: s.Requests[0].ID}
			},
			rule: RuleRequest, parts: []string{"already withdrawn", "by commission"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tt.setup(w)
			before := encode(t, w.s)
			err := w.try(tt.by, tt.cmd(w.s))
			wantRefusal(t, err, tt.rule, tt.parts...)
			if string(encode(t, w.s)) != string(before) {
				t.Error("a refused command changed the state")
			}
		})
	}
}

// TestShapeRefusals covers the rules that need no state, both in Sign
// (which refuses to sign) and in Apply (which does not trust the signer's
// software).
func TestShapeRefusals(t *testing.T) {
	t.Parallel()
	crisisID := newID()
	tests := []struct {
		name  string
		cmd   Command
		rule  string
		parts []string
	}{
		{"zero ID", Command{Kind: KindOpen, Title: "t", Level: 1}, RuleShape, []string{"command ID is zero"}},
		{"unknown kind", Command{ID: newID(), Kind: "panic"}, RuleKind, []string{`"panic"`}},
		{"open at level 0", Command{ID: newID(), Kind: KindOpen, Title: "t"}, RuleLevel, []string{"level 1, 2 or 3"}},
		{"open at level 4", Command{ID: newID(), Kind: KindOpen, Title: "t", Level: 4}, RuleLevel, []string{"not 4"}},
		{"open at level 9", Command{ID: newID(), Kind: KindOpen, Title: "t", Level: 9}, RuleLevel, nil},
		{"open without title", Command{ID: newID(), Kind: KindOpen, Level: 1}, RuleShape, []string{"title is empty"}},
		{"title too long", Command{ID: newID(), Kind: KindOpen, Title: strings.Repeat("é", maxTitle+1), Level: 1}, RuleShape, []string{"201 characters"}},
		{"title on two lines", Command{ID: newID(), Kind: KindOpen, Title: "a\nb", Level: 1}, RuleShape, []string{"control character"}},
		{"open naming a crisis", Command{ID: newID(), Kind: KindOpen, Title: "t", Level: 1, Crisis: crisisID}, RuleShape, []string{"carries no crisis"}},
		{"escalate without crisis", Command{ID: newID(), Kind: KindEscalateLevel3}, RuleShape, []string{"names the crisis"}},
		{"escalate with extra fields", Command{ID: newID(), Kind: KindEscalateLevel3, Crisis: crisisID, Title: "x", Level: 3}, RuleShape, []string{"carries no title, level"}},
		{"unknown mode", Command{ID: newID(), Kind: KindSetMode, Crisis: crisisID, Mode: 7}, RuleMode, nil},
		{"de-escalate to 4", Command{ID: newID(), Kind: KindDeescalate, Crisis: crisisID, Level: 4}, RuleLevel, nil},
		{"unknown phase", Command{ID: newID(), Kind: KindPhase, Crisis: crisisID, Phase: 9}, RulePhase, nil},
		{"affected: nothing", Command{ID: newID(), Kind: KindAffected, Crisis: crisisID}, RuleShape, []string{"at least one"}},
		{"affected: add and remove", Command{ID: newID(), Kind: KindAffected, Crisis: crisisID, Add: []string{"LU"}, Remove: []string{"LU"}}, RuleShape, []string{"named twice"}},
		{"sectors: twice", Command{ID: newID(), Kind: KindSectors, Crisis: crisisID, Add: []string{"energy", "energy"}}, RuleShape, []string{"named twice"}},
		{"severity empty", Command{ID: newID(), Kind: KindSeverity, Crisis: crisisID}, RuleTaxonomy, nil},
		{"request without services", Command{ID: newID(), Kind: KindReserveRequest, Crisis: crisisID, Sector: "energy"}, RuleShape, []string{"1 to 16 services"}},
		{"request with a service twice", Command{ID: newID(), Kind: KindReserveRequest, Crisis: crisisID, Sector: "energy", Services: []string{"a", "a"}}, RuleShape, []string{"named twice"}},
		{"request note too long", Command{ID: newID(), Kind: KindReserveRequest, Crisis: crisisID, Sector: "energy", Services: []string{"a"}, Note: strings.Repeat("n", maxNote+1)}, RuleShape, nil},
		{"deploy without request", Command{ID: newID(), Kind: KindReserveDeployed, Crisis: crisisID}, RuleShape, []string{"names the Reserve request"}},
		{"close without reason", Command{ID: newID(), Kind: KindClose, Crisis: crisisID}, RuleShape, []string{"reason is empty"}},
		{"close with a bell", Command{ID: newID(), Kind: KindClose, Crisis: crisisID, Reason: "done\a"}, RuleShape, []string{"U+0007"}},
		{"unknown member state", Command{ID: newID(), Kind: KindAffected, Crisis: crisisID, Add: []string{"LU", "CH"}}, RuleMemberState, []string{`"CH"`, "ISO 3166-1 alpha-2"}},
		{"EL for Greece", Command{ID: newID(), Kind: KindAffected, Crisis: crisisID, Add: []string{"EL"}}, RuleMemberState, []string{"write GR"}},
		{"lower-case member state", Command{ID: newID(), Kind: KindAffected, Crisis: crisisID, Remove: []string{"lu"}}, RuleMemberState, []string{"upper case: LU"}},
		{"unknown sector", Command{ID: newID(), Kind: KindSectors, Crisis: crisisID, Add: []string{"bakery"}}, RuleTaxonomy, []string{`"bakery"`, "energy"}},
		{"unknown severity", Command{ID: newID(), Kind: KindSeverity, Crisis: crisisID, Value: "purple"}, RuleTaxonomy, []string{"red, yellow, green, white"}},
		{"unknown outlook", Command{ID: newID(), Kind: KindOutlook, Crisis: crisisID, Value: "sunny"}, RuleTaxonomy, []string{"improving, stable, worsening"}},
		{"unknown root cause", Command{ID: newID(), Kind: KindRootCause, Crisis: crisisID, Value: "aliens"}, RuleTaxonomy, []string{"malicious-actions"}},
		{"a subsector is not a sector", Command{ID: newID(), Kind: KindReserveRequest, Crisis: crisisID, Sector: "electricity", Services: []string{"x"}}, RuleTaxonomy, nil},
	}
	c := cast(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Sign(c.ids["cyclone-lu"], c.network, tt.cmd)
			wantRefusal(t, err, tt.rule, tt.parts...)
			// Signed as a careless client would, Apply must refuse it too.
			sc := signUnchecked(t, c.ids["cyclone-lu"], c.network, tt.cmd)
			_, err = Apply(State{}, sc, c.roster, Meta{Time: t0, Index: 1})
			wantRefusal(t, err, tt.rule, tt.parts...)
		})
	}
}

// TestAuthRefusals covers who may sign at all: the network, the signature,
// membership and revocation.
// TestSignRefusesInvalidUTF8 checks text that CBOR itself cannot carry:
// Sign refuses it, and such bytes never parse.
func TestSignRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	c := cast(t)
	cmd := Command{ID: newID(), Kind: KindOpen, Title: "\xff", Level: 1}
	_, err := Sign(c.ids["cert-lu"], c.network, cmd)
	wantRefusal(t, err, RuleShape, "UTF-8")
	body, err := marshal(&commandBody{Suite: SuiteCommand, Network: c.network, Command: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSigned(signedBytes(t, body, []byte{1})); !errors.Is(err, crypto.ErrMalformed) {
		t.Errorf("ParseSigned(invalid UTF-8 title) = %v, want crypto.ErrMalformed", err)
	}
}

func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	c := cast(t)
	open := Command{Kind: KindOpen, Title: "Grid outage", Level: 1}
	meta := Meta{Time: t0, Term: 1, Index: 1}

	t.Run("wrong network", func(t *testing.T) {
		sc, err := Sign(c.ids["cert-lu"], crypto.NetworkID{0xaa}, Command{ID: newID(), Kind: KindOpen, Title: "x", Level: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Apply(State{}, sc, c.roster, meta)
		wantRefusal(t, err, RuleNetwork, "crisis-test", "aa00")
	})
	t.Run("outsider", func(t *testing.T) {
		_, err := Apply(State{}, c.sign(t, "cert-xx", open), c.roster, meta)
		wantRefusal(t, err, RuleMember, "not a member of network crisis-test")
	})
	t.Run("revoked", func(t *testing.T) {
		_, err := Apply(State{}, c.sign(t, "cert-be", open), c.roster, meta)
		wantRefusal(t, err, RuleRevoked, "cert-be", "key lost", "roster version 1")
	})
	t.Run("forged signature", func(t *testing.T) {
		sc := c.sign(t, "cert-lu", open)
		sig := append([]byte(nil), sc.sig...)
		sig[len(sig)-1] ^= 1 // the Ed25519 half
		forged := reassemble(t, sc.body, sig)
		_, err := Apply(State{}, forged, c.roster, meta)
		wantRefusal(t, err, RuleSignature, "cert-lu", "Ed25519")
		if !errors.Is(err, crypto.ErrBadSignature) {
			t.Errorf("errors.Is(%v, crypto.ErrBadSignature) = false", err)
		}
	})
	t.Run("altered command", func(t *testing.T) {
		// A leader that raises the level of a member's command: the body
		// changes, the signature does not.
		sc := c.sign(t, "cyclone-lu", open)
		body := sc.dec
		body.Command.Level = 3
		b, err := marshal(&body)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Apply(State{}, reassemble(t, b, sc.sig), c.roster, meta)
		wantRefusal(t, err, RuleSignature, "altered or forged")
	})
	t.Run("claimed signer", func(t *testing.T) {
		// cert-lu signs a command that names cyclone-lu as its signer.
		body := commandBody{Suite: SuiteCommand, Network: c.network, Signer: c.ids["cyclone-lu"].ID(), Command: Command{ID: newID(), Kind: KindOpen, Title: "x", Level: 3}}
		b, err := marshal(&body)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := c.ids["cert-lu"].Sign(crypto.ContextCommand, b)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Apply(State{}, reassemble(t, b, sig), c.roster, meta)
		wantRefusal(t, err, RuleSignature, "cyclone-lu")
	})
	t.Run("wrong context", func(t *testing.T) {
		sc := c.sign(t, "cert-lu", open)
		sig, err := c.ids["cert-lu"].Sign(crypto.ContextEntry, sc.body)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Apply(State{}, reassemble(t, sc.body, sig), c.roster, meta)
		wantRefusal(t, err, RuleSignature)
	})
	t.Run("no command", func(t *testing.T) {
		_, err := Apply(State{}, nil, c.roster, meta)
		wantRefusal(t, err, RuleMalformed)
		_, err = Apply(State{}, &SignedCommand{}, c.roster, meta)
		wantRefusal(t, err, RuleMalformed)
	})
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	first := w.c.sign(t, "cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
	if err := w.apply(first); err != nil {
		t.Fatal(err)
	}
	t.Run("same bytes", func(t *testing.T) {
		_, err := Apply(w.s, first, w.c.roster, Meta{Time: t0.Add(time.Hour), Index: w.index + 1})
		wantRefusal(t, err, RuleDuplicate, first.ID().String())
	})
	t.Run("same ID signed again", func(t *testing.T) {
		// Hedged signatures differ each time: dedupe is by ID, not bytes.
		again := w.c.sign(t, "presidency", Command{ID: first.ID(), Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 2})
		_, err := Apply(w.s, again, w.c.roster, Meta{Time: t0.Add(time.Hour), Index: w.index + 1})
		wantRefusal(t, err, RuleDuplicate)
	})
	t.Run("open replayed after close", func(t *testing.T) {
		w := newWorld(t)
		openCmd := w.c.sign(t, "cert-lu", Command{Kind: KindOpen, Title: "Grid outage", Level: 1})
		if err := w.apply(openCmd); err != nil {
			t.Fatal(err)
		}
		w.do("cyclone-lu", Command{Kind: KindClose, Crisis: w.s.Crisis, Reason: "over"})
		wantRefusal(t, w.apply(openCmd), RuleDuplicate)
	})
	t.Run("refused commands are not remembered", func(t *testing.T) {
		w := newWorld(t)
		w.open(1, false)
		early := w.c.sign(t, "presidency", Command{Kind: KindDeescalate, Crisis: w.s.Crisis, Level: 2})
		wantRefusal(t, w.apply(early), RuleLevel)
		w.do("cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
		if err := w.apply(early); err != nil {
			t.Fatalf("resubmitted once the state allows it: %v", err)
		}
		if w.s.Level != LevelPotential {
			t.Errorf("level %s, want 2", w.s.Level)
		}
	})
}

func TestBadCall(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	sc := w.c.sign(t, "cyclone-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
	for _, tt := range []struct {
		name   string
		roster *crypto.Roster
		meta   Meta
	}{
		{"no roster", nil, Meta{Time: t0, Index: 99}},
		{"no time", w.c.roster, Meta{Index: 99}},
		{"time before 1970", w.c.roster, Meta{Time: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), Index: 99}},
		{"index not after the last", w.c.roster, Meta{Time: t0, Index: w.s.Index}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Apply(w.s, sc, tt.roster, tt.meta)
			if !errors.Is(err, ErrBadCall) || errors.Is(err, ErrRefused) {
				t.Fatalf("got %v, want ErrBadCall and not a refusal", err)
			}
			if got.Index != w.s.Index {
				t.Error("state changed")
			}
		})
	}
}

func TestCloseAtLevel4NeedsPresidency(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.at(4)
	err := w.try("cyclone-lu", Command{Kind: KindClose, Crisis: w.s.Crisis, Reason: "done"})
	wantRefusal(t, err, RuleRole, "needs role presidency; cyclone-lu has cyclone")
}

func TestRequestLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.open(1, false)
	for range maxOpenRequests {
		w.s.Requests = append(w.s.Requests, Request{ID: newID(), Sector: "energy", Services: []string{"x"}, At: t0, Deadline: t0.Add(ReserveDeadline)})
	}
	err := w.try("cert-lu", Command{Kind: KindReserveRequest, Crisis: w.s.Crisis, Sector: "energy", Services: []string{"y"}})
	wantRefusal(t, err, RuleLimit, "256 Reserve requests are open")
}
