package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/node"
)

func newVerifyCmd() *cobra.Command {
	var genesis, dir, maxTLP, passFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify FILE --genesis GENESIS [--dir D] [--max-tlp L]",
		Short: "Check an after-action archive offline, with nothing but the genesis",
		Long: `verify checks an archive written by 'archive export' with no node, no membership and no
network: the file's signature; every entry's signature and every feed's hash chain; the roster
changes in order from the genesis (who could sign what when, revocations included); forks and
their evidence; every checkpoint's votes (a majority of the voters of the roster version it
names); the crisis decisions and who signed them, replayed from the genesis against every
certified checkpoint. It prints a summary, or with --json the report.

It exits 1 naming the first thing that does not verify: what, where, and which rule.

Bodies stay sealed unless --dir names a member's data directory: its keys then open what
they can, capped by --max-tlp (default amber; red only when asked for).`,
		Example: `  crisismesh verify crisis.archive --genesis genesis
  crisismesh verify crisis.archive --genesis genesis --dir ./cert-lu --max-tlp green`,
		Args: exactArgs(1, "an archive FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			if genesis == "" {
				return usageError{fmt.Errorf("verify needs --genesis GENESIS")}
			}
			tlp, err := misp.ParseTLP(maxTLP)
			if err != nil {
				return usageError{fmt.Errorf("verify --max-tlp: %w", err)}
			}
			var pass []byte
			if dir != "" {
				if pass, err = readPass(passFile); err != nil {
					return err
				}
			}
			rep, err := node.VerifyArchive(args[0], genesis, dir, pass, tlp)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), rep)
			}
			return printReport(c.OutOrStdout(), args[0], rep)
		},
	}
	c.Flags().StringVar(&genesis, "genesis", "", "the network's genesis file")
	c.Flags().StringVar(&dir, "dir", "", "a member's data directory, whose keys open the bodies they can")
	c.Flags().StringVar(&maxTLP, "max-tlp", "amber", "show bodies up to this TLP (clear, green, amber, amber+strict, red)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "passphrase file of the identity in --dir, if it has one")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return c
}

func printReport(w io.Writer, file string, r *node.ArchiveReport) error {
	fmt.Fprintf(w, "%s verifies: network %s (%.16s…), exported by %s at %s\n", file, r.NetworkName, r.Network, r.Exporter, r.Created.Format(time.RFC3339))
	if r.From != nil || r.To != nil {
		fmt.Fprintf(w, "  window (author time): %s .. %s\n", fmtTime(r.From), fmtTime(r.To))
	}
	fmt.Fprintf(w, "  %d entries by %d members (%d sealed bodies), %d records, %d bytes\n", r.Entries, len(r.Members), r.Sealed, r.Records, r.Bytes)
	for _, m := range r.Members {
		rev := ""
		if m.Revoked {
			rev = " (revoked since)"
		}
		fmt.Fprintf(w, "    %-20s %6d entries  %s .. %s%s\n", m.Name, m.Entries, m.First.Format(time.RFC3339), m.Last.Format(time.RFC3339), rev)
	}
	fmt.Fprintf(w, "  roster: %d versions\n", len(r.Roster))
	for _, v := range r.Roster {
		appr := ""
		if len(v.Approvers) > 0 {
			appr = ", approved by " + strings.Join(v.Approvers, ", ")
		}
		fmt.Fprintf(w, "    v%-3d %-10s by %s%s\n", v.Version, v.Op, v.Signer, appr)
	}
	certified := 0
	for _, cp := range r.Checkpoints {
		if cp.Certified {
			certified++
		}
	}
	fmt.Fprintf(w, "  checkpoints: %d states, %d certified by a majority of the voters", len(r.Checkpoints), certified)
	if len(r.Checkpoints) > 0 {
		last := r.Checkpoints[len(r.Checkpoints)-1]
		fmt.Fprintf(w, " (last at index %d, signed by %s)", last.Index, strings.Join(last.Signers, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  forks: %d", len(r.Forks))
	for _, f := range r.Forks {
		fmt.Fprintf(w, "; %s at seq %d (proven: %v)", f.Author, f.Seq, f.Proven)
	}
	fmt.Fprintf(w, "; %d entries set aside by revocations\n", r.SetAside)
	fmt.Fprintf(w, "  decisions: %d, replayed from the genesis to index %d, matching %d certified checkpoints\n", len(r.Decisions), r.Replayed, r.ReplayChecked)
	if r.ReplayStopped > 0 {
		fmt.Fprintf(w, "  NOTE: the replay stops before the certified index %d: the archive holds no record of the commands before it\n", r.ReplayStopped)
	}
	for _, d := range r.Decisions {
		if d.Kind == "roster" {
			continue
		}
		out := "committed"
		if d.Refused != "" {
			out = "refused: " + d.Refused
		}
		fmt.Fprintf(w, "    #%-5d %s %-12s signed by %s, %s\n", d.Index, d.Time.Format(time.RFC3339), d.Kind, d.Signer, out)
	}
	if len(r.Bodies) > 0 || r.Withheld > 0 {
		fmt.Fprintf(w, "  bodies: %d readable, %d withheld (above --max-tlp or not believed), %d sealed\n", len(r.Bodies), r.Withheld, r.Sealed)
		for _, b := range r.Bodies {
			fmt.Fprintf(w, "    %s %s seq %d [%s TLP:%s] %s\n", b.Time.Format(time.RFC3339), b.Author, b.Seq, b.Kind, strings.ToUpper(string(b.TLP)), oneLine(b.Text))
		}
	}
	return nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "…"
	}
	return t.Format(time.RFC3339)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}
