package commands

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

// newResourcesRm is `resources rm NAME`: it needs admin on the project
// the Resource is in now (see requireProjectAdmin), and removes every
// tuple on it.
func newResourcesRm(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "rm NAME", Short: "Remove a Resource and its tuples (needs admin on its project)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			name := args[0]
			what := "resources rm " + name
			old, err := e.deps.Resources.GetResource(e.ctx, name)
			if err == nil && !e.isAdmin() && !e.canView(name) {
				// Read like a name that does not exist: naming its project
				// would tell someone who cannot see it that it exists.
				err = store.ErrNotFound
			}
			if errors.Is(err, store.ErrNotFound) {
				if !e.isAdmin() {
					// Say no more than a refusal: whether the name exists is
					// not the business of someone who could not remove it.
					return e.deny(what, "it needs the relation admin on the Resource's project", "Ask a domain admin or an admin of its project")
				}
				return fmt.Errorf("no resource %q (see `resources list`)", name)
			} else if err != nil {
				return err
			}
			// The record's project decides, never the tuples: a stray
			// resource#project tuple must not let another project's admin
			// delete the Resource.
			if err := e.requireProjectAdmin(what, projectOf(old), "remove "+name+", which is in project "+projectOf(old)+","); err != nil {
				return err
			}
			ts, err := e.deps.Tuples.TuplesByObject(e.ctx, "resource:"+name, "")
			if err != nil {
				return err
			}
			if err := e.deps.Tuples.WriteTuples(e.ctx, nil, ts); err != nil {
				return err
			}
			if err := e.deps.Resources.DeleteResource(e.ctx, name); err != nil {
				return err
			}
			if err := e.record(store.Event{Action: "resource.rm", Target: name,
				Details: map[string]string{"project": projectOf(old), "tuples_removed": strconv.Itoa(len(ts))}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "removed resource %s and %d tuples on it\n", name, len(ts))
			return nil
		},
	}
}
