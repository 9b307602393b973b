package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/node"
	"github.com/spf13/cobra"
)

func newNetworkCmd() *cobra.Command {
	network := &cobra.Command{
		Use:   "network",
		Short: "Found a network and inspect its genesis",
	}
	network.AddCommand(newNetworkCreateCmd(), newNetworkShowCmd())
	return network
}

func newNetworkCreateCmd() *cobra.Command {
	var (
		name, adminDir, passFile, out string
		members, voters, extraAdmins  []string
		roles, addrs                  []string
		asJSON                        bool
		threshold                     int
		approvalTTL                   time.Duration
	)
	c := &cobra.Command{
		Use:   "create --name NAME --admin DIR --member CARD... --voter NAME... [--out FILE]",
		Short: "Write the signed genesis that founds a network",
		Long: `create writes the genesis: the network's name, its members with their cards and roles,
the Raft voters and the admins, signed by the admin whose identity is in --admin. The
network ID is the SHA-256 of the genesis file; every member checks it with
'crisismesh network show'.

Roles: csirt, cyclone, presidency, commission, enisa, cert-eu, observer, admin.
The admin is always a member with the admin role. Every other member needs --role.
Voters keep the crisis state by Raft: name an odd number (1 for a test network, 3 or 5
well-connected members in production). Every other member still learns the state.

With --extra-admin and --admin-threshold K, a change of members or groups takes effect
only once K distinct admins have signed it ('crisismesh member approve'): one stolen admin
key can then neither add nor revoke a member. Without it (K = 1) the genesis is written as
before and keeps its network ID.

All problems with the options are reported at once.`,
		Example: `  crisismesh network create --name eu-cyclone --admin ./enisa \
    --member cert-lu/card.json --member cyclone-fr/card.json --member presidency/card.json \
    --role enisa=enisa --role cert-lu=csirt --role cyclone-fr=cyclone,csirt \
    --role presidency=presidency --voter enisa --voter cyclone-fr --voter presidency \
    --addr cert-lu=/ip4/192.0.2.10/udp/4001/quic-v1`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if name == "" || adminDir == "" {
				return usageError{fmt.Errorf("network create needs --name and --admin; run 'crisismesh network create --help'")}
			}
			var pass []byte
			if passFile != "" {
				var err error
				if pass, err = node.ReadPassphraseFile(passFile); err != nil {
					return err
				}
			}
			admin, err := node.LoadIdentity(adminDir, pass)
			if err != nil {
				return err
			}
			opts := node.NetworkOptions{
				Name: name, Admin: admin, Voters: voters, Out: out, Now: time.Now().UTC(),
				ExtraAdmins: extraAdmins, Roles: map[string][]string{}, Addrs: map[string][]string{},
				AdminThreshold: threshold, ApprovalTTL: approvalTTL,
			}
			var problems []string
			for _, m := range members {
				card, err := node.ReadCard(m)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				opts.Members = append(opts.Members, card)
			}
			for _, r := range roles {
				who, list, ok := strings.Cut(r, "=")
				if !ok || who == "" || list == "" {
					problems = append(problems, fmt.Sprintf("--role %q: want NAME=ROLE[,ROLE…], e.g. cert-lu=csirt", r))
					continue
				}
				opts.Roles[who] = append(opts.Roles[who], strings.Split(list, ",")...)
			}
			for _, a := range addrs {
				who, addr, ok := strings.Cut(a, "=")
				if !ok || who == "" || addr == "" {
					problems = append(problems, fmt.Sprintf("--addr %q: want NAME=MULTIADDR, e.g. cert-lu=/ip4/192.0.2.10/udp/4001/quic-v1", a))
					continue
				}
				opts.Addrs[who] = append(opts.Addrs[who], addr)
			}
			if len(problems) > 0 {
				return &node.ProblemsError{What: "network create", Problems: problems}
			}
			g, err := node.CreateNetwork(opts)
			if err != nil {
				return err
			}
			path := out
			if path == "" {
				path = node.DefaultGenesisPath
			}
			v := node.ViewRoster(g.Roster())
			if asJSON {
				return printJSON(c.OutOrStdout(), struct {
					node.NetworkView
					GenesisFile string `json:"genesis_file"`
				}{v, path})
			}
			printRoster(c, v)
			fmt.Fprintf(c.OutOrStdout(), "\nWrote %s. Give it to every member; each checks it with:\n  crisismesh network show %s\nand compares the network ID %s with yours.\n", path, path, v.NetworkID[:16])
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "network name (a-z, 0-9, '.', '_', '-'), e.g. eu-cyclone")
	f.StringVar(&adminDir, "admin", "", "identity directory (from keygen) of the admin who signs the genesis")
	f.StringVar(&passFile, "passphrase-file", "", "passphrase file of the admin's identity, if it has one")
	f.StringSliceVar(&members, "member", nil, "a member's card.json (or keygen directory); repeat, or separate with commas")
	f.StringSliceVar(&voters, "voter", nil, "name of a Raft voter; repeat for each (an odd number)")
	f.StringArrayVar(&roles, "role", nil, "NAME=ROLE[,ROLE…]: roles of a member; repeat per member")
	f.StringArrayVar(&addrs, "addr", nil, "NAME=MULTIADDR: where a member's node can be reached; repeatable")
	f.StringSliceVar(&extraAdmins, "extra-admin", nil, "name of a further admin (gets the admin role)")
	f.IntVar(&threshold, "admin-threshold", 1, "how many distinct admins must sign a change of members or groups (at most the number of admins)")
	f.DurationVar(&approvalTTL, "approval-time", 0, "how long a change may wait for approvals (default 72h)")
	f.StringVar(&out, "out", "", "genesis file to write (default ./"+node.DefaultGenesisPath+"); never overwritten")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func newNetworkShowCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show [GENESIS]",
		Short: "Verify a genesis file and print the network it founds",
		Long: `show verifies the genesis (every member card, the roles, voters and admins, and the
admin's signature) and prints the network ID and members. GENESIS defaults to ./genesis.`,
		Example: "  crisismesh network show genesis\n  crisismesh network show /etc/crisismesh/genesis --json",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError{fmt.Errorf("network show takes at most one GENESIS file")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			path := node.DefaultGenesisPath
			if len(args) == 1 {
				path = args[0]
			}
			g, err := node.ReadGenesis(path)
			if err != nil {
				return err
			}
			v := node.ViewRoster(g.Roster())
			if asJSON {
				return printJSON(c.OutOrStdout(), v)
			}
			printRoster(c, v)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the network as JSON")
	return c
}
