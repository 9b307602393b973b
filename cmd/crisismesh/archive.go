package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node/api"
)

func newArchiveCmd() *cobra.Command {
	a := &cobra.Command{
		Use:   "archive",
		Short: "Write the after-action archive that anyone holding the genesis can verify",
	}
	var dir, out, from, to string
	var asJSON, force bool
	exp := &cobra.Command{
		Use:   "export --out FILE [--from T] [--to T] [--force]",
		Short: "Write every entry, roster update, checkpoint and decision to one signed file",
		Long: `export writes the after-action archive: every entry of every feed (sealed bodies stay
sealed), the evidence this node set aside (forks, revocations), every checkpoint with the
votes that certify it, and every committed crisis decision with its signature that this
node's Raft log holds, in one file signed by this node. 'crisismesh verify FILE --genesis
GENESIS' checks it on any machine, with no node and no membership.

--from and --to (RFC 3339, or a date) bound the entries by their author's time, inclusive.
Roster, key and checkpoint entries are kept whatever their time (the roster history decides
who could sign what when; checkpoints carry the certified states and the decisions), and so
is every entry up to the next signed one of its feed, so that what is kept verifies.
Evidence and decisions are kept whole.

It never replaces an existing file unless --force says so; a failure leaves no
half-written archive.`,
		Example: `  crisismesh archive export --out /media/usb/crisis-2026-12.archive
  crisismesh archive export --from 2026-12-01 --to 2026-12-05T18:00:00Z --out week.archive`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("archive export needs --out FILE")}
			}
			var req api.ArchiveExportRequest
			for _, f := range []struct {
				flag, v string
				t       **time.Time
			}{{"--from", from, &req.From}, {"--to", to, &req.To}} {
				if f.v == "" {
					continue
				}
				t, err := parseTime(f.v)
				if err != nil {
					return usageError{fmt.Errorf("archive export %s: %w", f.flag, err)}
				}
				*f.t = &t
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			if _, err := os.Lstat(abs); err == nil && !force {
				return fmt.Errorf("archive export: %s exists: choose another --out, or add --force to replace it", abs)
			}
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			var v api.ArchiveView
			if err := writeNew(abs, force, func(w io.Writer) error {
				var err error
				v, err = cl.ExportArchive(c.Context(), req, w)
				return err
			}); err != nil {
				return fmt.Errorf("archive export: %w", err)
			}
			v.File = abs
			if asJSON {
				return printJSON(c.OutOrStdout(), v)
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s: %d entries, %d evidence, %d checkpoints, %d decisions, %d bytes, signed by %s\n",
				v.File, v.Entries, v.Evidence, v.Checkpoints, v.Decisions, v.Bytes, v.Exporter)
			if v.RaftFirst > 1 {
				fmt.Fprintf(c.OutOrStdout(), "note: this node's Raft log starts at index %d; decisions before it were compacted away\n", v.RaftFirst)
			}
			return nil
		},
	}
	dirFlag(exp, &dir)
	exp.Flags().StringVar(&out, "out", "", "archive file to write")
	exp.Flags().StringVar(&from, "from", "", "keep entries written at or after this time (RFC 3339 or YYYY-MM-DD)")
	exp.Flags().StringVar(&to, "to", "", "keep entries written at or before this time (RFC 3339 or YYYY-MM-DD)")
	exp.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	exp.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	a.AddCommand(exp)
	return a
}

// parseTime reads an RFC 3339 time or a date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is no time: write RFC 3339 (2026-12-05T14:00:00Z) or a date (2026-12-05)", s)
}
