package commands

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

// newResourcesShow is `resources show NAME`, for whoever may view it.
func newResourcesShow(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "show NAME", Short: "Show one Resource", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.requireRelation("resources show "+args[0], "view", "resource:"+args[0]); err != nil {
				return err
			}
			r, err := e.deps.Resources.GetResource(e.ctx, args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no resource %q (see `resources list`)", args[0])
			} else if err != nil {
				return err
			}
			origin := r.Origin
			if origin == "" {
				origin = store.OriginSSH
			}
			rows := [][]string{{"name", r.Name}, {"kind", r.Kind}, {"address", r.Address}, {"ports", intsString(r.Ports)},
				{"project", r.Project}, {"labels", labelsString(r.Labels)}, {"aliases", strings.Join(r.Aliases, ",")},
				{"login", r.Login}, {"ttl", durString(r.TTL)}, {"idle timeout", durString(r.IdleTimeout)}, {"origin", origin}}
			if k := r.Kube; k != nil {
				rows = append(rows, []string{"credentials", k.Credentials}, []string{"kubeconfig", k.Kubeconfig}, []string{"context", k.Context},
					[]string{"in cluster", fmt.Sprint(k.InCluster)}, []string{"kube groups", kubeGroupsString(k.Groups)})
			}
			return e.render(r, []string{"FIELD", "VALUE"}, rows)
		},
	}
}
