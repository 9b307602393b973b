package crisis

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crisismesh/crisismesh/crypto"
)

// Who may do what. The package doc has the table; these are its rows.
var (
	// openers may open a crisis (at level 1; see raisers for 2 and 3).
	openers     = []crypto.Role{crypto.RoleCSIRT, crypto.RoleCyclone, crypto.RoleCommission, crypto.RoleENISA, crypto.RoleCERTEU}
	modeSetters = []crypto.Role{crypto.RolePresidency, crypto.RoleCommission}
	assessors   = []crypto.Role{crypto.RoleCSIRT, crypto.RoleCyclone}
	phasers     = []crypto.Role{crypto.RoleCyclone, crypto.RolePresidency}
	requesters  = []crypto.Role{crypto.RoleCSIRT, crypto.RoleCyclone}
	reserve     = []crypto.Role{crypto.RoleCommission, crypto.RoleENISA}
	closers     = []crypto.Role{crypto.RoleCyclone, crypto.RolePresidency}
)

// raisers returns the roles that may bring a crisis to level l: by opening
// it there (1–3), by advising 2, escalating to 3 or activating IPCR in full
// mode (4). Nobody raises a crisis to level 0.
func raisers(l Level) []crypto.Role {
	switch l {
	case LevelIncident:
		return openers
	case LevelPotential:
		return []crypto.Role{crypto.RoleCSIRT}
	case LevelLargeScale:
		return []crypto.Role{crypto.RoleCyclone}
	case LevelCyber:
		return []crypto.Role{crypto.RolePresidency}
	}
	return nil
}

// lowerers returns the roles that may take a crisis down from level l:
// whoever may raise it to l, and the Presidency.
func lowerers(l Level) []crypto.Role {
	r := raisers(l)
	if slices.Contains(r, crypto.RolePresidency) {
		return r
	}
	return append(slices.Clone(r), crypto.RolePresidency)
}

// Apply returns the state after cmd, or the unchanged state s and an error.
// It is the whole of the crisis rules, and pure: the same (s, cmd, roster,
// at) gives the same result on every node, because it reads no clock, no
// randomness, no disk and no network. It never modifies s.
//
// roster is the roster in force at the command's place in the log; at is
// the Raft entry's time and position. The error is a [*Refusal] (errors.Is
// ErrRefused) when a rule refuses the command, including a bad signature
// or a revoked or unknown signer, so a leader cannot slip in a decision
// nobody signed; it wraps [ErrBadCall] when the host passed no roster or a
// bad Meta.
func Apply(s State, cmd *SignedCommand, roster *crypto.Roster, at Meta) (State, error) {
	if roster == nil {
		return s, fmt.Errorf("%w: no roster", ErrBadCall)
	}
	now, err := at.check(&s)
	if err != nil {
		return s, err
	}
	member, err := authenticate(cmd, roster)
	if err != nil {
		return s, err
	}
	c := cmd.dec.Command
	if s.applied(c.ID) {
		return s, refuse(RuleDuplicate, "command %s was already applied; a command counts once however often it is submitted", c.ID)
	}
	if err := c.check(); err != nil {
		return s, err
	}
	next := s.Clone()
	a := &applier{s: &next, c: &c, m: member, at: now}
	what, err := a.apply()
	if err != nil {
		return s, err
	}
	a.record(what, at)
	return next, nil
}

// check validates the Meta and returns its time to the millisecond, in
// UTC. Times are kept to the millisecond so that a log store that keeps no
// finer time still replays to the same state.
func (m Meta) check(s *State) (time.Time, error) {
	if m.Time.IsZero() || m.Time.UnixMilli() <= 0 {
		return time.Time{}, fmt.Errorf("%w: Meta.Time is %v: pass the time of the Raft log entry", ErrBadCall, m.Time)
	}
	if m.Index <= s.Index {
		return time.Time{}, fmt.Errorf("%w: Meta.Index %d does not follow the state's last applied index %d: an entry applied twice or out of order", ErrBadCall, m.Index, s.Index)
	}
	return time.UnixMilli(m.Time.UnixMilli()).UTC(), nil
}

