package crisis

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/crisismesh/crisismesh/crypto"
)

// SuiteCommand names version 1 of the signed command format.
const SuiteCommand = "crisismesh-command-v1"

// A Kind is what a command asks for. The strings are part of the signed
// format and never change.
type Kind string

// The command kinds. Each is a row of the table in the package doc, which
// says who may issue it.
const (
	KindOpen             Kind = "open"              // Title, Level 1–3, Exercise
	KindAdviseLevel2     Kind = "advise-level-2"    // raise to level 2
	KindEscalateLevel3   Kind = "escalate-level-3"  // raise to level 3
	KindSetMode          Kind = "set-ipcr-mode"     // Mode; ModeFull raises to level 4
	KindDeescalate       Kind = "de-escalate"       // Level: the level to go down to
	KindAffected         Kind = "affected-states"   // Add, Remove: member state codes
	KindSectors          Kind = "sectors"           // Add, Remove: nis2 sectors
	KindSeverity         Kind = "impact-severity"   // Value: nis2 impact-severity
	KindOutlook          Kind = "outlook"           // Value: nis2 impact-outlook
	KindRootCause        Kind = "root-cause"        // Value: nis2 nature-root-cause
	KindPhase            Kind = "phase"             // Phase
	KindReserveRequest   Kind = "reserve-request"   // Sector, Services, Note
	KindReserveDeployed  Kind = "reserve-deployed"  // Request, Note
	KindReserveWithdrawn Kind = "reserve-withdrawn" // Request, Note
	KindClose            Kind = "close"             // Reason, Lessons
)

// Kinds returns every command kind, in the order of the table in the
// package doc.
func Kinds() []Kind {
	return []Kind{
		KindOpen, KindAdviseLevel2, KindEscalateLevel3, KindSetMode, KindDeescalate,
		KindAffected, KindSectors, KindSeverity, KindOutlook, KindRootCause, KindPhase,
		KindReserveRequest, KindReserveDeployed, KindReserveWithdrawn, KindClose,
	}
}

// A Command is what a member asks the crisis state to do: a kind and the
// fields that kind uses (the comments on the Kind constants say which);
// every other field must be left zero. Commands state the result they want
// (the crisis they act on, the level to go down to), never a bare "one
// more" or "one less", so one applied late — an offline proposal carried
// in hours after it was made — either still means what its signer meant or
// is refused.
//
// The struct tags are the signed format.
type Command struct {
	// ID is 16 random bytes drawn by the signer; Apply refuses an ID it has
	// already applied, so a command submitted twice counts once.
	ID   ID   `cbor:"1,keyasint"`
	Kind Kind `cbor:"2,keyasint"`
	// Crisis is the crisis the command acts on: State.Crisis. Every kind
	// but open names it; open leaves it zero.
	Crisis   ID       `cbor:"3,keyasint,omitzero"`
	Title    string   `cbor:"4,keyasint,omitempty"`
	Level    Level    `cbor:"5,keyasint,omitempty"`
	Exercise bool     `cbor:"6,keyasint,omitempty"`
	Mode     Mode     `cbor:"7,keyasint,omitempty"`
	Phase    Phase    `cbor:"8,keyasint,omitempty"`
	Add      []string `cbor:"9,keyasint,omitempty"`
	Remove   []string `cbor:"10,keyasint,omitempty"`
	Value    string   `cbor:"11,keyasint,omitempty"`
	Sector   string   `cbor:"12,keyasint,omitempty"`
	Services []string `cbor:"13,keyasint,omitempty"`
	Note     string   `cbor:"14,keyasint,omitempty"`
	Request  ID       `cbor:"15,keyasint,omitzero"`
	Reason   string   `cbor:"16,keyasint,omitempty"`
	Lessons  string   `cbor:"17,keyasint,omitempty"`
}

