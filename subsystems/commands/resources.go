package commands

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

func newResources(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "resources", Short: "Add, list, show and remove Resources", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	var r store.Resource
	var ports []int
	var labels, kubeGroups []string
	var kube store.KubeSpec
	add := &cobra.Command{
		Use:     "add NAME --kind ssh|tcp|kube --address HOST:PORT [--port N]... [--project P] [--label k=v]...",
		Short:   "Add or replace a Resource (needs admin on its project, or on the domain)",
		Example: "  ssh bastion resources add web-1 --kind ssh --address 10.0.0.5:22 --project payments --label env=prod",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r.Name, r.Ports = args[0], ports
			if err := validateResource(&r, labels); err != nil {
				return err
			}
			if err := kubeSpec(&r, kube, kubeGroups); err != nil {
				return err
			}
			// Domain admins may add anywhere (also to a project that does
			// not exist yet); project admins only to their project.
			if r.Project != "" && !e.isAdmin() {
				if err := e.requireRelation("resources add", "admin", "project:"+r.Project); err != nil {
					return err
				}
			} else if err := e.requireAdmin("resources add"); err != nil {
				return err
			}
			if err := e.deps.Resources.PutResource(e.ctx, r); err != nil {
				return err
			}
			if r.Project != "" {
				// The tenancy edges are what lets project and domain admins
				// reach the resource through the model.
				ts := []store.Tuple{
					{Object: "resource:" + r.Name, Relation: "project", Subject: "project:" + r.Project},
					{Object: "project:" + r.Project, Relation: "domain", Subject: e.domainObject()},
				}
				if err := e.deps.Tuples.WriteTuples(e.ctx, ts, nil); err != nil {
					return err
				}
			}
			if err := e.record(store.Event{Action: "resource.add", Target: r.Name,
				Details: map[string]string{"kind": r.Kind, "address": r.Address, "project": r.Project}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "resource %s (%s %s) saved; grant access with: %s tuples add resource:%s#act@user:NAME\n",
				r.Name, r.Kind, r.Address, e.deps.Host, r.Name)
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&r.Kind, "kind", "", "ssh, tcp or kube")
	f.StringVar(&r.Address, "address", "", "host:port the bastion dials (kube: the API server URL)")
	f.IntSliceVar(&ports, "port", nil, "allowed port (repeatable); default: the address's port")
	f.StringVar(&r.Project, "project", "", "project the resource belongs to (default \"default\")")
	f.StringSliceVar(&labels, "label", nil, "label k=v (repeatable)")
	f.StringSliceVar(&r.Aliases, "alias", nil, "another name for the resource (repeatable)")
	f.StringVar(&r.Login, "login", "", "login user on ssh resources")
	f.DurationVar(&r.TTL, "ttl", 0, "session TTL override")
	f.DurationVar(&r.IdleTimeout, "idle-timeout", 0, "idle timeout override")
	f.StringVar(&kube.Kubeconfig, "kubeconfig", "", "kube: the bastion's kubeconfig file for this cluster (its identity needs only impersonate)")
	f.StringVar(&kube.Context, "context", "", "kube: context in --kubeconfig (default: its current context)")
	f.BoolVar(&kube.InCluster, "in-cluster", false, "kube: use the bastion's in-cluster service account")
	f.StringArrayVar(&kubeGroups, "kube-group", nil, "kube: RELATION=GROUP[,GROUP]: users with RELATION on the Resource are impersonated with these groups (repeatable)")

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
	show := &cobra.Command{
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
			rows := [][]string{{"name", r.Name}, {"kind", r.Kind}, {"address", r.Address}, {"ports", intsString(r.Ports)},
				{"project", r.Project}, {"labels", labelsString(r.Labels)}, {"aliases", strings.Join(r.Aliases, ",")},
				{"login", r.Login}, {"ttl", durString(r.TTL)}, {"idle timeout", durString(r.IdleTimeout)}}
			if k := r.Kube; k != nil {
				rows = append(rows, []string{"kubeconfig", k.Kubeconfig}, []string{"context", k.Context},
					[]string{"in cluster", fmt.Sprint(k.InCluster)}, []string{"kube groups", kubeGroupsString(k.Groups)})
			}
			return e.render(r, []string{"FIELD", "VALUE"}, rows)
		},
	}
	rm := &cobra.Command{
		Use: "rm NAME", Short: "Remove a Resource and its tuples", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.requireRelation("resources rm", "admin", "resource:"+args[0]); err != nil {
				return err
			}
			if _, err := e.deps.Resources.GetResource(e.ctx, args[0]); err != nil {
				return fmt.Errorf("resource %q: %w", args[0], err)
			}
			ts, err := e.deps.Tuples.TuplesByObject(e.ctx, "resource:"+args[0], "")
			if err != nil {
				return err
			}
			if err := e.deps.Tuples.WriteTuples(e.ctx, nil, ts); err != nil {
				return err
			}
			if err := e.deps.Resources.DeleteResource(e.ctx, args[0]); err != nil {
				return err
			}
			if err := e.record(store.Event{Action: "resource.rm", Target: args[0],
				Details: map[string]string{"tuples_removed": strconv.Itoa(len(ts))}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "removed resource %s and %d tuples on it\n", args[0], len(ts))
			return nil
		},
	}
	cmd.AddCommand(add, list, show, rm)
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

func validateResource(r *store.Resource, labels []string) error {
	if !validName.MatchString(r.Name) {
		return fmt.Errorf("invalid resource name %q", r.Name)
	}
	switch r.Kind {
	case "ssh", "tcp", "kube":
	default:
		return fmt.Errorf("--kind must be ssh, tcp or kube, not %q", r.Kind)
	}
	if r.Address == "" {
		return fmt.Errorf("--address is required")
	}
	if r.Project == "" {
		// Every Resource sits in the tenancy tree (domain -> project ->
		// resource) so that domain admins reach it; "default" is the
		// project of those created without one.
		r.Project = "default"
	}
	if !validName.MatchString(r.Project) {
		return fmt.Errorf("invalid project name %q", r.Project)
	}
	if r.Kind != "kube" {
		if h, p, err := net.SplitHostPort(r.Address); err != nil || h == "" || p == "" {
			return fmt.Errorf("--address %q: want host:port", r.Address)
		}
	}
	if len(r.Ports) == 0 && r.Kind == "ssh" {
		// Users name ssh Resources on port 22 (ssh -J); it maps to the
		// real address whatever its port.
		r.Ports = []int{22}
	}
	if len(r.Ports) == 0 && r.Kind != "kube" {
		i := strings.LastIndexByte(r.Address, ':')
		p, err := strconv.Atoi(r.Address[i+1:])
		if i < 0 || err != nil {
			return fmt.Errorf("--address %q has no port; give host:port or --port", r.Address)
		}
		r.Ports = []int{p}
	}
	for _, p := range r.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("port %d is out of range", p)
		}
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q: want key=value", l)
		}
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
		r.Labels[k] = v
	}
	return nil
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

