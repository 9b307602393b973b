package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/multiformats/go-multiaddr"

	"github.com/crisismesh/crisismesh/interop/matrix"
	"github.com/crisismesh/crisismesh/replication/log"
	"github.com/crisismesh/crisismesh/transport"
)

// Files of a data directory.
const (
	ConfigFile  = "config.toml"
	GenesisFile = "genesis"
	TokenFile   = "api.token"
	lockFile    = "node.lock"
	bundlesDir  = "bundles"
	storeDir    = "store"
	raftDir     = "raft"
)

// Config is a node's config.toml. Field names are the file's keys; they are
// a contract with operators' files: add keys, never rename one.
type Config struct {
	// Listen are the libp2p listen multiaddrs (TCP and QUIC).
	Listen []string `toml:"listen"`
	// Profile is the link profile for peers not pinned or measured:
	// "lan", "internet" or "satellite".
	Profile string `toml:"profile"`
	// Peers are static peers (multiaddrs ending in /p2p/PEER_ID).
	Peers []string `toml:"peers"`
	// MDNS finds roster peers on the local network.
	MDNS bool `toml:"mdns"`
	// API is the address of the local HTTP API (127.0.0.1 only).
	API string `toml:"api"`
	// LogFormat is "text" or "json"; LogLevel "debug", "info", "warn" or
	// "error".
	LogFormat string `toml:"log_format"`
	LogLevel  string `toml:"log_level"`
	// RelayService and RelayClient turn on circuit relay v2; Relays are the
	// relays a client keeps a reservation on.
	RelayService bool     `toml:"relay_service"`
	RelayClient  bool     `toml:"relay_client"`
	Relays       []string `toml:"relays"`
	// BundleDir is the only directory in which the API reads or writes a
	// bundle named by path ("" means bundles/ in the data directory; a
	// relative path is relative to the data directory). The CLI streams
	// bundles through the API instead, so it needs no path here.
	BundleDir string `toml:"bundle_dir"`
	// Matrix joins the node to a team's Matrix room (interop/matrix);
	// without a [matrix] section there is no bridge.
	Matrix *matrix.Config `toml:"matrix,omitempty"`
	// Narrow tunes narrow links (peers on the satellite profile): this
	// node's own entries go there with provisional signatures and their
	// composite signatures follow within the window. Without a [narrow]
	// section: on, with log.DefaultWindow (128 entries or 120 s, 30 s of
	// grace).
	Narrow *NarrowConfig `toml:"narrow,omitempty"`
}

// NarrowConfig is the [narrow] section of config.toml (see
// replication/log, "Narrow links", for the window and why it is safe).
// A zero field means its default.
type NarrowConfig struct {
	// Off sends composite signatures with every entry on every link.
	Off bool `toml:"off"`
	// Entries (N) and Interval (T): the composite follows at least every
	// N entries or T after the oldest entry still waiting at a peer.
	Entries  int           `toml:"entries"`
	Interval time.Duration `toml:"interval"`
	// Grace: how much longer than T a receiver waits before it shows a
	// waiting entry as overdue.
	Grace time.Duration `toml:"grace"`
}

// NarrowWindow returns the window of this node's narrow links, and false
// if narrow links are off.
func (c Config) NarrowWindow() (log.Window, bool) {
	w := log.DefaultWindow()
	n := c.Narrow
	if n == nil {
		return w, true
	}
	if n.Entries != 0 {
		w.Entries = n.Entries
	}
	if n.Interval != 0 {
		w.Interval = n.Interval
	}
	if n.Grace != 0 {
		w.Grace = n.Grace
	}
	return w, !n.Off
}

// DefaultConfig is a node on the internet profile listening on port 4001,
// mDNS on, API on 127.0.0.1:8640.
func DefaultConfig() Config {
	return Config{
		Listen:    []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
		Profile:   transport.ProfileInternet,
		MDNS:      true,
		API:       "127.0.0.1:8640",
		LogFormat: "text",
		LogLevel:  "info",
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Listen) == 0 {
		bad("listen: no address (e.g. \"/ip4/0.0.0.0/tcp/4001\")")
	}
	for _, a := range append(append([]string{}, c.Listen...), c.Peers...) {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			bad("address %q is not a multiaddr: %v", a, err)
		}
	}
	for _, p := range c.Peers {
		if !strings.Contains(p, "/p2p/") {
			bad("peers: %q needs its /p2p/PEER_ID part", p)
		}
	}
	if _, err := transport.ProfileByName(c.Profile); err != nil {
		bad("profile: %v", err)
	}
	if c.API != "" && !strings.HasPrefix(c.API, "127.0.0.1:") && !strings.HasPrefix(c.API, "[::1]:") && !strings.HasPrefix(c.API, "localhost:") {
		bad("api: %q must be on 127.0.0.1 or ::1 (the API is local; put a proxy in front to expose it)", c.API)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format: %q (want text or json)", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level: %q (want debug, info, warn or error)", c.LogLevel)
	}
	if w, on := c.NarrowWindow(); on {
		if err := w.Validate(); err != nil {
			bad("narrow: %v", err)
		}
	}
	if c.Matrix != nil {
		if err := c.Matrix.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

// LoadConfig reads dir/config.toml; a missing file means DefaultConfig.
// Unknown keys are refused (a typo must not silently fall back to a
// default).
func LoadConfig(dir string) (Config, error) {
	c := DefaultConfig()
	path := filepath.Join(dir, ConfigFile)
	md, err := toml.DecodeFile(path, &c)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return c, fmt.Errorf("config %s: unknown keys %v", path, und)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteConfig writes c to dir/config.toml (not over an existing file).
func WriteConfig(dir string, c Config) error {
	b, err := encodeConfig(c)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ConfigFile), b, 0o644)
}

// encodeConfig checks c and encodes it as config.toml.
func encodeConfig(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# crisismesh node configuration. Restart the node after a change.\n")
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// AddPeers adds multiaddrs (each with a /p2p/ part) to the peers of the
// config in dir, keeping the rest of it; a peer already listed is not
// added twice. The config is replaced atomically.
func AddPeers(dir string, peers []string) error {
	c, err := LoadConfig(dir)
	if err != nil {
		return err
	}
	for _, p := range peers {
		if !slices.Contains(c.Peers, p) {
			c.Peers = append(c.Peers, p)
		}
	}
	b, err := encodeConfig(c)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, ConfigFile)
	tmp := path + ".new"
	os.Remove(tmp)
	if err := writeFileAtomic(tmp, b, 0o644); err != nil {
		return fmt.Errorf("node: config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("node: config: %w", err)
	}
	return nil
}
