package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
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
			return callAndPrint(c, dir, "POST", "/api/v1/bundles/export", map[string]string{"out": abs, "for": forMember}, asJSON, func(w io.Writer, v node.BundleView) error {
				fmt.Fprintf(w, "wrote %s: %d entries, %d bytes, signed by %s\n", v.File, v.Entries, v.Bytes, v.Exporter)
				return nil
			})
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
			asJSON, _ := c.Flags().GetBool("json")
			return callAndPrint(c, dir, "POST", "/api/v1/bundles/import", map[string]string{"file": abs}, asJSON, func(w io.Writer, v node.BundleView) error {
				fmt.Fprintf(w, "imported %s from %s: %d new, %d already held, %d refused\n", filepath.Base(v.File), v.Exporter, v.Added, v.Dups, v.Rejected)
				return nil
			})
		},
	}
	imp.Flags().Bool("json", false, "print JSON")
	b.AddCommand(exp, imp)
	return b
}
