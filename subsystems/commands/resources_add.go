package commands

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// newResourcesAdd is `resources add NAME ...`: add or replace a Resource.
// Who may do what is decided in resources_rules.go, before anything is
// written.
func newResourcesAdd(e *env) *cobra.Command {
	var r store.Resource
	var ports []int
	var labels, kubeGroups []string
	var kube store.KubeSpec
	add := &cobra.Command{
		Use:   "add NAME --kind ssh|tcp|kube --address HOST:PORT [--port N]... [--project P] [--label k=v]...",
		Short: "Add or replace a Resource (needs admin on its project, and on its old project when replacing or moving)",
		Example: "  ssh bastion resources add web-1 --kind ssh --address 10.0.0.5:22 --project payments --label env=prod\n" +
			"  ssh bastion resources add prod --kind kube --address https://api.prod:6443 --credentials prod --kube-group act=devs",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r.Name, r.Ports = args[0], ports
			if err := validateResource(&r, labels); err != nil {
				return err
			}
			if err := e.kubeSpec(&r, kube, kubeGroups); err != nil {
				return err
			}
			// Made over ssh: the dialers check its addresses at every
			// connection, unlike the config's Resources.
			r.Origin = store.OriginSSH
			var old *store.Resource
			switch o, err := e.deps.Resources.GetResource(e.ctx, r.Name); {
			case err == nil:
				old = &o
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			if err := e.authorizeAdd(r, old); err != nil {
				return err
			}
			if err := e.checkCredentials(r); err != nil {
				return err
			}
			if err := e.checkNames(r); err != nil {
				return err
			}
			if err := e.checkAddresses(r); err != nil {
				return err
			}
			add, del, err := e.projectTuples(r)
			if err != nil {
				return err
			}
			if err := e.deps.Resources.PutResource(e.ctx, r); err != nil {
				return err
			}
			// The tenancy edges are what lets project and domain admins
			// reach the resource through the model; stale ones go in the
			// same write.
			if err := e.deps.Tuples.WriteTuples(e.ctx, add, del); err != nil {
				return err
			}
			d := map[string]string{"kind": r.Kind, "address": r.Address, "project": r.Project}
			if r.StepUp != "" {
				d["step_up"] = r.StepUp
			}
			if old != nil {
				d["replaced"], d["old_project"], d["old_address"] = "true", projectOf(*old), old.Address
			}
			for _, t := range del {
				d["removed_"+t.Subject] = t.String()
			}
			if err := e.record(store.Event{Action: "resource.add", Target: r.Name, Details: d}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "resource %s (%s %s) saved in project %s; grant access with: %s tuples add resource:%s#act@user:NAME\n",
				r.Name, r.Kind, r.Address, r.Project, e.deps.Host, r.Name)
			if old != nil && projectOf(*old) != r.Project {
				fmt.Fprintf(e.out, "moved from project %s: tuples granted directly on resource:%s were kept (review: %s tuples list --object resource:%s)\n",
					projectOf(*old), r.Name, e.deps.Host, r.Name)
			}
			return nil
		},
	}
	f := add.Flags()
	f.StringVar(&r.Kind, "kind", "", "ssh, tcp or kube")
	f.StringVar(&r.Address, "address", "", "host:port the bastion dials (kube: the API server URL)")
	// --ports is the config's name (ports: [...]): both add to one list.
	f.Var(portsFlag{&ports}, "port", "allowed port (repeatable, or comma-separated); default: the address's port")
	f.Var(portsFlag{&ports}, "ports", "the same as --port, named as in the config")
	f.StringVar(&r.Project, "project", "", "project the resource belongs to (default \"default\")")
	f.StringSliceVar(&labels, "label", nil, "label k=v (repeatable)")
	f.StringSliceVar(&r.Aliases, "alias", nil, "another name for the resource (repeatable)")
	f.StringVar(&r.Login, "login", "", "login user on ssh resources (root, or one outside resource_policy.logins: domain admins only)")
	f.DurationVar(&r.TTL, "ttl", 0, "session TTL override")
	f.DurationVar(&r.IdleTimeout, "idle-timeout", 0, "idle timeout override")
	f.StringVar(&r.StepUp, "step-up", "", "sessions need a strong login this recent, and optionally with these acr values: 10m[,acr=VALUE]...")
	f.StringVar(&kube.Credentials, "credentials", "", "kube: one of the config's kube.credentials, the bastion's identity towards this cluster (domain admins only)")
	f.StringVar(&kube.Kubeconfig, "kubeconfig", "", "refused over ssh: name a kube.credentials entry with --credentials")
	f.StringVar(&kube.Context, "context", "", "refused over ssh: name a kube.credentials entry with --credentials")
	f.BoolVar(&kube.InCluster, "in-cluster", false, "refused over ssh: name a kube.credentials entry with --credentials")
	f.StringArrayVar(&kubeGroups, "kube-group", nil, "kube: RELATION=GROUP[,GROUP]: users with RELATION on the Resource are impersonated with these groups (repeatable; domain admins only)")
	return add
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
	if _, err := stepup.Parse(r.StepUp); err != nil {
		return fmt.Errorf("--step-up: %v", err)
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
	if len(labels) > maxLabels {
		return fmt.Errorf("%d labels; the limit is %d", len(labels), maxLabels)
	}
	if len(r.Aliases) > maxAliases {
		return fmt.Errorf("%d aliases; the limit is %d", len(r.Aliases), maxAliases)
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q: want key=value", l)
		}
		if err := checkText("--label key", k, maxLabelKey); err != nil {
			return err
		}
		if err := checkText("--label value", v, maxLabelValue); err != nil {
			return err
		}
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
		r.Labels[k] = v
	}
	return nil
}

