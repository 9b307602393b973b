package crisis

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRoles runs every row of the table in the package doc against every
// active member of the cast: the roles the row names succeed, every other
// member is refused by rule role with a message that names the roles
// needed and the roles the member has.
func TestRoles(t *testing.T) {
	t.Parallel()
	everyOpener := []string{"cert-lu", "cyclone-lu", "commission", "enisa", "cert-eu"}
	tests := []struct {
		name    string
		setup   func(w *world)
		cmd     func(s State) Command
		allowed []string
		needs   string // what the refusal says is needed
		check   func(t *testing.T, before, after State)
	}{
		{
			name:    "open at level 1",
			setup:   func(w *world) {},
			cmd:     func(State) Command { return Command{Kind: KindOpen, Title: "Grid outage", Level: 1} },
			allowed: everyOpener,
			needs:   "open a crisis at level 1 needs one of the roles csirt, cyclone, commission, enisa or cert-eu",
			check: func(t *testing.T, _, s State) {
				if s.Status != StatusOpen || s.Level != LevelIncident || s.Phase != PhaseDetection || s.Mode != ModeNone {
					t.Errorf("after open: %s", s.Summary())
				}
			},
		},
		{
			name:    "open at level 2",
			setup:   func(w *world) {},
			cmd:     func(State) Command { return Command{Kind: KindOpen, Title: "Grid outage", Level: 2} },
			allowed: []string{"cert-lu"},
			needs:   "open a crisis at level 2 needs role csirt",
		},
		{
			name:    "open at level 3",
			setup:   func(w *world) {},
			cmd:     func(State) Command { return Command{Kind: KindOpen, Title: "Grid outage", Level: 3} },
			allowed: []string{"cyclone-lu"},
			needs:   "open a crisis at level 3 needs role cyclone",
		},
		{
			name:    "advise level 2",
			setup:   func(w *world) { w.open(1, false) },
			cmd:     func(s State) Command { return Command{Kind: KindAdviseLevel2, Crisis: s.Crisis} },
			allowed: []string{"cert-lu"},
			needs:   "advise level 2 needs role csirt",
			check:   wantLevel(LevelPotential, ModeNone),
		},
		{
			name:    "escalate to level 3",
			setup:   func(w *world) { w.at(2) },
			cmd:     func(s State) Command { return Command{Kind: KindEscalateLevel3, Crisis: s.Crisis} },
			allowed: []string{"cyclone-lu"},
			needs:   "escalate to level 3 needs role cyclone",
			check:   wantLevel(LevelLargeScale, ModeNone),
		},
		{
			name:    "set IPCR mode monitoring",
			setup:   func(w *world) { w.open(1, false) },
			cmd:     func(s State) Command { return Command{Kind: KindSetMode, Crisis: s.Crisis, Mode: ModeMonitoring} },
			allowed: []string{"presidency", "commission"},
			needs:   "set IPCR mode monitoring needs role presidency or commission",
			check:   wantLevel(LevelIncident, ModeMonitoring),
		},
		{
			name:    "set IPCR mode information-sharing",
			setup:   func(w *world) { w.at(3) },
			cmd:     func(s State) Command { return Command{Kind: KindSetMode, Crisis: s.Crisis, Mode: ModeInfoSharing} },
			allowed: []string{"presidency", "commission"},
			needs:   "set IPCR mode information-sharing needs role presidency or commission",
			check:   wantLevel(LevelLargeScale, ModeInfoSharing),
		},
		{
			name: "set IPCR mode none",
			setup: func(w *world) {
				w.open(1, false)
				w.do("commission", Command{Kind: KindSetMode, Crisis: w.s.Crisis, Mode: ModeMonitoring})
			},
			cmd:     func(s State) Command { return Command{Kind: KindSetMode, Crisis: s.Crisis, Mode: ModeNone} },
			allowed: []string{"presidency", "commission"},
			needs:   "set IPCR mode none needs role presidency or commission",
			check:   wantLevel(LevelIncident, ModeNone),
		},
		{
			name:    "set IPCR mode full",
			setup:   func(w *world) { w.at(3) },
			cmd:     func(s State) Command { return Command{Kind: KindSetMode, Crisis: s.Crisis, Mode: ModeFull} },
			allowed: []string{"presidency"},
			needs:   "set IPCR mode full (level 4, cyber crisis) needs role presidency",
			check:   wantLevel(LevelCyber, ModeFull),
		},
		{
			name:    "de-escalate from level 4",
			setup:   func(w *world) { w.at(4) },
			cmd:     func(s State) Command { return Command{Kind: KindDeescalate, Crisis: s.Crisis, Level: 3} },
			allowed: []string{"presidency"},
			needs:   "de-escalate from level 4 needs role presidency",
			check:   wantLevel(LevelLargeScale, ModeInfoSharing),
		},
		{
			name:    "de-escalate from level 3",
			setup:   func(w *world) { w.at(3) },
			cmd:     func(s State) Command { return Command{Kind: KindDeescalate, Crisis: s.Crisis, Level: 2} },
			allowed: []string{"cyclone-lu", "presidency"},
			needs:   "de-escalate from level 3 needs role cyclone or presidency",
			check:   wantLevel(LevelPotential, ModeNone),
		},
		{
			name:    "de-escalate from level 2",
			setup:   func(w *world) { w.at(2) },
			cmd:     func(s State) Command { return Command{Kind: KindDeescalate, Crisis: s.Crisis, Level: 1} },
			allowed: []string{"cert-lu", "presidency"},
			needs:   "de-escalate from level 2 needs role csirt or presidency",
			check:   wantLevel(LevelIncident, ModeNone),
		},
		{
			name:    "de-escalate from level 1",
			setup:   func(w *world) { w.at(1) },
			cmd:     func(s State) Command { return Command{Kind: KindDeescalate, Crisis: s.Crisis, Level: 0} },
			allowed: append(slices.Clone(everyOpener), "presidency"),
			needs:   "de-escalate from level 1 needs one of the roles csirt, cyclone, commission, enisa, cert-eu or presidency",
			check: func(t *testing.T, _, s State) {
				if s.Status != StatusOpen || s.Level != LevelNormal {
					t.Errorf("after de-escalating from 1: %s, want an open crisis at level 0", s.Summary())
				}
			},
		},
		{
			name:  "affected member states",
			setup: func(w *world) { w.open(1, false) },
			cmd: func(s State) Command {
				return Command{Kind: KindAffected, Crisis: s.Crisis, Add: []string{"LU", "BE"}}
			},
			allowed: []string{"cert-lu", "cyclone-lu"},
			needs:   "change the affected member states needs role csirt or cyclone",
			check: func(t *testing.T, _, s State) {
				if !slices.Equal(s.Affected, []string{"BE", "LU"}) {
					t.Errorf("affected = %v, want [BE LU]", s.Affected)
				}
			},
		},
		{
			name:  "sectors impacted",
			setup: func(w *world) { w.open(1, false) },
			cmd: func(s State) Command {
				return Command{Kind: KindSectors, Crisis: s.Crisis, Add: []string{"energy", "health"}}
			},
			allowed: []string{"cert-lu", "cyclone-lu"},
			needs:   "change the sectors impacted needs role csirt or cyclone",
			check: func(t *testing.T, _, s State) {
				if !slices.Equal(s.Sectors, []string{"energy", "health"}) {
					t.Errorf("sectors = %v, want [energy health]", s.Sectors)
				}
			},
		},
		{
			name:    "impact severity",
			setup:   func(w *world) { w.open(1, false) },
			cmd:     func(s State) Command { return Command{Kind: KindSeverity, Crisis: s.Crisis, Value: "red"} },
			allowed: []string{"cert-lu", "cyclone-lu"},
			needs:   "set the impact severity needs role csirt or cyclone",
			check:   wantField(func(s State) string { return s.Severity }, "red"),
		},
		{
			name:    "outlook",
			setup:   func(w *world) { w.open(1, false) },
			cmd:     func(s State) Command { return Command{Kind: KindOutlook, Crisis: s.Crisis, Value: "worsening"} },
			allowed: []string{"cert-lu", "cyclone-lu"},
			needs:   "set the outlook needs role csirt or cyclone",
			check:   wantField(func(s State) string { return s.Outlook }, "worsening"),
		},
		{
			name:  "root cause",
			setup: func(w *world) { w.open(1, false) },
			cmd: func(s State) Command {
				return Command{Kind: KindRootCause, Crisis: s.Crisis, Value: "malicious-actions"}
			},
			allowed: []string{"cert-lu", "cyclone-lu"},
			needs:   "set the root cause needs role csirt or cyclone",
			check:   wantField(func(s State) string { return s.RootCause }, "malicious-actions"),
		},
		{
			name:    "phase change",
			setup:   func(w *world) { w.open(1, false) },
			cmd:     func(s State) Command { return Command{Kind: KindPhase, Crisis: s.Crisis, Phase: PhaseResponse} },
			allowed: []string{"cyclone-lu", "presidency"},
			needs:   "change the phase needs role cyclone or presidency",
			check: func(t *testing.T, _, s State) {
				if s.Phase != PhaseResponse {
					t.Errorf("phase = %s, want response", s.Phase)
				}
			},
		},
		{
			name:  "Reserve request",
			setup: func(w *world) { w.open(1, false) },
			cmd: func(s State) Command {
				return Command{Kind: KindReserveRequest, Crisis: s.Crisis, Sector: "energy", Services: []string{"incident response", "forensics"}, Note: "SCADA"}
			},
			allowed: []string{"cert-lu", "cyclone-lu"},
			needs:   "request EU Cybersecurity Reserve services needs role csirt or cyclone",
			check: func(t *testing.T, _, s State) {
				if len(s.Requests) != 1 || s.Requests[0].Status != RequestOpen {
					t.Errorf("requests = %+v, want one open", s.Requests)
				}
			},
		},
		{
			name:  "Reserve deployed",
			setup: func(w *world) { w.open(1, false); w.request() },
			cmd: func(s State) Command {
				return Command{Kind: KindReserveDeployed, Crisis: s.Crisis, Request: s.Requests[0].ID, Note: "team on site"}
			},
			allowed: []string{"commission", "enisa"},
			needs:   "mark a Reserve request deployed needs role commission or enisa",
			check:   wantRequest(RequestDeployed),
		},
		{
			name:  "Reserve withdrawn",
			setup: func(w *world) { w.open(1, false); w.request() },
			cmd: func(s State) Command {
				return Command{Kind: KindReserveWithdrawn, Crisis: s.Crisis, Request: s.Requests[0].ID}
			},
			allowed: []string{"commission", "enisa"},
			needs:   "mark a Reserve request withdrawn needs role commission or enisa",
			check:   wantRequest(RequestWithdrawn),
		},
		{
			name:  "close",
			setup: func(w *world) { w.at(3) },
			cmd: func(s State) Command {
				return Command{Kind: KindClose, Crisis: s.Crisis, Reason: "power restored", Lessons: "test the backup links"}
			},
			allowed: []string{"cyclone-lu", "presidency"},
			needs:   "close the crisis needs role cyclone or presidency",
			check:   wantClosed,
		},
		{
			name:  "close at level 4",
			setup: func(w *world) { w.at(4) },
			cmd: func(s State) Command {
				return Command{Kind: KindClose, Crisis: s.Crisis, Reason: "power restored"}
			},
			allowed: []string{"presidency"},
			needs:   "close the crisis at level 4 (cyber crisis) needs role presidency",
			check:   wantClosed,
		},
	}
	c := cast(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tt.setup(w)
			before := w.s
			for _, name := range activeNames {
				sc := c.sign(t, name, tt.cmd(before))
				got, err := Apply(before, sc, c.roster, Meta{Time: t0.Add(time.Hour), Term: 2, Index: w.index + 1})
				// Check, the rules without the state, refuses nothing
				// Apply allows, and every role outside the row but where
				// the state narrows the row (close at level 4).
				cerr := Check(sc, c.roster)
				switch {
				case cerr != nil && err == nil:
					t.Errorf("%s: Check refuses %v, Apply allows", name, cerr)
				case cerr == nil && err != nil && tt.name != "close at level 4":
					t.Errorf("%s: Check allows, Apply refuses: %v", name, err)
				case cerr != nil:
					wantRefusal(t, cerr, RuleRole)
				}
				if !slices.Contains(tt.allowed, name) {
					wantRefusal(t, err, RuleRole, tt.needs+"; "+name+" has "+string(c.roles[name][0]))
					continue
				}
				if err != nil {
					t.Errorf("%s: %v, want success", name, err)
					continue
				}
				if d := got.History[len(got.History)-1]; d.ByName != name || d.Kind != sc.Command().Kind || d.Index != w.index+1 || d.Term != 2 {
					t.Errorf("%s: last decision %+v does not record who, what and where", name, d)
				}
				if tt.check != nil {
					tt.check(t, before, got)
				}
			}
		})
	}
}