// Text limits, in characters. Titles and service names are one line; notes,
// reasons and lessons may have several.
const (
	maxTitle    = 200
	maxService  = 100
	maxServices = 16
	maxNote     = 2000
	maxLessons  = 10000
)

// field is a bit set of Command's optional fields, to check that a command
// carries exactly the fields of its kind.
type field uint16

const (
	fCrisis field = 1 << iota
	fTitle
	fLevel
	fExercise
	fMode
	fPhase
	fAdd
	fRemove
	fValue
	fSector
	fServices
	fNote
	fRequest
	fReason
	fLessons
)

var fieldNames = []string{"crisis", "title", "level", "exercise", "mode", "phase", "add", "remove", "value", "sector", "services", "note", "request", "reason", "lessons"}

// kindFields is which fields each kind may carry.
var kindFields = map[Kind]field{
	KindOpen:             fTitle | fLevel | fExercise,
	KindAdviseLevel2:     fCrisis,
	KindEscalateLevel3:   fCrisis,
	KindSetMode:          fCrisis | fMode,
	KindDeescalate:       fCrisis | fLevel,
	KindAffected:         fCrisis | fAdd | fRemove,
	KindSectors:          fCrisis | fAdd | fRemove,
	KindSeverity:         fCrisis | fValue,
	KindOutlook:          fCrisis | fValue,
	KindRootCause:        fCrisis | fValue,
	KindPhase:            fCrisis | fPhase,
	KindReserveRequest:   fCrisis | fSector | fServices | fNote,
	KindReserveDeployed:  fCrisis | fRequest | fNote,
	KindReserveWithdrawn: fCrisis | fRequest | fNote,
	KindClose:            fCrisis | fReason | fLessons,
}

// fields returns the set of fields c carries (non-zero).
func (c *Command) fields() field {
	var f field
	set := func(b bool, x field) {
		if b {
			f |= x
		}
	}
	set(!c.Crisis.IsZero(), fCrisis)
	set(c.Title != "", fTitle)
	set(c.Level != 0, fLevel)
	set(c.Exercise, fExercise)
	set(c.Mode != 0, fMode)
	set(c.Phase != 0, fPhase)
	set(len(c.Add) > 0, fAdd)
	set(len(c.Remove) > 0, fRemove)
	set(c.Value != "", fValue)
	set(c.Sector != "", fSector)
	set(len(c.Services) > 0, fServices)
	set(c.Note != "", fNote)
	set(!c.Request.IsZero(), fRequest)
	set(c.Reason != "", fReason)
	set(c.Lessons != "", fLessons)
	return f
}

