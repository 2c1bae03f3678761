package commands

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

// validName limits user names to characters that are safe in tuples
// ("user:NAME"), logs and shell examples.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$`)

func newUsers(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage users (admin only)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	var display string
	var groups []string
	add := &cobra.Command{
		Use: "add NAME", Short: "Add a user", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.requireAdmin("users add"); err != nil {
				return err
			}
			name := args[0]
			if !validName.MatchString(name) {
				return fmt.Errorf("invalid user name %q: use letters, digits, '.', '_', '@' or '-'", name)
			}
			if _, err := e.deps.Accounts.GetUser(e.ctx, name); err == nil {
				return fmt.Errorf("user %q already exists", name)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			u := store.User{Name: name, DisplayName: display, Groups: groups, Source: "local", Created: e.deps.Clock().UTC()}
			if err := e.deps.Accounts.PutUser(e.ctx, u); err != nil {
				return err
			}
			if err := e.record(store.Event{Action: "user.add", Target: name}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "added user %s; register a key with: %s keys add %s < key.pub\n", name, e.deps.Host, name)
			return nil
		},
	}
	add.Flags().StringVar(&display, "display-name", "", "full name")
	add.Flags().StringSliceVar(&groups, "group", nil, "group membership (repeatable)")

	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := e.requireAdmin("users list"); err != nil {
				return err
			}
			us, err := e.deps.Accounts.ListUsers(e.ctx)
			if err != nil {
				return err
			}
			if us == nil {
				us = []store.User{}
			}
			rows := [][]string{}
			for _, u := range us {
				rows = append(rows, []string{u.Name, u.DisplayName, strings.Join(u.Groups, ","), u.Source, u.Created.Format(time.RFC3339)})
			}
			return e.render(us, []string{"NAME", "DISPLAY NAME", "GROUPS", "SOURCE", "CREATED"}, rows)
		},
	}
	rm := &cobra.Command{
		Use: "rm NAME", Short: "Remove a user and all of its keys", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.requireAdmin("users rm"); err != nil {
				return err
			}
			if args[0] == e.p.User {
				// Removing yourself would lock out the only admin by
				// accident; another admin must do it.
				return fmt.Errorf("refusing to remove yourself (%s); ask another admin", e.p.User)
			}
			if _, err := e.deps.Accounts.GetUser(e.ctx, args[0]); err != nil {
				return fmt.Errorf("user %q: %w", args[0], err)
			}
			if err := e.deps.Accounts.DeleteUser(e.ctx, args[0]); err != nil {
				return err
			}
			if err := e.record(store.Event{Action: "user.rm", Target: args[0]}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "removed user %s and its keys\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, rm)
	return cmd
}
