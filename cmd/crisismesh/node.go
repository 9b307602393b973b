package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
)

// dirFlag adds --dir with its default.
func dirFlag(c *cobra.Command, dir *string) {
	c.Flags().StringVar(dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")
}

func readPass(file string) ([]byte, error) {
	if file == "" {
		return nil, nil
	}
	return node.ReadPassphraseFile(file)
}

func newInitCmd() *cobra.Command {
	var name, dir, passFile string
	var asJSON, rotate bool
	c := &cobra.Command{
		Use:   "init --name NAME [--dir D] | init --rotate [--dir D]",
		Short: "Make a node's data directory: identity, member card, config and API token",
		Long: `init makes a data directory for one member: identity.key (secret, 0600), card.json
(public: send it to the network admin), config.toml (edit listen addresses, profile and
peers there) and api.token. Then get the genesis from your admin and run
'crisismesh join --genesis FILE'.

init --rotate makes the next identity of the member in D (same name, new keys) in D/next,
beside the current one. Send D/next/card.json to an admin, who runs 'crisismesh member
rotate NAME --card card.json'; once the node holds that update it switches to the new
identity at its next start, keeping its data and the old key (to read what was sealed to
it).`,
		Example: "  crisismesh init --name cert-lu --dir /var/lib/crisismesh\n  crisismesh init --rotate --dir /var/lib/crisismesh",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if rotate {
				if name != "" {
					return usageError{fmt.Errorf("init --rotate keeps the member's name: drop --name")}
				}
				pass, err := readPass(passFile)
				if err != nil {
					return err
				}
				card, err := node.PrepareRotation(dir, pass, time.Now().UTC())
				if err != nil {
					return err
				}
				v := node.ViewCard(card)
				if asJSON {
					return printJSON(c.OutOrStdout(), v)
				}
				next := filepath.Join(dir, "next", node.CardFile)
				fmt.Fprintf(c.OutOrStdout(), "Made the next identity of %s in %s\n  member ID  %s\n  peer ID    %s\nNext: send %s to an admin, who runs:\n  crisismesh member rotate %s --card card.json\nthen restart this node (crisismesh run --dir %s): it switches to the new identity.\n", v.Name, filepath.Dir(next), v.MemberID, v.PeerID, next, v.Name, dir)
				return nil
			}
			if name == "" {
				return usageError{fmt.Errorf("init needs --name (e.g. --name cert-lu); run 'crisismesh init --help'")}
			}
			pass, err := readPass(passFile)
			if err != nil {
				return err
			}
			card, err := node.Init(dir, name, pass, time.Now().UTC())
			if err != nil {
				return err
			}
			v := node.ViewCard(card)
			if asJSON {
				return printJSON(c.OutOrStdout(), struct {
					node.CardView
					Dir string `json:"dir"`
				}{v, dir})
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "Initialised %s in %s\n  member ID  %s\n  peer ID    %s\n", v.Name, dir, v.MemberID, v.PeerID)
			fmt.Fprintf(w, "Next: send %s/%s to your network admin, then: crisismesh join --genesis FILE --dir %s\n", dir, node.CardFile, dir)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "member name, e.g. cert-lu")
	c.Flags().BoolVar(&rotate, "rotate", false, "make the next identity of the member in --dir (a key rotation)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "encrypt the identity under the passphrase on the first line of this file")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func newJoinCmd() *cobra.Command {
	var dir, genesis string
	var peers []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "join --genesis FILE [--peer MULTIADDR]... [--dir D]",
		Short: "Install the network's genesis into a data directory",
		Long: `join checks the genesis (signatures, roles, voters) and installs it. Compare the network
ID it prints with your admin's.

A new member of a running network joins with the unchanged genesis, which does not list
it: join says so, and the node waits for the roster update that adds it. Give it the
addresses of one or more running members with --peer (kept in config.toml as peers);
send your card.json to an admin, who runs 'crisismesh member add'. Once the members hold
that update they admit this node, and it catches up on the whole log.`,
		Example: `  crisismesh join --genesis ./genesis --dir /var/lib/crisismesh
  crisismesh join --genesis ./genesis --dir ./cert-de \
    --peer /ip4/192.0.2.10/udp/4001/quic-v1/p2p/12D3KooW...`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if genesis == "" {
				return usageError{fmt.Errorf("join needs --genesis FILE; run 'crisismesh join --help'")}
			}
			g, err := node.Join(dir, genesis)
			if err != nil {
				return err
			}
			if len(peers) > 0 {
				if err := node.AddPeers(dir, peers); err != nil {
					return err
				}
			}
			listed, err := node.Listed(g, dir)
			if err != nil {
				return err
			}
			v := node.ViewRoster(g.Roster())
			if asJSON {
				return printJSON(c.OutOrStdout(), struct {
					node.NetworkView
					Listed bool `json:"listed"`
				}{v, listed})
			}
			printRoster(c, v)
			if !listed {
				card, _ := node.ReadCard(dir)
				fmt.Fprintf(c.OutOrStdout(), "\nThis genesis does not list %s: the node will wait for a roster update that adds it.\n"+
					"  1. Send %s to an admin, who runs: crisismesh member add CARD --role ROLE\n"+
					"  2. Start the node: crisismesh run --dir %s (it dials the peers in %s)\n",
					card.Name(), filepath.Join(dir, node.CardFile), dir, filepath.Join(dir, node.ConfigFile))
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "\nJoined. Start the node with: crisismesh run --dir %s\n", dir)
			return nil
		},
	}
	c.Flags().StringVar(&genesis, "genesis", "", "the genesis file from the network admin")
	c.Flags().StringArrayVar(&peers, "peer", nil, "multiaddr (with /p2p/PEER_ID) of a running member to dial; repeat")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func newRunCmd() *cobra.Command {
	var dir, passFile, pprofAddr string
	c := &cobra.Command{
		Use:   "run [--dir D] [--pprof 127.0.0.1:PORT]",
		Short: "Run the node in the foreground until SIGINT or SIGTERM",
		Long: `run starts the node: the crisis log (badger), the libp2p host, sync and the Raft member.
It stops cleanly on SIGINT/SIGTERM; everything acknowledged is on disk before it is
acknowledged, so even kill -9 loses nothing acknowledged. One node per directory.
--pprof serves Go's profiles (CPU, heap, block, mutex) on a loopback address; off by default.`,
		Example: "  crisismesh run --dir /var/lib/crisismesh\n  crisismesh run --dir ./tn/node0 --pprof 127.0.0.1:6060   # go tool pprof http://127.0.0.1:6060/debug/pprof/profile",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			pass, err := readPass(passFile)
			if err != nil {
				return err
			}
			cfg, err := node.LoadConfig(dir)
			if err != nil {
				return err
			}
			logger := newLogger(c, cfg)
			w := c.OutOrStdout()
			if pprofAddr != "" {
				srv, at, err := startPprof(pprofAddr)
				if err != nil {
					return usageError{err}
				}
				defer srv.Close()
				fmt.Fprintf(w, "pprof on http://%s/debug/pprof/\n", at)
			}
			n, err := node.Open(dir, node.Options{Passphrase: pass, Logger: logger})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "crisismesh node %s running in %s\n  peer ID  %s\n", n.Identity().Name(), dir, n.Host().ID())
			for _, a := range n.Host().Addrs() {
				fmt.Fprintf(w, "  listen   %s\n", a)
			}
			if lc, err := n.LoginCode(); err == nil {
				fmt.Fprintf(w, "  dashboard %s  one-time code %s (valid 10 min; crisismesh dashboard --dir %s prints another)\n", lc.URL, lc.Code, dir)
			}
			fmt.Fprintln(w, "Stop with Ctrl-C.")
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			s := <-sig
			fmt.Fprintf(w, "%s: stopping…\n", s)
			return n.Close()
		},
	}
	c.Flags().StringVar(&passFile, "passphrase-file", "", "passphrase file of the identity, if it has one")
	c.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go's profiles on this loopback address (e.g. 127.0.0.1:6060); off when empty")
	dirFlag(c, &dir)
	return c
}