// kubeSpec fills a kube Resource's credentials and group mapping from the
// flags, and refuses them on other kinds.
func (e *env) kubeSpec(r *store.Resource, k store.KubeSpec, groups []string) error {
	set := k.Credentials != "" || k.Kubeconfig != "" || k.Context != "" || k.InCluster || len(groups) > 0
	if r.Kind != "kube" {
		if set {
			return fmt.Errorf("--credentials, --kube-group (and --kubeconfig, --context, --in-cluster) are for --kind kube")
		}
		return nil
	}
	if k.Kubeconfig != "" || k.Context != "" || k.InCluster {
		// A path over ssh would let whoever may add a Resource make the
		// bastion use any kubeconfig on its disk (its admin's, a
		// cluster-admin's). Only the operator names files, in the config.
		return &exitError{code: 1, msg: fmt.Sprintf("resources add %s refused: --kubeconfig, --context and --in-cluster are not accepted over ssh, "+
			"for anyone: an operator names the bastion's credentials in the config (kube.credentials: {NAME: {kubeconfig: FILE, context: C}}), "+
			"and a domain admin refers to them with --credentials NAME%s", r.Name, e.credentialsList())}
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

// checkCredentials requires a kube Resource to name configured
// credentials. It runs after authorizeAdd, so that only domain admins
// learn which credentials the config names.
func (e *env) checkCredentials(r store.Resource) error {
	if r.Kind != "kube" {
		return nil
	}
	if r.Kube == nil || r.Kube.Credentials == "" {
		return fmt.Errorf("a kube Resource needs credentials: --credentials NAME, one of the config's kube.credentials%s (set by a domain admin)",
			e.credentialsList())
	}
	if !slices.Contains(e.deps.ResourceRules.KubeCredentials, r.Kube.Credentials) {
		return fmt.Errorf("--credentials %s: not in the config's kube.credentials%s", r.Kube.Credentials, e.credentialsList())
	}
	return nil
}

// credentialsList names the configured credentials, to domain admins only.
func (e *env) credentialsList() string {
	names := e.deps.ResourceRules.KubeCredentials
	switch {
	case !e.isAdmin():
		return ""
	case len(names) == 0:
		return " (none are configured)"
	}
	return " (configured: " + strings.Join(names, ", ") + ")"
}
