package crisis

import (
	"encoding/hex"
	"fmt"
	"time"
)

// An ID names a command, a crisis or a Reserve request. A command's ID is 16
// random bytes drawn by the member who signs it (never by Apply, which reads
// no randomness). A crisis is named by the ID of the command that opened it,
// and a Reserve request by the ID of the command that made it, so every node
// derives the same names without coordination.
type ID [16]byte

// String returns the ID in lowercase hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for display.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero ID, which names nothing.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the 32-hex-digit form that String returns.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("crisis: ID %q is not 32 hex digits", s)
	}
	copy(id[:], b)
	return id, nil
}

// MarshalText implements encoding.TextMarshaler (hex), for the JSON API.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (hex).
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// A Level is the escalation level of the crisis, as the EU Blueprint for
// large-scale cyber incidents defines them.
type Level uint8

// The levels.
const (
	LevelNormal     Level = 0 // normal: no incident under watch
	LevelIncident   Level = 1 // incident under watch (any CSIRT)
	LevelPotential  Level = 2 // potential large-scale incident (CSIRT advice)
	LevelLargeScale Level = 3 // large-scale incident (EU-CyCLONe)
	LevelCyber      Level = 4 // cyber crisis (IPCR full mode, by the Presidency)
)

var levelNames = [...]string{"normal", "incident under watch", "potential large-scale incident", "large-scale incident", "cyber crisis"}

// Valid reports whether l is one of the five levels.
func (l Level) Valid() bool { return int(l) < len(levelNames) }

// String returns "level 3 (large-scale incident)".
func (l Level) String() string {
	if !l.Valid() {
		return fmt.Sprintf("level %d (unknown)", uint8(l))
	}
	return fmt.Sprintf("level %d (%s)", uint8(l), levelNames[l])
}

// Name returns the level's name alone: "large-scale incident".
func (l Level) Name() string {
	if !l.Valid() {
		return "unknown"
	}
	return levelNames[l]
}

// A Mode is the mode of the Council's Integrated Political Crisis Response
// (IPCR). Its zero value is ModeNone.
type Mode uint8

// The IPCR modes.
const (
	ModeNone        Mode = iota // IPCR not activated
	ModeMonitoring              // monitoring
	ModeInfoSharing             // information-sharing
	ModeFull                    // full activation: level 4, cyber crisis
)

var modeNames = [...]string{"none", "monitoring", "information-sharing", "full"}

// Valid reports whether m is one of the four modes.
func (m Mode) Valid() bool { return int(m) < len(modeNames) }

// String returns the mode's name: "information-sharing".
func (m Mode) String() string { return enumName(modeNames[:], uint8(m)) }

// ParseMode parses a mode's name.
func ParseMode(s string) (Mode, error) {
	v, err := parseEnum("IPCR mode", modeNames[:], s)
	return Mode(v), err
}

// MarshalText implements encoding.TextMarshaler, for the JSON API.
func (m Mode) MarshalText() ([]byte, error) { return marshalEnum("IPCR mode", m.Valid(), m.String()) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	*m = v
	return err
}

// A Phase is where the crisis is in its lifecycle. Its zero value is
// PhasePreparedness, the phase when no crisis is open.
type Phase uint8

// The phases, in lifecycle order.
const (
	PhasePreparedness Phase = iota
	PhaseDetection
	PhaseResponse
	PhaseRecovery
)

var phaseNames = [...]string{"preparedness", "detection", "response", "recovery"}

// Valid reports whether p is one of the four phases.
func (p Phase) Valid() bool { return int(p) < len(phaseNames) }

// String returns the phase's name: "response".
func (p Phase) String() string { return enumName(phaseNames[:], uint8(p)) }

// ParsePhase parses a phase's name.
func ParsePhase(s string) (Phase, error) {
	v, err := parseEnum("phase", phaseNames[:], s)
	return Phase(v), err
}

// MarshalText implements encoding.TextMarshaler, for the JSON API.
func (p Phase) MarshalText() ([]byte, error) { return marshalEnum("phase", p.Valid(), p.String()) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Phase) UnmarshalText(b []byte) error {
	v, err := ParsePhase(string(b))
	*p = v
	return err
}

// A Status says whether a crisis is open. Its zero value, StatusNone, is a
// network where no crisis was ever opened.
type Status uint8

// The statuses.
const (
	StatusNone   Status = iota // no crisis yet
	StatusOpen                 // the crisis named in State.Crisis is open
	StatusClosed               // the crisis named in State.Crisis was closed
)

var statusNames = [...]string{"none", "open", "closed"}

// Valid reports whether s is one of the three statuses.
func (s Status) Valid() bool { return int(s) < len(statusNames) }

// String returns the status's name.
func (s Status) String() string { return enumName(statusNames[:], uint8(s)) }

// MarshalText implements encoding.TextMarshaler, for the JSON API.
func (s Status) MarshalText() ([]byte, error) { return marshalEnum("status", s.Valid(), s.String()) }

// A RequestStatus says where a Reserve request stands.
type RequestStatus uint8

// The request statuses. Deployed and withdrawn both close a request.
const (
	RequestOpen      RequestStatus = iota // waiting for the Commission or ENISA
	RequestDeployed                       // Reserve services were deployed
	RequestWithdrawn                      // closed without deployment
)

var requestStatusNames = [...]string{"open", "deployed", "withdrawn"}

// Valid reports whether s is one of the three request statuses.
func (s RequestStatus) Valid() bool { return int(s) < len(requestStatusNames) }

// String returns the status's name.
func (s RequestStatus) String() string { return enumName(requestStatusNames[:], uint8(s)) }

// MarshalText implements encoding.TextMarshaler, for the JSON API.
func (s RequestStatus) MarshalText() ([]byte, error) {
	return marshalEnum("request status", s.Valid(), s.String())
}

func enumName(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("unknown(%d)", v)
}

func parseEnum(what string, names []string, s string) (uint8, error) {
	for i, n := range names {
		if n == s {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("crisis: unknown %s %q (want one of %s)", what, s, orList(names))
}

func marshalEnum(what string, valid bool, name string) ([]byte, error) {
	if !valid {
		return nil, fmt.Errorf("crisis: cannot marshal %s %s", what, name)
	}
	return []byte(name), nil
}

// Meta is what the Raft log entry says about a command: when the leader
// appended it and where it sits in the log. It is the only source of time
// for Apply.
type Meta struct {
	Time  time.Time // the entry's time, set by the leader
	Term  uint64
	Index uint64
}
