package commands

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/subsystems/netguard"
)

// tenancy is a store and the default model with: root domain admin,
// mallory admin of project sandbox only, and web-1 in project payments.
func tenancy(t *testing.T, allow ...string) (Deps, *badger.Store) {
	t.Helper()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := policy.LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	g, err := netguard.New(netguard.Config{AllowCIDRs: allow})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.AddListener("metrics", "127.0.0.1:9222"); err != nil {
		t.Fatal(err)
	}
	d := Deps{Policy: policy.New(m, st), Tuples: st, Resources: st, Audit: &memAudit{}, Domain: "default", Host: "ssh bastion",
		ResourceRules: ResourceRules{Addresses: g, Logins: []string{"deploy"}, KubeCredentials: []string{"prod"}}}
	ctx := context.Background()
	if err := st.WriteTuples(ctx, []store.Tuple{
		{Object: "domain:default", Relation: "admin", Subject: "user:root"},
		{Object: "project:sandbox", Relation: "admin", Subject: "user:mallory"},
		{Object: "project:sandbox", Relation: "domain", Subject: "domain:default"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, newResources, d, "root", "add", "web-1", "--kind", "ssh", "--address", "10.0.0.5:22",
		"--project", "payments", "--alias", "www"); err != nil {
		t.Fatal(err)
	}
	return d, st
}

func projectTuplesOf(t *testing.T, st *badger.Store, name string) []string {
	t.Helper()
	ts, err := st.TuplesByObject(context.Background(), "resource:"+name, "project")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range ts {
		out = append(out, x.Subject)
	}
	return out
}

// TestProjectAdminStaysInTheirProject is the side of mallory, admin of
// sandbox only: every attempt on payments' Resource is refused with what,
// why and how, and changes nothing.
func TestProjectAdminStaysInTheirProject(t *testing.T) {
	d, st := tenancy(t)
	for name, args := range map[string][]string{
		"replace into own project": {"add", "web-1", "--kind", "ssh", "--address", "10.9.9.9:22", "--project", "sandbox", "--login", "deploy"},
		"replace in place":         {"add", "web-1", "--kind", "ssh", "--address", "10.9.9.9:22", "--project", "payments"},
		"delete":                   {"rm", "web-1"},
		"delete a missing one":     {"rm", "nope"},
	} {
		_, err := runCmd(t, newResources, d, "mallory", args...)
		if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "Ask") {
			t.Errorf("%s: %v, want a permission denial saying how to get access", name, err)
		}
	}
	r, err := st.GetResource(context.Background(), "web-1")
	if err != nil || r.Address != "10.0.0.5:22" || r.Project != "payments" || r.Login != "" {
		t.Fatalf("web-1 changed: %+v %v", r, err)
	}
	if got := projectTuplesOf(t, st, "web-1"); !slices.Equal(got, []string{"project:payments"}) {
		t.Fatalf("web-1's project tuples = %v", got)
	}
	// A stray project tuple (as an older bastion wrote) gives mallory
	// admin on resource:web-1 through the model, but not the right to
	// change or delete it: the record's project decides.
	if err := st.WriteTuples(context.Background(), []store.Tuple{{Object: "resource:web-1", Relation: "project", Subject: "project:sandbox"}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"rm", "web-1"}, {"add", "web-1", "--kind", "ssh", "--address", "10.9.9.9:22", "--project", "sandbox"}} {
		if _, err := runCmd(t, newResources, d, "mallory", args...); err == nil || !strings.Contains(err.Error(), "project:payments") {
			t.Errorf("%v with a stray tuple: %v", args, err)
		}
	}
	// tuples add|rm never touch a Resource's project.
	for _, args := range [][]string{{"add", "resource:web-1#project@project:sandbox"}, {"rm", "resource:web-1#project@project:payments"}} {
		if _, err := runCmd(t, newTuples, d, "root", args...); err == nil || !strings.Contains(err.Error(), "resources add web-1 --project") {
			t.Errorf("tuples %v: %v", args, err)
		}
	}
}

// TestPrivilegedAttributesAreDomainAdmins: logins outside the allow-list,
// root, kube credentials and groups, and raw kubeconfig paths.
func TestPrivilegedAttributesAreDomainAdmins(t *testing.T) {
	d, st := tenancy(t)
	for args, want := range map[string]string{
		"--login root":   "--login root may be set only by a domain admin",
		"--login ubuntu": "not in the config's resource_policy.logins",
		"--kind kube --address https://192.0.2.1:6443 --kubeconfig /etc/shadow":            "not accepted over ssh",
		"--kind kube --address https://192.0.2.1:6443 --kube-group act=system:masters":     "--kube-group",
		"--kind kube --address https://192.0.2.1:6443 --credentials prod":                  "--credentials",
		"--kind kube --address https://192.0.2.1:6443 --in-cluster":                        "not accepted over ssh",
		"--kind kube --address https://192.0.2.1:6443 --credentials prod --context x":      "not accepted over ssh",
		"--kind kube --address https://192.0.2.1:6443 --credentials nope --kube-group a=b": "domain admin",
	} {
		a := []string{"add", "mine", "--project", "sandbox"}
		if !strings.Contains(args, "--kind") {
			a = append(a, "--kind", "ssh", "--address", "10.0.0.7:22")
		}
		_, err := runCmd(t, newResources, d, "mallory", append(a, strings.Fields(args)...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("mallory %s: %v, want %q", args, err, want)
		}
	}
	if _, err := st.GetResource(context.Background(), "mine"); err == nil {
		t.Fatal("a refused add saved the Resource")
	}
	// What mallory may do: her own project, an allowed login.
	if _, err := runCmd(t, newResources, d, "mallory", "add", "mine", "--kind", "ssh", "--address", "10.0.0.7:22", "--project", "sandbox", "--login", "deploy"); err != nil {
		t.Fatalf("project admin in her own project: %v", err)
	}
	// Domain admins may set them; raw paths stay refused for them too.
	if _, err := runCmd(t, newResources, d, "root", "add", "k", "--kind", "kube", "--address", "https://192.0.2.1:6443",
		"--credentials", "prod", "--kube-group", "act=devs", "--project", "sandbox"); err != nil {
		t.Fatalf("domain admin kube Resource: %v", err)
	}
	if _, err := runCmd(t, newResources, d, "root", "add", "k2", "--kind", "kube", "--address", "https://192.0.2.1:6443", "--kubeconfig", "/x"); err == nil ||
		!strings.Contains(err.Error(), "kube.credentials") {
		t.Fatalf("domain admin raw kubeconfig: %v", err)
	}
	if _, err := runCmd(t, newResources, d, "root", "add", "k3", "--kind", "kube", "--address", "https://192.0.2.1:6443", "--credentials", "nope"); err == nil ||
		!strings.Contains(err.Error(), "configured: prod") {
		t.Fatalf("unknown credentials: %v", err)
	}
}

// TestMovingAndNames: a move needs admin on both projects and leaves one
// project tuple; names and aliases never clash.
func TestMovingAndNames(t *testing.T) {
	d, st := tenancy(t)
	if _, err := runCmd(t, newResources, d, "mallory", "add", "mine", "--kind", "tcp", "--address", "10.0.0.8:80", "--project", "sandbox"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, newResources, d, "mallory", "add", "mine", "--kind", "tcp", "--address", "10.0.0.8:80", "--project", "payments"); err == nil ||
		!strings.Contains(err.Error(), "move the Resource mine into project payments") {
		t.Fatalf("move out of her project: %v", err)
	}
	if _, err := runCmd(t, newResources, d, "root", "add", "web-1", "--kind", "ssh", "--address", "10.0.0.5:22", "--project", "sandbox", "--alias", "www"); err != nil {
		t.Fatalf("domain admin move: %v", err)
	}
	if got := projectTuplesOf(t, st, "web-1"); !slices.Equal(got, []string{"project:sandbox"}) {
		t.Fatalf("after the move web-1's project tuples = %v", got)
	}
	for args, want := range map[string]string{
		"www":            "alias of another Resource",
		"x --alias www":  "--alias www is already",
		"y --alias mine": "--alias mine is already",
		"z --alias z":    "repeats",
	} {
		f := strings.Fields(args)
		_, err := runCmd(t, newResources, d, "root", append([]string{"add", f[0], "--kind", "tcp", "--address", "10.0.0.9:80"}, f[1:]...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("add %s: %v, want %q", args, err, want)
		}
	}
}

// TestAddressesAreGuardedAtAdd: loopback, metadata and the bastion's own
// ports are refused; an allowed range re-opens loopback but never the
// bastion's own listener, on the address or on a further port.
func TestAddressesAreGuardedAtAdd(t *testing.T) {
	d, _ := tenancy(t)
	for _, addr := range []string{"127.0.0.1:5432", "169.254.169.254:80", "localhost:22", "[::1]:22"} {
		_, err := runCmd(t, newResources, d, "root", "add", "x", "--kind", "tcp", "--address", addr)
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), netguard.AllowKey) {
			t.Errorf("add %s: %v", addr, err)
		}
	}
	_, err := runCmd(t, newResources, d, "root", "add", "x", "--kind", "kube", "--address", "https://169.254.169.254", "--credentials", "prod")
	if err == nil || !strings.Contains(err.Error(), "metadata") {
		t.Errorf("kube at metadata: %v", err)
	}
	d, _ = tenancy(t, "127.0.0.0/8")
	if _, err := runCmd(t, newResources, d, "root", "add", "x", "--kind", "tcp", "--address", "127.0.0.1:5432"); err != nil {
		t.Fatalf("allowed loopback: %v", err)
	}
	for _, args := range [][]string{{"--address", "127.0.0.1:9222"}, {"--address", "127.0.0.1:80", "--port", "80", "--port", "9222"}} {
		_, err := runCmd(t, newResources, d, "root", append([]string{"add", "y", "--kind", "tcp"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "bastion's own metrics") {
			t.Errorf("add %v: %v", args, err)
		}
	}
}

// --port and --ports (the config's name) add to one list, repeatable and
// comma-separated, in the order given.
func TestResourcesAddPortAndPorts(t *testing.T) {
	d, st := tenancy(t)
	if _, err := runCmd(t, newResources, d, "root", "add", "db-2", "--kind", "tcp", "--address", "10.0.0.7:5432",
		"--port", "5432", "--ports", "5433,5434", "--port", "6432", "--project", "payments"); err != nil {
		t.Fatal(err)
	}
	r, err := st.GetResource(context.Background(), "db-2")
	if err != nil || !slices.Equal(r.Ports, []int{5432, 5433, 5434, 6432}) {
		t.Fatalf("db-2 ports = %v, %v; want [5432 5433 5434 6432]", r.Ports, err)
	}
	if _, err := runCmd(t, newResources, d, "root", "add", "db-3", "--kind", "tcp", "--address", "10.0.0.7:5432", "--ports", "5432,x"); err == nil ||
		!strings.Contains(err.Error(), `"x" is not a port`) {
		t.Fatalf("--ports 5432,x: %v; want a clear error", err)
	}
}
