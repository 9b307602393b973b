package matrix

import (
	"errors"
	"strings"
	"testing"

	"github.com/crisismesh/crisismesh/replication/log"
)

func validConfig() Config {
	return Config{Homeserver: "https://matrix.example.org", User: "@bot:example.org", AccessTokenFile: "matrix.token",
		Room: "!team:example.org", Allow: []string{"@alice:example.org"}}
}

func TestBridgeConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := Config{Homeserver: "ftp://x", User: "bot", Room: "#alias:example.org", Kinds: []string{"key"},
		MaxTLP: "red", RoomTLP: "amber+strict", Allow: []string{"alice"}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"homeserver", "user", "access_token_file or password_file", "room", "kinds", "max_tlp", "room_tlp", "allow"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBridgeWithhold(t *testing.T) {
	plain := Room{Encrypted: false, Joined: []string{"@bot:example.org", "@alice:example.org"}}
	enc := Room{Encrypted: true, Joined: []string{"@bot:example.org", "@alice:example.org"}}
	stranger := Room{Encrypted: true, Joined: []string{"@bot:example.org", "@alice:example.org", "@eve:example.org"}}
	amberCfg := validConfig()
	amberCfg.MaxTLP = "amber"
	onlyLU := validConfig()
	onlyLU.Members = []string{"cert-lu"}
	msg := func(tlp log.TLP) Entry {
		return Entry{ID: "e", Author: "cert-lu", Readable: true, Kind: log.KindMessage, TLP: tlp}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		e    Entry
		room Room
		want string
	}{
		{"green goes", validConfig(), msg(log.TLPGreen), plain, ""},
		{"clear goes", validConfig(), msg(log.TLPClear), plain, ""},
		{"red never", amberCfg, msg(log.TLPRed), enc, WithheldRed},
		{"amber+strict never", amberCfg, msg(log.TLPAmberStrict), enc, WithheldAmberStrict},
		{"amber not configured", validConfig(), msg(log.TLPAmber), enc, WithheldAboveMax},
		{"amber to a plain room", amberCfg, msg(log.TLPAmber), plain, WithheldNotEncrypted},
		{"amber with a stranger in the room", amberCfg, msg(log.TLPAmber), stranger, WithheldNotAllowed},
		{"amber, encrypted, all allowed", amberCfg, msg(log.TLPAmber), enc, ""},
		{"sealed", validConfig(), Entry{Author: "cert-lu", Kind: log.KindMessage, TLP: log.TLPGreen}, plain, WithheldSealed},
		{"from the room", validConfig(), Entry{Author: "cert-lu", Readable: true, Kind: log.KindMessage, TLP: log.TLPGreen, Bridged: &log.Bridged{}}, plain, WithheldBridged},
		{"kind not configured", validConfig(), Entry{Author: "cert-lu", Readable: true, Kind: log.KindAck, TLP: log.TLPGreen}, plain, WithheldKind},
		{"member not configured", onlyLU, Entry{Author: "cert-fr", Readable: true, Kind: log.KindMessage, TLP: log.TLPGreen}, plain, WithheldMember},
	} {
		asked := false
		got, err := tc.cfg.withhold(tc.e, func() (Room, error) { asked = true; return tc.room, nil })
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if asked && tc.e.TLP != log.TLPAmber {
			t.Errorf("%s: the room was asked for a %s entry", tc.name, tc.e.TLP)
		}
	}
	// A room that cannot be read withholds nothing and sends nothing: the
	// error is retried.
	boom := errors.New("homeserver down")
	if _, err := amberCfg.withhold(msg(log.TLPAmber), func() (Room, error) { return Room{}, boom }); !errors.Is(err, boom) {
		t.Errorf("room error: got %v", err)
	}
}

func TestBridgeInboundTLP(t *testing.T) {
	c := validConfig()
	if got := c.inboundTLP(false); got != log.TLPGreen {
		t.Errorf("default: %s", got)
	}
	c.RoomTLP = "amber"
	if got := c.inboundTLP(false); got != log.TLPGreen {
		t.Errorf("amber from a plain room: %s, want green", got)
	}
	if got := c.inboundTLP(true); got != log.TLPAmber {
		t.Errorf("amber from an encrypted room: %s", got)
	}
}

// A Reserve deadline notice goes where the crisis state goes: TLP:AMBER,
// kind checkpoint configured; the members rule has nothing to apply to.
func TestBridgeWithholdNotice(t *testing.T) {
	enc := Room{Encrypted: true, Joined: []string{"@bot:example.org", "@alice:example.org"}}
	stranger := Room{Encrypted: true, Joined: []string{"@bot:example.org", "@alice:example.org", "@eve:example.org"}}
	amber := validConfig()
	amber.MaxTLP = "amber"
	noStates := amber
	noStates.Kinds = []string{"sitrep", "message"}
	onlyLU := amber
	onlyLU.Members = []string{"cert-lu"}
	for _, c := range []struct {
		name string
		cfg  Config
		room Room
		want string
	}{
		{"default max_tlp green", validConfig(), enc, WithheldAboveMax},
		{"amber, encrypted, allowed members", amber, enc, ""},
		{"amber, plain room", amber, Room{Joined: enc.Joined}, WithheldNotEncrypted},
		{"amber, a member not allowed", amber, stranger, WithheldNotAllowed},
		{"crisis states not configured", noStates, enc, WithheldKind},
		{"members rule", onlyLU, enc, ""},
	} {
		got, err := c.cfg.withholdNotice(func() (Room, error) { return c.room, nil })
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v, want %q", c.name, got, err, c.want)
		}
	}
	if _, err := amber.withholdNotice(func() (Room, error) { return Room{}, errors.New("down") }); err == nil {
		t.Error("a room that cannot be read: no error")
	}
}
