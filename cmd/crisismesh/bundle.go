package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

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
	var all, asJSON, force bool
	exp := &cobra.Command{
		Use:   "export --out FILE [--for MEMBER|--all] [--force]",
		Short: "Write a bundle",
		Long: `export writes a bundle file with the caller's rights: the entries MEMBER lacks (as
this node last saw it) or every entry. It never replaces an existing file unless --force
says so; a failure leaves no half-written bundle.`,
		Example: `  crisismesh bundle export --for cert-lu --out /media/usb/cert-lu.bundle
  crisismesh bundle export --all --out all.bundle --force   # replace an older all.bundle`,
		Args: noArgs,
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
			if _, err := os.Lstat(abs); err == nil && !force {
				return fmt.Errorf("bundle export: %s exists: choose another --out, or add --force to replace it", abs)
			}
			v, err := exportBundle(c.Context(), cl, forMember, abs, force)
			if err != nil {
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
	exp.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Check and import a bundle",
		Args:  exactArgs(1, "a bundle FILE"),
		RunE: func(c *cobra.Command, args []string) error {
			abs, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			f, err := os.Open(abs)
			if err != nil {
				return fmt.Errorf("bundle import: %w", err)
			}
			defer f.Close()
			v, err := ask(dir, func(cl *api.Client) (api.BundleView, error) { return cl.ImportBundle(c.Context(), f) })
			if err != nil {
				return err
			}
			v.File = abs
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

// exportBundle streams a bundle from the node into out (see writeNew).
func exportBundle(ctx context.Context, cl *api.Client, forMember, out string, replace bool) (api.BundleView, error) {
	var v api.BundleView
	err := writeNew(out, replace, func(w io.Writer) error {
		var err error
		v, err = cl.ExportBundle(ctx, forMember, w)
		return err
	})
	if err != nil {
		return v, fmt.Errorf("bundle export: %w", err)
	}
	v.File = out
	return v, nil
}

// writeNew writes a file with the caller's rights: write fills a
// temporary file in out's directory, which is synced and then linked to
// out (which fails if out exists, so nothing is replaced by a race) or,
// with replace, renamed over it; a failure leaves no half-written file.
func writeNew(out string, replace bool, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".crisismesh-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	place := os.Link
	if replace {
		place = os.Rename
	}
	if err := place(tmp.Name(), out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: choose another --out, or add --force to replace it", out)
		}
		return err
	}
	return nil
}