func (f field) names() []string {
	var out []string
	for i, n := range fieldNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// check applies the rules that need no state: the kind is known, it
// carries exactly its fields, and every value is well formed (levels in
// range, codes and taxonomy values known, text of bounded length). Sign
// runs it so a member cannot sign a command that is bound to be refused;
// Apply runs it again because it trusts no signer's software.
func (c *Command) check() error {
	if c.ID.IsZero() {
		return refuse(RuleShape, "the command ID is zero: the signer draws 16 random bytes for each command")
	}
	allowed, ok := kindFields[c.Kind]
	if !ok {
		return refuse(RuleKind, "unknown command kind %q", c.Kind)
	}
	if extra := c.fields() &^ allowed; extra != 0 {
		return refuse(RuleShape, "a %s command carries no %s", c.Kind, strings.Join(extra.names(), ", "))
	}
	if c.Kind != KindOpen && c.Crisis.IsZero() {
		return refuse(RuleShape, "a %s command names the crisis it acts on (its ID), so it cannot land on another crisis", c.Kind)
	}
	switch c.Kind {
	case KindOpen:
		if c.Level < LevelIncident || c.Level > LevelLargeScale {
			return refuse(RuleLevel, "a crisis opens at level 1, 2 or 3, not %d (level 4 is the Presidency's full IPCR activation)", c.Level)
		}
		return checkText("title", c.Title, maxTitle, false, true)
	case KindSetMode:
		if !c.Mode.Valid() {
			return refuse(RuleMode, "unknown IPCR mode %d (want none, monitoring, information-sharing or full)", c.Mode)
		}
	case KindDeescalate:
		if c.Level > LevelLargeScale {
			return refuse(RuleLevel, "de-escalate goes down to level 0, 1, 2 or 3, not %d", c.Level)
		}
	case KindAffected:
		return checkAddRemove("affected member states", c.Add, c.Remove, checkMemberState)
	case KindSectors:
		return checkAddRemove("sectors impacted", c.Add, c.Remove, func(v string) error {
			return checkTerm("sector", predicateSectors, v)
		})
	case KindSeverity:
		return checkTerm("impact severity", predicateSeverity, c.Value)
	case KindOutlook:
		return checkTerm("outlook", predicateOutlook, c.Value)
	case KindRootCause:
		return checkTerm("root cause", predicateRootCause, c.Value)
	case KindPhase:
		if !c.Phase.Valid() {
			return refuse(RulePhase, "unknown phase %d (want preparedness, detection, response or recovery)", c.Phase)
		}
	case KindReserveRequest:
		if err := checkTerm("sector", predicateSectors, c.Sector); err != nil {
			return err
		}
		if len(c.Services) == 0 || len(c.Services) > maxServices {
			return refuse(RuleShape, "a Reserve request names 1 to %d services, not %d", maxServices, len(c.Services))
		}
		for i, s := range c.Services {
			if err := checkText("service", s, maxService, false, true); err != nil {
				return err
			}
			if slices.Contains(c.Services[:i], s) {
				return refuse(RuleShape, "service %q is named twice", s)
			}
		}
		return checkText("note", c.Note, maxNote, true, false)
	case KindReserveDeployed, KindReserveWithdrawn:
		if c.Request.IsZero() {
			return refuse(RuleShape, "a %s command names the Reserve request (its ID)", c.Kind)
		}
		return checkText("note", c.Note, maxNote, true, false)
	case KindClose:
		if err := checkText("reason", c.Reason, maxNote, true, true); err != nil {
			return err
		}
		return checkText("lessons learned", c.Lessons, maxLessons, true, false)
	}
	return nil
}

// checkAddRemove checks the lists of an add/remove command: something to
// do, each value valid, none named twice.
func checkAddRemove(what string, add, remove []string, valid func(string) error) error {
	if len(add) == 0 && len(remove) == 0 {
		return refuse(RuleShape, "a change of %s adds or removes at least one", what)
	}
	seen := make(map[string]bool, len(add)+len(remove))
	for _, v := range slices.Concat(add, remove) {
		if err := valid(v); err != nil {
			return err
		}
		if seen[v] {
			return refuse(RuleShape, "%q is named twice in one change of %s", v, what)
		}
		seen[v] = true
	}
	return nil
}

// checkText bounds a text field: valid UTF-8, at most limit characters, no
// control characters but newline and tab (and those only where multiline).
func checkText(what, s string, limit int, multiline, required bool) error {
	switch {
	case s == "" && required:
		return refuse(RuleShape, "the %s is empty", what)
	case !utf8.ValidString(s):
		return refuse(RuleShape, "the %s is not valid UTF-8", what)
	case utf8.RuneCountInString(s) > limit:
		return refuse(RuleShape, "the %s has %d characters, at most %d are allowed", what, utf8.RuneCountInString(s), limit)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return refuse(RuleShape, "the %s contains control character %U", what, r)
		}
	}
	return nil
}

// clone returns a deep copy of c.
func (c Command) clone() Command {
	c.Add = slices.Clone(c.Add)
	c.Remove = slices.Clone(c.Remove)
	c.Services = slices.Clone(c.Services)
	return c
}

