package commands

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

// newResources is `resources`: add (resources_add.go), list, show
// (resources_show.go) and rm (resources_rm.go). Who may change what is
// decided in resources_rules.go.
func newResources(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "resources", Short: "Add, list, show and remove Resources", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	list := &cobra.Command{
		Use: "list", Short: "List the Resources you may view (admins: all)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			rs, err := e.visibleResources()
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, r := range rs {
				rows = append(rows, []string{r.Name, r.Kind, r.Address, intsString(r.Ports), r.Project, labelsString(r.Labels)})
			}
			return e.render(rs, []string{"NAME", "KIND", "ADDRESS", "PORTS", "PROJECT", "LABELS"}, rows)
		},
	}
	cmd.AddCommand(newResourcesAdd(e), list, newResourcesShow(e), newResourcesRm(e))
	return cmd
}

// visibleResources returns what the caller may view: everything for
// admins, otherwise the objects ListObjects grants "view" on.
func (e *env) visibleResources() ([]store.Resource, error) {
	all, err := e.deps.Resources.ListResources(e.ctx)
	if err != nil {
		return nil, err
	}
	out := []store.Resource{}
	if e.isAdmin() {
		return append(out, all...), nil
	}
	ids, err := e.deps.Policy.ListObjects(e.ctx, e.p.Subject(), "view", "resource")
	if err != nil {
		return nil, err
	}
	ok := map[string]bool{}
	for _, id := range ids {
		ok[strings.TrimPrefix(id, "resource:")] = true
	}
	for _, r := range all {
		if ok[r.Name] {
			out = append(out, r)
		}
	}
	return out, nil
}

func intsString(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

func labelsString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func durString(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return d.String()
}

func kubeGroupsString(m map[string][]string) string {
	var out []string
	for rel, gs := range m {
		out = append(out, rel+"="+strings.Join(gs, ","))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