// kubeSpec fills a kube Resource's credentials and group mapping from the
// flags, and refuses them on other kinds.
func kubeSpec(r *store.Resource, k store.KubeSpec, groups []string) error {
	set := k.Kubeconfig != "" || k.Context != "" || k.InCluster || len(groups) > 0
	if r.Kind != "kube" {
		if set {
			return fmt.Errorf("--kubeconfig, --context, --in-cluster and --kube-group are for --kind kube")
		}
		return nil
	}
	if k.Kubeconfig == "" && !k.InCluster {
		return fmt.Errorf("a kube Resource needs credentials: --kubeconfig FILE [--context NAME] or --in-cluster")
	}
	for _, g := range groups {
		rel, list, ok := strings.Cut(g, "=")
		if !ok || rel == "" || list == "" {
			return fmt.Errorf("--kube-group %q: want RELATION=GROUP[,GROUP]", g)
		}
		if k.Groups == nil {
			k.Groups = map[string][]string{}
		}
		k.Groups[rel] = append(k.Groups[rel], strings.Split(list, ",")...)
	}
	r.Kube = &k
	return nil
}

func kubeGroupsString(m map[string][]string) string {
	var out []string
	for rel, gs := range m {
		out = append(out, rel+"="+strings.Join(gs, ","))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