func newLogger(c *cobra.Command, cfg node.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(c.ErrOrStderr(), opts))
	}
	return slog.New(slog.NewTextHandler(c.ErrOrStderr(), opts))
}

func newTestnetCmd() *cobra.Command {
	var dir, roles string
	var nodes, voters, base, admins, threshold int
	var asJSON bool
	c := &cobra.Command{
		Use:   "testnet --nodes N [--voters K] [--admins A [--admin-threshold T]] --dir D [--base-port P]",
		Short: "Prepare N data directories D/node0… of a local test network on 127.0.0.1",
		Long: `testnet prepares N ready data directories sharing one genesis. Node i listens on
127.0.0.1:P+i (TCP and QUIC) and serves its API on 127.0.0.1:P+500+i; voters are
node0…node(K-1) (default K = min(N, 3)). Roles cycle through presidency, cyclone, csirt,
commission, enisa (node0 is also admin, and node0…node(A-1) with --admins A);
--roles node0=csirt+cyclone,node3=enisa overrides them. --admin-threshold T makes T of
the admins sign every roster change ('crisismesh member approve').`,
		Example: "  crisismesh testnet --nodes 4 --voters 3 --dir ./tn\n  crisismesh testnet up --dir ./tn     # every node in one process\n  crisismesh run --dir ./tn/node0      # or one node per terminal",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || nodes == 0 {
				return usageError{fmt.Errorf("testnet needs --nodes N and --dir D; run 'crisismesh testnet --help'")}
			}
			o := node.TestnetOptions{Dir: dir, Nodes: nodes, Voters: voters, BasePort: base, Now: time.Now().UTC(), Roles: map[int][]string{},
				Admins: admins, AdminThreshold: threshold}
			if roles != "" {
				for _, part := range strings.Split(roles, ",") {
					who, list, ok := strings.Cut(part, "=")
					i, err := strconv.Atoi(strings.TrimPrefix(who, "node"))
					if !ok || err != nil || !strings.HasPrefix(who, "node") {
						return usageError{fmt.Errorf("--roles %q: want nodeI=ROLE[+ROLE…], e.g. node0=csirt+cyclone", part)}
					}
					o.Roles[i] = strings.Split(list, "+")
				}
			}
			ns, err := node.Testnet(o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), ns)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "Prepared %d nodes in %s:\n", len(ns), dir)
			for _, n := range ns {
				voter := ""
				if n.Voter {
					voter = " (voter)"
				}
				fmt.Fprintf(w, "  %s  %s%s  listen %s  api %s\n", n.Name, strings.Join(n.Roles, "+"), voter, n.Listen[0], n.API)
			}
			fmt.Fprintf(w, "Start them all in this terminal:\n  crisismesh testnet up --dir %s\nor each in its own terminal:\n", dir)
			for _, n := range ns {
				fmt.Fprintf(w, "  crisismesh run --dir %s\n", n.Dir)
			}
			return nil
		},
	}
	c.Flags().IntVar(&nodes, "nodes", 0, "number of nodes")
	c.Flags().IntVar(&voters, "voters", 0, "number of Raft voters, odd (default min(nodes, 3))")
	c.Flags().IntVar(&base, "base-port", 4100, "first libp2p port; node i uses base+i, its API base+500+i")
	c.Flags().StringVar(&dir, "dir", "", "directory to create the nodes in (must be empty or new)")
	c.Flags().StringVar(&roles, "roles", "", "role overrides, e.g. node0=csirt+cyclone,node3=enisa")
	c.Flags().IntVar(&admins, "admins", 1, "number of admins: node0…node(A-1)")
	c.Flags().IntVar(&threshold, "admin-threshold", 1, "how many admins must sign a roster change")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(newTestnetUpCmd())
	return c
}