// signedWire is how a signed command travels: the exact body bytes that
// were signed and the signature. The signer is inside the body.
type signedWire struct {
	Body []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

type commandBody struct {
	Suite   string           `cbor:"1,keyasint"`
	Network crypto.NetworkID `cbor:"2,keyasint"`
	Signer  crypto.MemberID  `cbor:"3,keyasint"`
	Command Command          `cbor:"4,keyasint"`
}

// A SignedCommand is a Command with the network it is for, the member who
// signed it and their composite signature (context crypto.ContextCommand).
// ParseSigned checks only its encoding; [Apply] checks the signature, the
// signer and every rule against the roster and the state. It is immutable
// and safe for concurrent use.
type SignedCommand struct {
	raw  []byte
	body []byte // exactly the bytes that were signed
	sig  []byte
	dec  commandBody
}

// Sign checks cmd's shape (the rules that need no state) and signs it for
// network with id's composite key. The command ID is the caller's: draw it
// from crypto/rand once per command, and keep it when the same command is
// submitted again. A shape error is a [*Refusal], as Apply would give.
func Sign(id *crypto.Identity, network crypto.NetworkID, cmd Command) (*SignedCommand, error) {
	if id == nil {
		return nil, errors.New("crisis: sign: no identity")
	}
	if err := cmd.check(); err != nil {
		return nil, err // a *Refusal, which says what to fix
	}
	body, err := marshal(&commandBody{Suite: SuiteCommand, Network: network, Signer: id.ID(), Command: cmd})
	if err != nil {
		return nil, err
	}
	sig, err := id.Sign(crypto.ContextCommand, body)
	if err != nil {
		return nil, fmt.Errorf("crisis: sign: %w", err)
	}
	raw, err := marshal(&signedWire{Body: body, Sig: sig})
	if err != nil {
		return nil, err
	}
	return ParseSigned(raw)
}

// ParseSigned decodes a signed command strictly: canonical CBOR only, no
// unknown fields, a known suite. Errors wrap crypto.ErrMalformed or
// crypto.ErrNonCanonical. The signature is checked by [Apply], which knows
// the roster.
func ParseSigned(b []byte) (*SignedCommand, error) {
	var w signedWire
	if err := unmarshalCanonical(b, &w, maxCommandSize); err != nil {
		return nil, fmt.Errorf("crisis: signed command: %w", err)
	}
	sc := &SignedCommand{raw: append([]byte(nil), b...), body: w.Body, sig: w.Sig}
	if err := unmarshalCanonical(w.Body, &sc.dec, maxCommandSize); err != nil {
		return nil, fmt.Errorf("crisis: signed command body: %w", err)
	}
	if sc.dec.Suite != SuiteCommand {
		return nil, fmt.Errorf("crisis: signed command: %w: unknown suite %q (this version knows %q)", crypto.ErrMalformed, sc.dec.Suite, SuiteCommand)
	}
	return sc, nil
}

// Bytes returns the exact bytes of the signed command, which are what a
// Raft entry or a proposal carries. The caller must not modify them.
func (sc *SignedCommand) Bytes() []byte { return sc.raw }

// Command returns a copy of the command.
func (sc *SignedCommand) Command() Command { return sc.dec.Command.clone() }

// ID returns the command ID.
func (sc *SignedCommand) ID() ID { return sc.dec.Command.ID }

// Signer returns the member ID of the member who signed.
func (sc *SignedCommand) Signer() crypto.MemberID { return sc.dec.Signer }

// Network returns the network the command was signed for.
func (sc *SignedCommand) Network() crypto.NetworkID { return sc.dec.Network }

// Authenticate checks what [Apply] checks first, without a state: the
// network, that the signer is a member of r, the signature, and that the
// signer is not revoked in r. It returns the signer's roster entry; the
// error is a [*Refusal] naming the rule.
func Authenticate(sc *SignedCommand, r *crypto.Roster) (*crypto.Member, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: no roster", ErrBadCall)
	}
	return authenticate(sc, r)
}
