package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
)

func newPeersCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "peers",
		Short: "List the members' nodes: connected, round trip, profile, last sync, how far behind",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			var s node.StatusView
			if err := cl.do(c.Context(), "GET", "/api/v1/status", nil, &s); err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), s.Peers)
			}
			return printPeers(c.OutOrStdout(), s.Peers)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func newWhoHasCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "who-has ENTRY_ID",
		Short: "Which members hold an entry, and why a member has not got it",
		Args:  exactArgs(1, "an ENTRY_ID (from crisismesh log)"),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			var hs []node.HolderView
			if err := cl.do(c.Context(), "GET", "/api/v1/who-has/"+args[0], nil, &hs); err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), hs)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MEMBER\tHAS IT\tCAN READ\tWHY / AS OF")
			for _, h := range hs {
				why := h.Why
				if h.Has && h.AsOf != nil {
					why = "as of " + h.AsOf.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Member, yes(h.Has), yes(h.CanRead), why)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func newSyncCmd() *cobra.Command {
	var dir, force string
	var asJSON bool
	c := &cobra.Command{
		Use:   "sync --force PEER",
		Short: "Force a full resync with one member now (name or peer ID)",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if force == "" {
				return usageError{fmt.Errorf("sync needs --force PEER (a member name or peer ID)")}
			}
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			var rep node.SyncReport
			if err := cl.do(c.Context(), "POST", "/api/v1/sync", map[string]string{"peer": force}, &rep); err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), rep)
			}
			fmt.Fprintf(c.OutOrStdout(), "synced with %s in %d ms: sent %d entries, received %d new\n", rep.Member, rep.DurationMS, rep.EntriesSent, rep.EntriesRecv)
			return nil
		},
	}
	c.Flags().StringVar(&force, "force", "", "member name or peer ID to resync with")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}

func newBundleCmd() *cobra.Command {
	var dir string
	b := &cobra.Command{
		Use:   "bundle",
		Short: "Move the log by hand (sneakernet) when no link works",
		Long: `bundle export writes the entries another node lacks (or all of them) to a signed,
checksummed file; bundle import checks a bundle completely and only then stores its
entries. A truncated, tampered or foreign bundle stores nothing; importing twice is
harmless.`,
	}
	b.PersistentFlags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")
	var out, forMember string
	var all, asJSON bool
	exp := &cobra.Command{
		Use:   "export --out FILE [--for MEMBER|--all]",
		Short: "Write a bundle",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" || (forMember == "") == !all {
				return usageError{fmt.Errorf("bundle export needs --out FILE and one of --for MEMBER or --all")}
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			var v node.BundleView
			if err := cl.do(c.Context(), "POST", "/api/v1/bundles/export", map[string]string{"out": abs, "for": forMember}, &v); err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), v)
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s: %d entries, %d bytes, signed by %s\n", v.File, v.Entries, v.Bytes, v.Exporter)
			return nil
		},
	}
	exp.Flags().StringVar(&out, "out", "", "bundle file to write")
	exp.Flags().StringVar(&forMember, "for", "", "only what this member lacks, as this node last saw")
	exp.Flags().BoolVar(&all, "all", false, "every entry")
	exp.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Check and import a bundle",
		Args:  exactArgs(1, "a bundle FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			var v node.BundleView
			if err := cl.do(c.Context(), "POST", "/api/v1/bundles/import", map[string]string{"file": abs}, &v); err != nil {
				return err
			}
			asJSON, _ := c.Flags().GetBool("json")
			if asJSON {
				return printJSON(c.OutOrStdout(), v)
			}
			fmt.Fprintf(c.OutOrStdout(), "imported %s from %s: %d new, %d already held, %d refused\n", filepath.Base(v.File), v.Exporter, v.Added, v.Dups, v.Rejected)
			return nil
		},
	}
	imp.Flags().Bool("json", false, "print JSON")
	b.AddCommand(exp, imp)
	return b
}
