package commands

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
)

// The boundaries of `resources add` and `resources rm`. Each exists
// because a project admin, who may define Resources in their project,
// could otherwise reach beyond it:
//   - replacing or moving a Resource of another project would re-point
//     everyone's forwards and shells and make its tuples theirs;
//   - a second resource#project tuple would make them admin of it;
//   - an alias equal to another Resource's name or alias would capture
//     the forwards meant for it;
//   - a login (root, or a shared account), kube credentials or kube
//     groups are what the bastion's user CA and apiserver identity grant
//     on targets: domain admins' to give;
//   - an address that is the bastion itself, loopback, link-local or
//     cloud metadata reaches what nobody granted.

// ResourceRules are the limits the config puts on Resources made over ssh.
type ResourceRules struct {
	// Addresses checks every address a Resource will dial (netguard.Guard).
	// Nil refuses every `resources add`: there is no unguarded mode.
	Addresses AddressChecker
	// Logins are the logins project admins may give ssh Resources
	// (resource_policy.logins); root is never one. Empty: project admins
	// set none, and users log in as themselves.
	Logins []string
	// KubeCredentials are the names of the config's kube.credentials.
	KubeCredentials []string
}

// AddressChecker refuses addresses a Resource made over ssh may not reach.
type AddressChecker interface {
	CheckAddress(ctx context.Context, hostport string) error
}

// deny refuses what, audited, naming why and how to get access.
func (e *env) deny(what, why, how string) error {
	e.recordRefusal(store.Event{Action: "command.deny", Target: what, Decision: "deny", Reason: why})
	return &exitError{code: 1, msg: fmt.Sprintf("permission denied: %s: %s. %s", what, why, how)}
}

func projectOf(r store.Resource) string {
	if r.Project == "" {
		return "default"
	}
	return r.Project
}

// canView reports whether the caller may see the Resource name (see
// subsystems.CanView: refusals about Resources they cannot see must not
// tell them it exists).
func (e *env) canView(name string) bool {
	ok, _ := subsystems.CanView(e.ctx, e.deps.Policy, e.p, name)
	return ok
}

// requireProjectAdmin refuses the caller unless they are admin on
// project:<project> (domain admins are, everywhere, also on projects not
// yet linked to the domain). It checks the project itself, not the
// Resource: tuples on the Resource must never be what lets someone change
// its project. It fails closed.
func (e *env) requireProjectAdmin(what, project, doing string) error {
	if e.isAdmin() {
		return nil
	}
	ok, err := e.deps.Policy.Check(e.ctx, e.p.Subject(), "admin", "project:"+project)
	if err != nil {
		return e.deny(what, fmt.Sprintf("cannot evaluate admin on project:%s: %v", project, err), "Try again, or ask a domain admin")
	}
	if !ok {
		return e.deny(what, fmt.Sprintf("to %s needs the relation admin on project:%s, which %s lacks", doing, project, e.p.Subject()),
			fmt.Sprintf("Ask a domain admin or an admin of project %s (%s tuples add project:%s#admin@%s)", project, e.deps.Host, project, e.p.Subject()))
	}
	return nil
}

// authorizeAdd decides whether the caller may save r, replacing old (nil
// if the name is free): admin on r's project, and on old's project when
// replacing (both when moving), and domain admin for privileged
// attributes.
func (e *env) authorizeAdd(r store.Resource, old *store.Resource) error {
	what := "resources add " + r.Name
	if old != nil && !e.isAdmin() && !e.canView(old.Name) {
		// The name is taken, which cannot be hidden (names are unique),
		// but by what, and in which project, is not said to someone who
		// cannot see it.
		return e.deny(what, "the name "+r.Name+" is already taken", "Ask a domain admin, or pick another name")
	}
	if old != nil {
		// Replacing re-points everyone's forwards and shells, and moving
		// takes the Resource (and its tuples) away from its project: both
		// need admin where it is now, per the record, not per tuples.
		doing := fmt.Sprintf("replace the Resource %s, which is in project %s,", r.Name, projectOf(*old))
		if projectOf(*old) != r.Project {
			doing = fmt.Sprintf("move the Resource %s out of project %s", r.Name, projectOf(*old))
		}
		if err := e.requireProjectAdmin(what, projectOf(*old), doing); err != nil {
			return err
		}
	}
	// The Resource lands in r.Project: only its admins may put it there.
	doing := "add a Resource to project " + r.Project
	if old != nil && projectOf(*old) != r.Project {
		doing = fmt.Sprintf("move the Resource %s into project %s", r.Name, r.Project)
	}
	if err := e.requireProjectAdmin(what, r.Project, doing); err != nil {
		return err
	}
	if attrs := e.privileged(r); len(attrs) > 0 && !e.isAdmin() {
		// What these grant on targets is decided by domain admins: a login
		// is the account the bastion's user CA certifies everywhere that
		// trusts it, credentials and groups are the bastion's own power in
		// a cluster.
		return e.deny(what, fmt.Sprintf("%s may be set only by a domain admin", strings.Join(attrs, ", ")),
			"Leave that out, or ask a domain admin to add the Resource"+e.loginHint(r))
	}
	return nil
}