// authenticate checks the network, the signer and the signature, and
// returns the signer's roster entry.
func authenticate(sc *SignedCommand, r *crypto.Roster) (*crypto.Member, error) {
	if sc == nil || sc.raw == nil {
		return nil, refuse(RuleMalformed, "no signed command: decode one with ParseSigned or make one with Sign")
	}
	if sc.dec.Network != r.NetworkID() {
		return nil, refuse(RuleNetwork, "the command was signed for network %.16s…, this is network %s (%.16s…)", sc.dec.Network, r.Name(), r.NetworkID())
	}
	m, ok := r.Member(sc.dec.Signer)
	if !ok {
		return nil, refuse(RuleMember, "the command is signed by %s, who is not a member of network %s", sc.dec.Signer.Short(), r.Name())
	}
	if err := m.Card.Verify(crypto.ContextCommand, sc.body, sc.sig); err != nil {
		return nil, &Refusal{
			Rule:   RuleSignature,
			Detail: fmt.Sprintf("the signature of %s (%s) does not verify: the command was altered or forged (%v)", m.Card.Name(), m.Card.ID().Short(), err),
			cause:  err,
		}
	}
	if m.Revoked {
		return nil, refuse(RuleRevoked, "%s (%s) was revoked at roster version %d (%s): nothing it signs counts any more", m.Card.Name(), m.Card.ID().Short(), m.RevokedAt, m.Reason)
	}
	return m, nil
}

// applier applies one authenticated, well-formed command to s, which is
// already a private copy: it may be changed freely and is thrown away on a
// refusal.
type applier struct {
	s  *State
	c  *Command
	m  *crypto.Member
	at time.Time // the entry's time, to the millisecond
}

func (a *applier) name() string { return a.m.Card.Name() }

// need refuses unless the signer holds one of roles; the refusal names the
// rule and the roles the signer has.
func (a *applier) need(action string, roles []crypto.Role) error {
	for _, r := range roles {
		if a.m.HasRole(r) {
			return nil
		}
	}
	return refuse(RuleRole, "%s needs %s; %s has %s", action, needs(roles), a.name(), strings.Join(roleNames(a.m.Roles), ", "))
}

// apply runs the command's rules and changes a.s; it returns the decision
// text for the history.
func (a *applier) apply() (string, error) {
	if a.c.Kind == KindOpen {
		return a.open()
	}
	if err := a.requireOpen(); err != nil {
		return "", err
	}
	switch a.c.Kind {
	case KindAdviseLevel2:
		return a.raise("advise level 2", LevelPotential)
	case KindEscalateLevel3:
		return a.raise("escalate to level 3", LevelLargeScale)
	case KindSetMode:
		return a.setMode()
	case KindDeescalate:
		return a.deescalate()
	case KindAffected:
		return a.changeList("change the affected member states", "affected member states", &a.s.Affected)
	case KindSectors:
		return a.changeList("change the sectors impacted", "sectors impacted", &a.s.Sectors)
	case KindSeverity:
		return a.setValue("set the impact severity", "impact severity", &a.s.Severity)
	case KindOutlook:
		return a.setValue("set the outlook", "outlook", &a.s.Outlook)
	case KindRootCause:
		return a.setValue("set the root cause", "root cause", &a.s.RootCause)
	case KindPhase:
		return a.setPhase()
	case KindReserveRequest:
		return a.request()
	case KindReserveDeployed:
		return a.answer(RequestDeployed)
	case KindReserveWithdrawn:
		return a.answer(RequestWithdrawn)
	case KindClose:
		return a.close()
	}
	// check has refused every other kind.
	return "", refuse(RuleKind, "unknown command kind %q", a.c.Kind)
}

