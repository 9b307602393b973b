package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/crisismesh/crisismesh/node"
	"github.com/spf13/cobra"
)

func versionInfo() node.BuildInfo { return node.Info(buildVersion()) }

// keygenResult is the JSON contract of 'keygen --json'.
type keygenResult struct {
	node.CardView
	IdentityFile string `json:"identity_file"`
	CardFile     string `json:"card_file"`
	Encrypted    bool   `json:"passphrase_protected"`
}

func newKeygenCmd() *cobra.Command {
	var (
		name, out, passFile string
		asJSON              bool
	)
	c := &cobra.Command{
		Use:   "keygen --name NAME --out DIR [--passphrase-file FILE]",
		Short: "Make a member identity: post-quantum keys and a member card",
		Long: `keygen makes a new member identity in DIR:

  identity.key  the secret keys (composite ML-DSA-65 + Ed25519 signing key, X-Wing KEM
                key, libp2p peer key), mode 0600. Keep it on this machine; back it up.
  card.json     the public member card. Send it to the network admin, who lists you in
                the genesis. Read your member ID to them by phone so they can check it.

With --passphrase-file, the secret keys are encrypted under the passphrase on the first
line of FILE (Argon2id + AES-256-GCM); the node asks for the same file to start.
keygen never overwrites an existing identity.`,
		Example: `  crisismesh keygen --name cert-lu --out ./cert-lu
  crisismesh keygen --name cert-lu --out /etc/crisismesh/id --passphrase-file /run/secrets/pass`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if name == "" || out == "" {
				return usageError{fmt.Errorf("keygen needs --name and --out (e.g. --name cert-lu --out ./cert-lu); run 'crisismesh keygen --help'")}
			}
			var pass []byte
			if passFile != "" {
				var err error
				if pass, err = node.ReadPassphraseFile(passFile); err != nil {
					return err
				}
			}
			card, err := node.Keygen(node.KeygenOptions{Name: name, Dir: out, Passphrase: pass, Now: time.Now().UTC()})
			if err != nil {
				return err
			}
			res := keygenResult{
				CardView:     node.ViewCard(card),
				IdentityFile: filepath.Join(out, node.IdentityFile),
				CardFile:     filepath.Join(out, node.CardFile),
				Encrypted:    pass != nil,
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), res)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "Created identity %s in %s\n", res.Name, out)
			fmt.Fprintf(w, "  member ID  %s\n", res.MemberID)
			fmt.Fprintf(w, "  peer ID    %s\n", res.PeerID)
			protection := "protected by file mode 0600 only"
			if res.Encrypted {
				protection = "encrypted under your passphrase"
			}
			fmt.Fprintf(w, "  secret     %s (%s; back it up)\n", res.IdentityFile, protection)
			fmt.Fprintf(w, "  card       %s (public: send it to your network admin)\n", res.CardFile)
			if !res.Encrypted {
				fmt.Fprintln(c.ErrOrStderr(), "note: the secret key file has no passphrase; use --passphrase-file to encrypt it")
			}
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "member name: 2-63 of a-z, 0-9, '-', starting with a letter (e.g. cert-lu)")
	c.Flags().StringVar(&out, "out", "", "directory to write identity.key and card.json into (created 0700)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "encrypt the secret keys under the passphrase on the first line of this file")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func newCardCmd() *cobra.Command {
	card := &cobra.Command{
		Use:   "card",
		Short: "Inspect member cards",
	}
	var asJSON bool
	show := &cobra.Command{
		Use:   "show PATH",
		Short: "Verify a member card (card.json, or a directory made by keygen) and print it",
		Long: `show checks the card's self-signature and prints the member's name, member ID and
peer ID. Compare the member ID with the one the member reads to you before you add
them to a network.`,
		Example: "  crisismesh card show ./cert-lu\n  crisismesh card show cert-lu/card.json --json",
		Args:    exactArgs(1, "PATH of a card.json"),
		RunE: func(c *cobra.Command, args []string) error {
			card, err := node.ReadCard(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), card)
			}
			v := node.ViewCard(card)
			w := c.OutOrStdout()
			fmt.Fprintf(w, "Member card %s (self-signature valid)\n", v.Name)
			fmt.Fprintf(w, "  member ID  %s\n", v.MemberID)
			fmt.Fprintf(w, "  peer ID    %s\n", v.PeerID)
			fmt.Fprintf(w, "  created    %s\n", v.Created.Format(time.RFC3339))
			info := versionInfo()
			fmt.Fprintf(w, "  suites     %s, %s\n", info.SignatureSuite, info.KEMSuite)
			return nil
		},
	}
	show.Flags().BoolVar(&asJSON, "json", false, "print the card file JSON")
	card.AddCommand(show)
	return card
}

// exactArgs requires n positional arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s needs %s; run '%s --help'", c.CommandPath(), what, c.CommandPath())}
		}
		return nil
	}
}

func printRoster(c *cobra.Command, v node.NetworkView) {
	w := c.OutOrStdout()
	fmt.Fprintf(w, "Network %s\n", v.Name)
	fmt.Fprintf(w, "  network ID  %s\n", v.NetworkID)
	fmt.Fprintf(w, "  created     %s\n", v.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "  members     %d\n\n", len(v.Members))
	tw := newTable(w, "NAME\tMEMBER ID\tROLES\tVOTER\tADMIN\tPEER ID")
	for _, m := range v.Members {
		name := m.Name
		if m.Revoked {
			name += " (revoked)"
		}
		fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\n", name, m.MemberID[:16], strings.Join(m.Roles, ","), yes(m.Voter), yes(m.Admin), m.PeerID)
	}
	tw.Flush()
}
