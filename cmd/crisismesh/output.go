package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// printJSON writes v as indented JSON with a trailing newline.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// callAndPrint asks the API of the node running in dir (method and path,
// with req as the JSON body unless nil) and prints the answer, a V: as
// JSON when asJSON, else with human.
func callAndPrint[V any](c *cobra.Command, dir, method, path string, req any, asJSON bool, human func(w io.Writer, v V) error) error {
	cl, err := newClient(dir)
	if err != nil {
		return err
	}
	var v V
	if err := cl.do(c.Context(), method, path, req, &v); err != nil {
		return err
	}
	if asJSON {
		return printJSON(c.OutOrStdout(), v)
	}
	return human(c.OutOrStdout(), v)
}

// newTable starts a table on w with the tab-separated column names of
// header; the caller writes the rows and flushes it.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func printJSONLine(c *cobra.Command, v any) error {
	b, err := jsonMarshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.OutOrStdout(), string(b))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}