// requireOpen refuses unless the crisis the command names is the open one.
func (a *applier) requireOpen() error {
	s, c := a.s, a.c
	switch {
	case s.Status == StatusClosed && c.Crisis == s.Crisis:
		return refuse(RuleNoCrisis, "crisis %s %q was closed at %s", s.Crisis.Short(), s.Title, s.Closed.Format(time.RFC3339))
	case s.Status != StatusOpen:
		return refuse(RuleNoCrisis, "no crisis is open: a %s, %s, %s, %s or %s member opens one first", openers[0], openers[1], openers[2], openers[3], openers[4])
	case c.Crisis != s.Crisis:
		return refuse(RuleCrisis, "the command is for crisis %s, but the open crisis is %s %q", c.Crisis.Short(), s.Crisis.Short(), s.Title)
	}
	return nil
}

func (a *applier) open() (string, error) {
	s, c := a.s, a.c
	var ended string
	if s.Status == StatusOpen {
		if !s.Exercise || c.Exercise {
			kind := "crisis"
			if s.Exercise {
				kind = "exercise"
			}
			return "", refuse(RuleAlreadyOpen, "%s %s %q is open: a cyclone or presidency member closes it first", kind, s.Crisis.Short(), s.Title)
		}
		// A real crisis is never blocked by an exercise: it ends it.
		ended = fmt.Sprintf("; this ends exercise %s %q", s.Crisis.Short(), s.Title)
	}
	if err := a.need(fmt.Sprintf("open a crisis at level %d", c.Level), raisers(c.Level)); err != nil {
		return "", err
	}
	// A new crisis starts from a clean slate; what spans crises (history,
	// dedupe, Raft position) stays.
	*s = State{
		Status: StatusOpen, Crisis: c.ID, Title: c.Title, Exercise: c.Exercise,
		Level: c.Level, Phase: PhaseDetection, Lead: a.m.Card.ID(), LeadName: a.name(), Opened: a.at,
		History: s.History, Decisions: s.Decisions, Term: s.Term, Index: s.Index, Updated: s.Updated,
		seen: s.seen, crises: pushBounded(s.crises, c.ID, maxCrises),
	}
	what := "crisis"
	if c.Exercise {
		what = "exercise"
	}
	return fmt.Sprintf("opened %s %s %q at %s, phase detection%s", what, c.ID.Short(), c.Title, c.Level, ended), nil
}

// raise brings the crisis up to level to (2 or 3).
func (a *applier) raise(action string, to Level) (string, error) {
	s := a.s
	if err := a.need(action, raisers(to)); err != nil {
		return "", err
	}
	switch {
	case s.Level == to:
		return "", refuse(RuleNoChange, "the crisis is already at %s", to)
	case s.Level > to:
		return "", refuse(RuleLevel, "the crisis is at %s: %s would lower it; de-escalate instead", s.Level, action)
	}
	from := s.Level
	s.Level = to
	verb := "escalated to"
	if to == LevelPotential {
		verb = "advised"
	}
	return fmt.Sprintf("%s %s, up from %s", verb, to, from), nil
}

func (a *applier) setMode() (string, error) {
	s, mode := a.s, a.c.Mode
	if mode == ModeFull {
		if err := a.need("set IPCR mode full (level 4, cyber crisis)", raisers(LevelCyber)); err != nil {
			return "", err
		}
		if s.Mode == ModeFull {
			return "", refuse(RuleNoChange, "IPCR is already in full mode")
		}
		from := s.Level
		s.Mode, s.Level = ModeFull, LevelCyber
		return fmt.Sprintf("activated IPCR in full mode: %s, up from %s", LevelCyber, from), nil
	}
	if err := a.need("set IPCR mode "+mode.String(), modeSetters); err != nil {
		return "", err
	}
	switch {
	case s.Mode == ModeFull:
		return "", refuse(RuleMode, "IPCR is in full mode at %s; the Presidency de-escalates to level 3 to leave it", s.Level)
	case s.Mode == mode:
		return "", refuse(RuleNoChange, "IPCR is already in mode %s", mode)
	}
	from := s.Mode
	s.Mode = mode
	return fmt.Sprintf("set IPCR mode %s (was %s)", mode, from), nil
}

