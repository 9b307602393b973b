package node

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/crisismesh/crisismesh/crypto"
	"github.com/crisismesh/crisismesh/transport"
)

// DefaultDir is the data directory when --dir is not given:
// $CRISISMESH_DIR, else ~/.crisismesh.
func DefaultDir() string {
	if d := os.Getenv("CRISISMESH_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".crisismesh")
	}
	return ".crisismesh"
}

// Init makes a data directory: identity, card, default config and API
// token. It refuses a directory that already holds an identity.
func Init(dir, name string, passphrase []byte, now time.Time) (*crypto.Card, error) {
	card, err := Keygen(KeygenOptions{Name: name, Dir: dir, Passphrase: passphrase, Now: now})
	if err != nil {
		return nil, err
	}
	if err := WriteConfig(dir, DefaultConfig()); err != nil {
		return nil, err
	}
	if err := writeToken(dir); err != nil {
		return nil, err
	}
	return card, nil
}

// writeToken writes a fresh random API bearer token (0600).
func writeToken(dir string) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, TokenFile), []byte(hex.EncodeToString(b[:])+"\n"), 0o600)
}

// Join installs a genesis into a data directory after checking it. A
// genesis that does not list this directory's member is accepted: the
// member joins a running network, whose admin adds it with a roster
// update (`crisismesh member add`) that the node learns from its peers
// (see Listed).
func Join(dir, genesisPath string) (*crypto.Genesis, error) {
	g, err := ReadGenesis(genesisPath)
	if err != nil {
		return nil, err
	}
	card, err := ReadCard(dir)
	if err != nil {
		return nil, fmt.Errorf("join: %w (make the data directory first: crisismesh init --name NAME --dir %s)", err, dir)
	}
	if m, ok := g.Roster().Member(card.ID()); ok && m.Revoked {
		return nil, fmt.Errorf("join: the genesis of network %s lists %s (%s) as revoked", g.Roster().Name(), card.Name(), card.ID().Short())
	}
	dst := filepath.Join(dir, GenesisFile)
	if old, err := os.ReadFile(dst); err == nil {
		if bytes.Equal(old, g.Bytes()) {
			return g, nil
		}
		return nil, fmt.Errorf("join: %s already holds another network's genesis: a data directory belongs to one network; use another --dir", dir)
	}
	if err := writeFileAtomic(dst, g.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	return g, nil
}

// Listed reports whether the genesis lists the member of data directory
// dir (false: it waits for a roster update that adds it).
func Listed(g *crypto.Genesis, dir string) (bool, error) {
	card, err := ReadCard(dir)
	if err != nil {
		return false, err
	}
	_, ok := g.Roster().Member(card.ID())
	return ok, nil
}

// TestnetOptions describe a local test network.
type TestnetOptions struct {
	Dir      string
	Nodes    int
	Voters   int              // default min(Nodes, 3)
	BasePort int              // node i listens on 127.0.0.1:BasePort+i (TCP and QUIC); API on BasePort+500+i
	Roles    map[int][]string // overrides, by node index
	Now      time.Time
	// Admins: the first Admins nodes are admins (default 1: node0);
	// AdminThreshold of them must sign a roster change (default 1).
	Admins, AdminThreshold int
	// Narrow is every node's [narrow] section (nil: the defaults).
	Narrow *NarrowConfig
}

// TestnetNode is one prepared node.
type TestnetNode struct {
	Name   string   `json:"name"`
	Dir    string   `json:"dir"`
	PeerID string   `json:"peer_id"`
	Listen []string `json:"listen_addrs"`
	API    string   `json:"api"`
	Roles  []string `json:"roles"`
	Voter  bool     `json:"voter"`
}

// testnetRoles is the cycle of roles, node0 first (node0 is also admin).
var testnetRoles = []string{"presidency", "cyclone", "csirt", "commission", "enisa"}

// Testnet prepares N data directories D/node0… sharing one genesis, on
// 127.0.0.1, each configured with the others as static peers.
func Testnet(o TestnetOptions) ([]TestnetNode, error) {
	var problems []string
	if o.Nodes < 1 {
		problems = append(problems, "--nodes must be at least 1")
	}
	if o.Voters == 0 {
		// min(N, 3), made odd: a 2-node testnet has 1 voter.
		o.Voters = min(o.Nodes, 3)
		if o.Voters%2 == 0 {
			o.Voters--
		}
	}
	if o.Voters < 1 || o.Voters > o.Nodes || o.Voters%2 == 0 {
		problems = append(problems, fmt.Sprintf("--voters %d: want an odd number from 1 to --nodes (%d)", o.Voters, o.Nodes))
	}
	o.Admins = max(o.Admins, 1)
	if o.Admins > o.Nodes || o.AdminThreshold > o.Admins || o.AdminThreshold < 0 {
		problems = append(problems, fmt.Sprintf("%d admins with a threshold of %d: want 1 to --nodes admins and a threshold of at most the admins", o.Admins, o.AdminThreshold))
	}
	if o.BasePort <= 0 || o.BasePort+500+o.Nodes > 65535 {
		problems = append(problems, fmt.Sprintf("--base-port %d: want a port so that base+500+nodes ≤ 65535", o.BasePort))
	}
	if len(problems) > 0 {
		return nil, &ProblemsError{What: "testnet", Problems: problems}
	}
	if entries, err := os.ReadDir(o.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("testnet: %s is not empty; choose an empty or new directory", o.Dir)
	}
	nodes := make([]TestnetNode, o.Nodes)
	ids := make([]*crypto.Identity, o.Nodes)
	for i := range nodes {
		nd := &nodes[i]
		nd.Name = fmt.Sprintf("node%d", i)
		nd.Dir = filepath.Join(o.Dir, nd.Name)
		port := o.BasePort + i
		nd.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)}
		nd.API = fmt.Sprintf("127.0.0.1:%d", o.BasePort+500+i)
		nd.Roles = []string{testnetRoles[i%len(testnetRoles)]}
		if r, ok := o.Roles[i]; ok {
			nd.Roles = r
		}
		nd.Voter = i < o.Voters
		if _, err := Init(nd.Dir, nd.Name, nil, o.Now); err != nil {
			return nil, err
		}
		id, err := LoadIdentity(nd.Dir, nil)
		if err != nil {
			return nil, err
		}
		ids[i] = id
		nd.PeerID = id.PeerID().String()
	}
	spec := crypto.GenesisSpec{Network: "testnet", Created: o.Now, AdminThreshold: o.AdminThreshold}
	for i, nd := range nodes {
		m := crypto.Member{Card: ids[i].Card(), Addrs: []string{nd.Listen[0]}}
		roles := nd.Roles
		if i < o.Admins {
			spec.Admins = append(spec.Admins, ids[i].ID())
			roles = append(append([]string{}, roles...), string(crypto.RoleAdmin))
		}
		for _, r := range roles {
			role, err := crypto.ParseRole(r)
			if err != nil {
				return nil, fmt.Errorf("testnet: %s: %w", nd.Name, err)
			}
			m.Roles = append(m.Roles, role)
		}
		spec.Members = append(spec.Members, m)
		if nd.Voter {
			spec.Voters = append(spec.Voters, ids[i].ID())
		}
	}
	g, err := crypto.NewGenesis(spec, ids[0])
	if err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	for i, nd := range nodes {
		if err := writeFileAtomic(filepath.Join(nd.Dir, GenesisFile), g.Bytes(), 0o644); err != nil {
			return nil, err
		}
		cfg := DefaultConfig()
		cfg.Listen = nd.Listen
		cfg.Profile = transport.ProfileLAN
		cfg.MDNS = false
		cfg.API = nd.API
		cfg.Narrow = o.Narrow
		for j, other := range nodes {
			if j != i {
				cfg.Peers = append(cfg.Peers, other.Listen[0]+"/p2p/"+other.PeerID)
			}
		}
		if err := os.Remove(filepath.Join(nd.Dir, ConfigFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if err := WriteConfig(nd.Dir, cfg); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

// FreeBasePort returns a base port for a testnet of n nodes on 127.0.0.1
// whose ports (TCP and UDP at base+i, TCP at base+500+i) are free now. It
// stays below the kernel's ephemeral ports (32768 on Linux), where an
// outgoing connection could take one of them between a node's stop and
// restart, and draws the base at random so that testnets started at the
// same time rarely meet; what is free now may be taken later.
func FreeBasePort(n int) (int, error) {
	const lo, hi = 20000, 32768 - 500
	if n < 1 || n > 400 {
		return 0, fmt.Errorf("testnet: %d nodes: want 1 to 400", n)
	}
	for try := 0; try < 100; try++ {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		base := lo + int(binary.BigEndian.Uint16(b[:]))%(hi-n-lo)
		if portsFree(base, n) {
			return base, nil
		}
	}
	return 0, errors.New("testnet: found no free range of ports below 32768 in 100 tries")
}

func portsFree(base, n int) bool {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		for _, port := range []int{base + i, base + 500 + i} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return false
			}
			closers = append(closers, l)
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", base+i))
		if err != nil {
			return false
		}
		closers = append(closers, u)
	}
	return true
}
