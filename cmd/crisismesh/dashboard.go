package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node/api"
)

func newDashboardCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "dashboard",
		Short: "Print the running node's dashboard address and a one-time login code",
		Long: `dashboard asks the running node for a one-time login code (valid 10 minutes, once)
and prints it with the address of the login form: open the address in a browser on this
machine and type the code. The API token never goes in a link.`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			lc, err := ask(dir, func(cl *api.Client) (api.LoginCode, error) { return cl.LoginCode(c.Context()) })
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), lc)
			}
			fmt.Fprintf(c.OutOrStdout(), "open %s and type the one-time code %s (valid until %s)\n", lc.URL, lc.Code, lc.Expires.Local().Format("15:04:05"))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(c, &dir)
	return c
}