// privileged lists the attributes of r only domain admins may set.
func (e *env) privileged(r store.Resource) []string {
	var out []string
	if r.Login == "root" {
		out = append(out, "--login root")
	} else if r.Login != "" && !slices.Contains(e.deps.ResourceRules.Logins, r.Login) {
		out = append(out, fmt.Sprintf("--login %s (not in the config's resource_policy.logins)", r.Login))
	}
	if k := r.Kube; k != nil {
		if k.Credentials != "" {
			out = append(out, "--credentials (the bastion's own apiserver identity)")
		}
		if len(k.Groups) > 0 {
			out = append(out, "--kube-group (the Kubernetes groups users are impersonated with)")
		}
	}
	return out
}

func (e *env) loginHint(r store.Resource) string {
	if r.Login == "" || r.Login == "root" {
		return ""
	}
	if len(e.deps.ResourceRules.Logins) == 0 {
		return "; project admins may set no login (an operator can list some in resource_policy.logins)"
	}
	return "; logins project admins may set: " + strings.Join(e.deps.ResourceRules.Logins, ", ")
}

// checkNames refuses a name or alias another Resource already answers
// to: forwards resolve a name first, then the aliases in list order, so
// a clash would capture (or hide) the other Resource's forwards.
func (e *env) checkNames(r store.Resource) error {
	seen := map[string]bool{r.Name: true}
	for _, a := range r.Aliases {
		if !validName.MatchString(a) {
			return fmt.Errorf("invalid alias %q", a)
		}
		if seen[a] {
			return fmt.Errorf("--alias %s repeats the name or another alias", a)
		}
		seen[a] = true
	}
	all, err := e.deps.Resources.ListResources(e.ctx)
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.Name == r.Name {
			continue
		}
		if slices.Contains(o.Aliases, r.Name) {
			return fmt.Errorf("the name %s is an alias of another Resource; pick another name (a domain admin may remove the alias)", r.Name)
		}
		for _, a := range r.Aliases {
			if a == o.Name || slices.Contains(o.Aliases, a) {
				return fmt.Errorf("--alias %s is already a name or alias of another Resource; pick another alias", a)
			}
		}
	}
	return nil
}

// checkAddresses refuses a Resource that would dial the bastion itself,
// loopback, link-local or cloud metadata (names are resolved; the forward,
// shell, sftp and kube dialers check again at every connection).
func (e *env) checkAddresses(r store.Resource) error {
	g := e.deps.ResourceRules.Addresses
	if g == nil {
		return fmt.Errorf("this bastion has no address guard, so it accepts no Resources over ssh; define them in the config")
	}
	targets, err := resourceTargets(r)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := g.CheckAddress(e.ctx, t); err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("resources add %s refused: %v", r.Name, err)}
		}
	}
	return nil
}

// resourceTargets are the host:port pairs r may be dialled at: its
// address, and its host on every further allowed port (see
// forward.dialAddress); for kube, the apiserver URL's host and port.
func resourceTargets(r store.Resource) ([]string, error) {
	if r.Kind == "kube" {
		u, err := url.Parse(r.Address)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
			return nil, fmt.Errorf("--address %q: a kube Resource's address is its apiserver URL, https://HOST[:PORT]", r.Address)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		return []string{net.JoinHostPort(u.Hostname(), port)}, nil
	}
	host, _, err := net.SplitHostPort(r.Address)
	if err != nil {
		return nil, fmt.Errorf("--address %q: want host:port", r.Address)
	}
	out := []string{r.Address}
	for i, p := range r.Ports {
		if i > 0 {
			out = append(out, net.JoinHostPort(host, strconv.Itoa(p)))
		}
	}
	return out, nil
}

// projectTuples makes resource:<r>#project@project:<P> the only project
// tuple of r (deleting any other, however it came), and links P to the
// domain: a Resource is in exactly one project, always.
func (e *env) projectTuples(r store.Resource) (add, del []store.Tuple, err error) {
	want := store.Tuple{Object: "resource:" + r.Name, Relation: "project", Subject: "project:" + r.Project}
	have, err := e.deps.Tuples.TuplesByObject(e.ctx, want.Object, "project")
	if err != nil {
		return nil, nil, err
	}
	for _, t := range have {
		if t.Subject != want.Subject || !t.Expires.IsZero() {
			del = append(del, t)
		}
	}
	add = []store.Tuple{want, {Object: "project:" + r.Project, Relation: "domain", Subject: e.domainObject()}}
	return add, del, nil
}

// refuseProjectTuple keeps `tuples add|rm` off resource#project: a second
// one would make another project's admins admin of the Resource, and
// removing it would take the Resource out of the tenancy tree. Resources
// change project with `resources add NAME --project P` only.
func (e *env) refuseProjectTuple(what string, t store.Tuple) error {
	if !strings.HasPrefix(t.Object, "resource:") || t.Relation != "project" {
		return nil
	}
	return e.deny(what, fmt.Sprintf("%s is a Resource's project, which tuples do not change", t),
		fmt.Sprintf("Move the Resource with: %s resources add %s --project P ... (needs admin on both projects)",
			e.deps.Host, strings.TrimPrefix(t.Object, "resource:")))
}