// Check refuses what needs no state: a bad signature, a revoked signer,
// a malformed command; refusals read back from their text.
func TestCheckWithoutState(t *testing.T) {
	c := cast(t)
	if err := Check(c.sign(t, "cert-be", Command{Kind: KindOpen, Title: "x", Level: 1}), c.roster); err == nil {
		t.Errorf("a revoked signer passes Check")
	} else {
		wantRefusal(t, err, RuleRevoked)
		r, ok := ParseRefusal(err.Error())
		if !ok || r.Rule != RuleRevoked || !strings.Contains(err.Error(), r.Detail) {
			t.Errorf("ParseRefusal(%q) = %+v, %v", err.Error(), r, ok)
		}
	}
	if err := Check(c.sign(t, "cert-lu", Command{Kind: KindOpen, Title: "x", Level: 1}), c.roster); err != nil {
		t.Errorf("an open at level 1 by a CSIRT: %v", err)
	}
	if _, ok := ParseRefusal("consensus: no quorum"); ok {
		t.Errorf("ParseRefusal reads any text")
	}
}

// TestRefusalExample pins the message the issue asks for.
func TestRefusalExample(t *testing.T) {
	w := newWorld(t)
	w.open(1, false)
	err := w.try("cert-lu", Command{Kind: KindEscalateLevel3, Crisis: w.s.Crisis})
	const want = "crisis: command refused by rule role: escalate to level 3 needs role cyclone; cert-lu has csirt"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func wantLevel(l Level, m Mode) func(*testing.T, State, State) {
	return func(t *testing.T, _, s State) {
		t.Helper()
		if s.Level != l || s.Mode != m {
			t.Errorf("got %s, IPCR %s; want %s, IPCR %s", s.Level, s.Mode, l, m)
		}
	}
}

func wantField(get func(State) string, want string) func(*testing.T, State, State) {
	return func(t *testing.T, _, s State) {
		t.Helper()
		if got := get(s); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func wantRequest(status RequestStatus) func(*testing.T, State, State) {
	return func(t *testing.T, _, s State) {
		t.Helper()
		if r := s.Requests[0]; r.Status != status || r.ClosedAt.IsZero() || r.ClosedByName == "" {
			t.Errorf("request %+v, want %s with who and when", r, status)
		}
		if len(s.OpenRequests(t0)) != 0 {
			t.Errorf("a %s request is still listed as open", status)
		}
	}
}

func wantClosed(t *testing.T, _, s State) {
	t.Helper()
	if s.Status != StatusClosed || s.Level != LevelNormal || s.Mode != ModeNone || s.CloseReason != "power restored" {
		t.Errorf("after close: %s", s.Summary())
	}
	if !strings.Contains(s.Summary(), "closed") {
		t.Errorf("summary %q does not say closed", s.Summary())
	}
}
