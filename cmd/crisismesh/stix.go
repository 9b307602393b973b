package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/interop/misp"
	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

func newSTIXCmd() *cobra.Command {
	var dir string
	s := &cobra.Command{
		Use:   "stix",
		Short: "Import STIX 2.1 bundles into the crisis log, export them as a bundle",
		Long: `stix import reads a STIX 2.1 bundle and writes each object as an entry of kind
intel, labelled with the TLP of its markings (the official TLP 2.0 marking
definitions; TLP 1.0 ones are read as TLP 2.0, white as clear). Objects of every
type are kept verbatim, so stix export gives them back. An import is atomic: one
refused object stores nothing (unless --skip-invalid); importing the same bundle
twice adds nothing.

stix export writes one bundle of the newest version of each object; every object
is validated against the official STIX 2.1 JSON Schemas first. It never widens:
TLP:RED is never exported, AMBER+STRICT only with --amber-strict-org, and
--max-tlp (default amber) caps the rest.`,
	}
	s.PersistentFlags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")

	var tlp string
	var skip, importJSON bool
	imp := &cobra.Command{
		Use:   "import FILE|- [--tlp LEVEL] [--skip-invalid]",
		Short: "Import a STIX 2.1 bundle",
		Example: `  crisismesh stix import bundle.json
  crisismesh stix import apt1.json --tlp green --skip-invalid --json`,
		Args: exactArgs(1, "a STIX bundle FILE or - for standard input"),
		RunE: func(c *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(io.LimitReader(c.InOrStdin(), misp.MaxFile+1))
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			cl, err := newClient(dir)
			if err != nil {
				return err
			}
			res, err := cl.ImportSTIX(c.Context(), data, tlp, skip)
			if err != nil {
				return err
			}
			if importJSON {
				return printJSON(c.OutOrStdout(), res)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "%d objects: %d entries written (%d bytes), %d objects already held\n", res.Objects, res.Written, res.Bytes, res.Unchanged)
			printProblems(w, res.Notes, res.Refused)
			return nil
		},
	}
	imp.Flags().StringVar(&tlp, "tlp", "", "TLP to assume for an object without a TLP marking (clear, green, amber, amber+strict)")
	imp.Flags().BoolVar(&skip, "skip-invalid", false, "store the valid objects and list the refused ones")
	imp.Flags().BoolVar(&importJSON, "json", false, "print JSON")

	var out, maxTLP, strictOrg string
	var exportJSON bool
	exp := &cobra.Command{
		Use:   "export --out FILE [--max-tlp LEVEL]",
		Short: "Write the STIX objects this node holds as one STIX 2.1 bundle",
		Example: `  crisismesh stix export --out bundle.json
  crisismesh stix export --out bundle.json --max-tlp amber+strict --amber-strict-org CIRCL --json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{fmt.Errorf("stix export needs --out FILE")}
			}
			v, err := ask(dir, func(cl *api.Client) (api.STIXExport, error) {
				return cl.ExportSTIX(c.Context(), api.STIXExportRequest{MaxTLP: maxTLP, AmberStrictOrg: strictOrg})
			})
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(v.Bundle, "", "  ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			objects, _ := v.Bundle["objects"].([]any)
			if exportJSON {
				return printJSON(c.OutOrStdout(), map[string]any{"out": out, "objects": len(objects), "withheld": v.Withheld})
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "wrote %s: %d objects\n", out, len(objects))
			for _, h := range v.Withheld {
				fmt.Fprintf(w, "withheld %s %s: %s\n", h.Type, h.ID, h.Reason)
			}
			return nil
		},
	}
	exp.Flags().StringVar(&out, "out", "", "bundle file to write")
	exp.Flags().StringVar(&maxTLP, "max-tlp", "amber", "the highest TLP exported: clear, green, amber, or amber+strict with --amber-strict-org (RED never)")
	exp.Flags().StringVar(&strictOrg, "amber-strict-org", "", "the organisation an AMBER+STRICT export is for (required with --max-tlp amber+strict)")
	exp.Flags().BoolVar(&exportJSON, "json", false, "print JSON")
	s.AddCommand(imp, exp)
	return s
}

// printProblems prints an import's notes and the refusals it skipped.
func printProblems(w io.Writer, notes, skipped []api.Problem) {
	for _, p := range notes {
		fmt.Fprintf(w, "note: %s\n", p)
	}
	for _, p := range skipped {
		fmt.Fprintf(w, "skipped: %s\n", p)
	}
}
