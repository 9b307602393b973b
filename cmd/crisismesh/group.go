package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crisismesh/crisismesh/node"
	"github.com/crisismesh/crisismesh/node/api"
)

func newGroupCmd() *cobra.Command {
	var dir string
	root := &cobra.Command{
		Use:   "group",
		Short: "Named need-to-know groups: list, create, add, remove, delete",
		Long: `group manages named need-to-know groups. The roster lists each group's members: a change
is a roster update signed by an admin (approved like any roster change when the genesis
names an admin threshold). Posts with 'crisismesh post --group NAME' are sealed to the
group's members only; the others hold and relay them unread. Every change of a group's
members starts a new key epoch that those removed do not receive.

Exit codes as for 'crisismesh member': 0 in force, 1 refused, 2 usage, 3 still waiting.`,
	}
	root.PersistentFlags().StringVar(&dir, "dir", node.DefaultDir(), "data directory (default $CRISISMESH_DIR, else ~/.crisismesh)")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the groups, their members, and the key epoch of those this member is in",
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, asJSON, (*api.Client).Groups, printGroups)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	root.AddCommand(list)

	send := func(c *cobra.Command, req api.GroupRequest) error {
		return sendRosterChange(c, dir, func(cl *api.Client, ctx context.Context) (api.UpdateResult, error) { return cl.ChangeGroup(ctx, req) })
	}
	var members []string
	create := rosterChangeFlags(&cobra.Command{
		Use:     "create NAME --member A --member B...",
		Short:   "Create a group (run on an admin's node)",
		Example: `  crisismesh group create energy-csirts --member cert-lu --member cert-fr`,
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(members) == 0 {
				return usageError{fmt.Errorf("group create needs --member NAME (at least one)")}
			}
			return send(c, api.GroupRequest{Op: "create", Group: args[0], Members: members})
		},
	})
	create.Flags().StringArrayVar(&members, "member", nil, "a member of the group; repeat")
	root.AddCommand(create)
	for _, op := range []struct{ name, short, example string }{
		{"add", "Add a member to a group", "crisismesh group add energy-csirts cert-de"},
		{"remove", "Remove a member from a group (a new key epoch it does not receive)", "crisismesh group remove energy-csirts cert-de"},
	} {
		root.AddCommand(rosterChangeFlags(&cobra.Command{
			Use:     op.name + " NAME MEMBER",
			Short:   op.short,
			Example: "  " + op.example,
			Args:    cobra.ExactArgs(2),
			RunE: func(c *cobra.Command, args []string) error {
				return send(c, api.GroupRequest{Op: op.name, Group: args[0], Members: []string{args[1]}})
			},
		}))
	}
	root.AddCommand(rosterChangeFlags(&cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a group (what was written to it stays readable to those it was sealed to)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return send(c, api.GroupRequest{Op: "delete", Group: args[0]})
		},
	}))
	return root
}

func newKeyCmd() *cobra.Command {
	var dir, group string
	var asJSON bool
	root := &cobra.Command{Use: "key", Short: "Group keys: start a new epoch by hand"}
	rotate := &cobra.Command{
		Use:   "rotate [--group NAME]",
		Short: "Start a new key epoch of the network key (admins) or of a named group (its members)",
		Long: `rotate issues a new key epoch: of the network key (on an admin's node) or, with --group,
of a named group this member is in. What is written from then on is sealed under the new
epoch, sealed to exactly the active members (of the group). Keys change by themselves when
members are revoked or leave a group; rotate by hand after a suspected leak.`,
		Example: "  crisismesh key rotate\n  crisismesh key rotate --group energy-csirts",
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return askAndPrint(c, dir, asJSON, func(cl *api.Client, ctx context.Context) (api.KeyRotation, error) { return cl.RotateKey(ctx, group) },
				func(w io.Writer, v api.KeyRotation) error {
					_, err := fmt.Fprintf(w, "key of %s: epoch %d, sealed to %d members\n", v.Group, v.Epoch, v.Members)
					return err
				})
		},
	}
	rotate.Flags().StringVar(&group, "group", "", "a named group this member is in (default: the network key)")
	rotate.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	dirFlag(rotate, &dir)
	root.AddCommand(rotate)
	return root
}

// printGroups lists the groups for a person.
func printGroups(w io.Writer, gs []api.GroupView) error {
	if len(gs) == 0 {
		fmt.Fprintln(w, "no groups yet: an admin creates one with crisismesh group create NAME --member A --member B")
		return nil
	}
	fmt.Fprintf(w, "%-24s %-7s %-6s %s\n", "GROUP", "MEMBER", "EPOCH", "MEMBERS")
	for _, g := range gs {
		epoch := "-"
		if g.Epoch > 0 {
			epoch = fmt.Sprint(g.Epoch)
		}
		fmt.Fprintf(w, "%-24s %-7s %-6s %s\n", g.Name, yes(g.Member), epoch, strings.Join(g.Members, ", "))
	}
	return nil
}
