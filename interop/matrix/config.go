package matrix

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/replication/log"
)

// Config is the [matrix] section of a node's config.toml. Field names are
// the file's keys: a contract with operators' files (add keys, never
// rename one). Paths are relative to the node's data directory.
type Config struct {
	// Homeserver is the homeserver's base URL (https://matrix.example.org).
	Homeserver string `toml:"homeserver"`
	// User is the bot's Matrix user ID (@crisismesh-lu:example.org).
	User string `toml:"user"`
	// AccessTokenFile holds the bot's access token; or PasswordFile its
	// password (the bridge then logs in, keeping its device ID in the
	// bridge's state).
	AccessTokenFile string `toml:"access_token_file"`
	PasswordFile    string `toml:"password_file"`
	// Room is the team's room ID (!abc:example.org); the bot must have
	// been invited or have joined.
	Room string `toml:"room"`
	// Members are the member names whose entries go to the room (empty:
	// every member's).
	Members []string `toml:"members"`
	// Kinds are the kinds of entries that go to the room (empty:
	// DefaultKinds). Decisions and checkpoints (committed crisis
	// states) are posted as notices.
	Kinds []string `toml:"kinds"`
	// MaxTLP is the highest TLP that may go to the room: clear, green
	// (default) or amber. AMBER goes only to an end-to-end encrypted
	// room, and only while every joined member is in Allow (checked
	// before each send). RED and AMBER+STRICT never go.
	MaxTLP string `toml:"max_tlp"`
	// RoomTLP is the TLP of the entries written from the room's messages
	// (default green). It is never above what the room can hold: amber
	// only for an encrypted room (in a plain room it is written as green).
	RoomTLP string `toml:"room_tlp"`
	// Allow are the Matrix users whose messages become entries (and who
	// may use !status and !crisis); everyone else is ignored.
	Allow []string `toml:"allow"`
	// Poll is how often the log is checked for new entries (default
	// 250ms).
	Poll Duration `toml:"poll"`
}

// Duration is a time.Duration written as text in TOML ("250ms").
type Duration struct{ time.Duration }

// UnmarshalText reads "250ms", "2s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("matrix: %w", err)
	}
	d.Duration = v
	return nil
}

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultKinds are the kinds posted to the room when Kinds is empty.
var DefaultKinds = []log.Kind{log.KindIncident, log.KindSitrep, log.KindRequest, log.KindDecision, log.KindMessage, log.KindCheckpoint}

// bridgeable are the kinds Kinds may name: people's entries and crisis
// states, never keys, roster updates or proposals.
var bridgeable = []log.Kind{log.KindIncident, log.KindSitrep, log.KindRequest, log.KindDecision, log.KindMessage, log.KindAck, log.KindCheckpoint, log.KindIntel}

// tlpRank orders the labels that may cross; RED and AMBER+STRICT never do.
var tlpRank = map[log.TLP]int{log.TLPClear: 0, log.TLPGreen: 1, log.TLPAmber: 2}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u, err := url.Parse(c.Homeserver); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("homeserver: %q is not an http(s) URL", c.Homeserver)
	}
	if !strings.HasPrefix(c.User, "@") || !strings.Contains(c.User, ":") {
		bad("user: %q is not a Matrix user ID (@name:server)", c.User)
	}
	if (c.AccessTokenFile == "") == (c.PasswordFile == "") {
		bad("access_token_file or password_file: set exactly one")
	}
	if !strings.HasPrefix(c.Room, "!") || !strings.Contains(c.Room, ":") {
		bad("room: %q is not a room ID (!id:server; an alias will not do)", c.Room)
	}
	for _, k := range c.Kinds {
		if !slices.Contains(bridgeable, log.Kind(k)) {
			bad("kinds: %q cannot go to a room (kinds: %s)", k, kindList(bridgeable))
		}
	}
	if _, ok := tlpRank[log.TLP(c.MaxTLP)]; !ok && c.MaxTLP != "" {
		bad("max_tlp: %q (want clear, green or amber; RED and AMBER+STRICT never go to a room)", c.MaxTLP)
	}
	if _, ok := tlpRank[log.TLP(c.RoomTLP)]; !ok && c.RoomTLP != "" {
		bad("room_tlp: %q (want clear, green or amber)", c.RoomTLP)
	}
	for _, a := range c.Allow {
		if !strings.HasPrefix(a, "@") || !strings.Contains(a, ":") {
			bad("allow: %q is not a Matrix user ID (@name:server)", a)
		}
	}
	if c.Poll.Duration < 0 {
		bad("poll: negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("matrix: %w", errors.Join(errs...))
	}
	return nil
}

func kindList(ks []log.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func (c Config) maxTLP() log.TLP {
	if c.MaxTLP == "" {
		return log.TLPGreen
	}
	return log.TLP(c.MaxTLP)
}

func (c Config) roomTLP() log.TLP {
	if c.RoomTLP == "" {
		return log.TLPGreen
	}
	return log.TLP(c.RoomTLP)
}

func (c Config) kinds() []log.Kind {
	if len(c.Kinds) == 0 {
		return DefaultKinds
	}
	ks := make([]log.Kind, len(c.Kinds))
	for i, k := range c.Kinds {
		ks[i] = log.Kind(k)
	}
	return ks
}

func (c Config) poll() time.Duration {
	if c.Poll.Duration == 0 {
		return 250 * time.Millisecond
	}
	return c.Poll.Duration
}