func (a *applier) deescalate() (string, error) {
	s, to := a.s, a.c.Level
	from := s.Level
	if from == LevelNormal {
		return "", refuse(RuleLevel, "the crisis is at %s: there is nothing to de-escalate", from)
	}
	if err := a.need(fmt.Sprintf("de-escalate from level %d", from), lowerers(from)); err != nil {
		return "", err
	}
	if to+1 != from {
		return "", refuse(RuleLevel, "de-escalating to %s goes down from level %d, but the crisis is at %s", to, to+1, from)
	}
	s.Level = to
	what := fmt.Sprintf("de-escalated to %s, down from %s", to, from)
	if from == LevelCyber {
		// Leaving the cyber crisis ends full activation, but the political
		// level keeps its shared picture until the Presidency or the
		// Commission sets another mode.
		s.Mode = ModeInfoSharing
		what += "; IPCR mode full → information-sharing"
	}
	return what, nil
}

// changeList adds c.Add to and removes c.Remove from a sorted list.
func (a *applier) changeList(action, what string, list *[]string) (string, error) {
	if err := a.need(action, assessors); err != nil {
		return "", err
	}
	var added, removed []string
	for _, v := range a.c.Add {
		if !slices.Contains(*list, v) {
			*list = append(*list, v)
			added = append(added, v)
		}
	}
	for _, v := range a.c.Remove {
		if i := slices.Index(*list, v); i >= 0 {
			*list = slices.Delete(*list, i, i+1)
			removed = append(removed, v)
		}
	}
	if len(added)+len(removed) == 0 {
		return "", refuse(RuleNoChange, "the %s already include every value to add and none to remove", what)
	}
	slices.Sort(*list)
	if len(*list) == 0 {
		*list = nil // one form for "none", so equal states encode equally
	}
	var b strings.Builder
	b.WriteString(what)
	if len(added) > 0 {
		fmt.Fprintf(&b, ": added %s", strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		fmt.Fprintf(&b, ": removed %s", strings.Join(removed, ", "))
	}
	if len(*list) > 0 {
		fmt.Fprintf(&b, "; now %s", strings.Join(*list, ", "))
	} else {
		b.WriteString("; now none")
	}
	return b.String(), nil
}

// setValue sets one nis2 value (checked by Command.check).
func (a *applier) setValue(action, what string, field *string) (string, error) {
	if err := a.need(action, assessors); err != nil {
		return "", err
	}
	if *field == a.c.Value {
		return "", refuse(RuleNoChange, "the %s is already %s", what, a.c.Value)
	}
	was := *field
	if was == "" {
		was = "not assessed"
	}
	*field = a.c.Value
	return fmt.Sprintf("%s %s (was %s)", what, a.c.Value, was), nil
}

func (a *applier) setPhase() (string, error) {
	s, to := a.s, a.c.Phase
	if err := a.need("change the phase", phasers); err != nil {
		return "", err
	}
	if s.Phase == to {
		return "", refuse(RuleNoChange, "the crisis is already in phase %s", to)
	}
	from := s.Phase
	s.Phase = to
	return fmt.Sprintf("phase %s (was %s)", to, from), nil
}

func (a *applier) request() (string, error) {
	s, c := a.s, a.c
	if err := a.need("request EU Cybersecurity Reserve services", requesters); err != nil {
		return "", err
	}
	if n := s.openRequests(); n >= maxOpenRequests {
		return "", refuse(RuleLimit, "%d Reserve requests are open, the most the state holds: the Commission or ENISA answers some first", n)
	}
	// The ID is the command's, which dedupe already makes unique; this
	// guards the window after a command ID has left the dedupe memory.
	if slices.ContainsFunc(s.Requests, func(r Request) bool { return r.ID == c.ID }) {
		return "", refuse(RuleDuplicate, "Reserve request %s already exists", c.ID)
	}
	r := Request{
		ID: c.ID, Exercise: s.Exercise, Sector: c.Sector, Services: slices.Clone(c.Services), Note: c.Note,
		By: a.m.Card.ID(), ByName: a.name(), At: a.at, Deadline: a.at.Add(ReserveDeadline),
	}
	s.Requests = append(s.Requests, r)
	return fmt.Sprintf("requested EU Cybersecurity Reserve services for sector %s (%s): request %s, deadline %s",
		r.Sector, strings.Join(r.Services, "; "), r.ID.Short(), r.Deadline.Format(time.RFC3339)), nil
}

// answer marks a Reserve request deployed or withdrawn.
func (a *applier) answer(status RequestStatus) (string, error) {
	s, c := a.s, a.c
	if err := a.need("mark a Reserve request "+status.String(), reserve); err != nil {
		return "", err
	}
	i := slices.IndexFunc(s.Requests, func(r Request) bool { return r.ID == c.Request })
	if i < 0 {
		return "", refuse(RuleRequest, "crisis %s has no Reserve request %s", s.Crisis.Short(), c.Request)
	}
	r := &s.Requests[i]
	if r.Status != RequestOpen {
		return "", refuse(RuleRequest, "Reserve request %s is already %s (by %s at %s)", r.ID.Short(), r.Status, r.ClosedByName, r.ClosedAt.Format(time.RFC3339))
	}
	r.Status, r.ClosedAt, r.ClosedBy, r.ClosedByName, r.Answer = status, a.at, a.m.Card.ID(), a.name(), c.Note
	timing := "within the deadline"
	if late := a.at.Sub(r.Deadline); late > 0 {
		timing = fmt.Sprintf("%s after the deadline", late)
	}
	what := fmt.Sprintf("Reserve request %s (sector %s) %s, %s", r.ID.Short(), r.Sector, status, timing)
	s.trimClosedRequests()
	return what, nil
}

func (a *applier) close() (string, error) {
	s, c := a.s, a.c
	action, roles := "close the crisis", closers
	if s.Level == LevelCyber {
		// Closing at level 4 ends the cyber crisis, which is the
		// Presidency's to end, as de-escalating from 4 is.
		action, roles = "close the crisis at level 4 (cyber crisis)", lowerers(LevelCyber)
	}
	if err := a.need(action, roles); err != nil {
		return "", err
	}
	withdrawn := 0
	for i := range s.Requests {
		if r := &s.Requests[i]; r.Status == RequestOpen {
			r.Status, r.ClosedAt, r.ClosedBy, r.ClosedByName, r.Answer = RequestWithdrawn, a.at, a.m.Card.ID(), a.name(), "crisis closed"
			withdrawn++
		}
	}
	s.trimClosedRequests()
	s.Status, s.Closed, s.CloseReason, s.Lessons = StatusClosed, a.at, c.Reason, c.Lessons
	s.Level, s.Mode, s.Phase = LevelNormal, ModeNone, PhasePreparedness
	noun := "crisis"
	if s.Exercise {
		noun = "exercise"
	}
	what := fmt.Sprintf("closed the %s: %s", noun, clip(c.Reason, 160))
	if withdrawn > 0 {
		what += fmt.Sprintf("; %d open Reserve request(s) withdrawn", withdrawn)
	}
	return what, nil
}

// trimClosedRequests drops the oldest closed requests beyond the bound.
func (s *State) trimClosedRequests() {
	extra := len(s.Requests) - s.openRequests() - maxClosedRequests
	if extra <= 0 {
		return
	}
	kept := make([]Request, 0, len(s.Requests)-extra)
	for _, r := range s.Requests {
		if r.Status != RequestOpen && extra > 0 {
			extra--
			continue
		}
		kept = append(kept, r)
	}
	s.Requests = kept
}

// record appends the decision to the history and remembers the command.
func (a *applier) record(what string, at Meta) {
	s, c := a.s, a.c
	if s.Exercise {
		what = "EXERCISE: " + what
	}
	s.History = pushBounded(s.History, Decision{
		Command: c.ID, Crisis: s.Crisis, Kind: c.Kind, By: a.m.Card.ID(), ByName: a.name(), What: what,
		At: a.at, Term: at.Term, Index: at.Index, Exercise: s.Exercise,
	}, maxHistory)
	s.Decisions++
	if c.Kind != KindOpen { // an open is remembered in s.crises
		s.seen = pushBounded(s.seen, c.ID, maxSeen)
	}
	s.Term, s.Index, s.Updated = at.Term, at.Index, a.at
}

// clip makes s one line of at most n characters, for the history.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
