package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// The tests of this file take the side of mallory, admin of project
// sandbox only, who must not reach beyond it with `resources add|rm`:
// not into another project's Resources, not to privileged attributes,
// not to the bastion itself or what sits behind it.

// projectBastion starts a bastion (admin root) with mallory admin of
// sandbox; config is extra YAML, strict leaves loopback refused.
func projectBastion(t *testing.T, strict bool, config string) (*harness.Bastion, harness.Key, harness.Key) {
	t.Helper()
	root := harness.NewKey(t, t.TempDir(), "root")
	b := harness.Start(t, harness.Options{Admin: "root", AdminKeys: []harness.Key{root}, StrictAddresses: strict, Config: config})
	mallory := addUser(t, b, root, "mallory")
	mustOK(t, b.SSH(root, "tuples", "add", "project:sandbox#admin@user:mallory"), "make mallory admin of sandbox")
	return b, root, mallory
}

// refused runs args as key and wants a failure whose stderr holds every
// one of want.
func refused(t *testing.T, b *harness.Bastion, key harness.Key, want []string, args ...string) {
	t.Helper()
	r := b.SSH(key, args...)
	if r.Code == 0 || !harness.Contains(r.Stderr, want...) {
		t.Errorf("%s: exit %d, want a refusal naming %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, want, r.Stdout, r.Stderr)
	}
}

func showResource(t *testing.T, b *harness.Bastion, key harness.Key, name string) store.Resource {
	t.Helper()
	r := b.SSH(key, "resources", "show", name, "-o", "json")
	mustOK(t, r, "resources show "+name)
	var res store.Resource
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("resources show -o json: %v\n%s", err, r.Stdout)
	}
	return res
}

// projectsOf lists the subjects of resource:<name>#project, via `tuples list`.
func projectsOf(t *testing.T, b *harness.Bastion, key harness.Key, name string) []string {
	t.Helper()
	r := b.SSH(key, "tuples", "list", "--object", "resource:"+name, "--relation", "project", "-o", "json")
	mustOK(t, r, "tuples list")
	var ts []store.Tuple
	if err := json.Unmarshal([]byte(r.Stdout), &ts); err != nil {
		t.Fatalf("tuples list -o json: %v\n%s", err, r.Stdout)
	}
	out := []string{}
	for _, x := range ts {
		out = append(out, x.Subject)
	}
	return out
}

func resourceNames(t *testing.T, b *harness.Bastion, key harness.Key) []string {
	t.Helper()
	r := b.SSH(key, "resources", "list", "-o", "json")
	mustOK(t, r, "resources list")
	var rs []store.Resource
	if err := json.Unmarshal([]byte(r.Stdout), &rs); err != nil {
		t.Fatalf("resources list -o json: %v\n%s", err, r.Stdout)
	}
	var out []string
	for _, x := range rs {
		out = append(out, x.Name)
	}
	return out
}

// TestBoundaryProjectAdminStaysInProject: mallory cannot replace, move or
// delete payments' Resources, give a root login, name a kubeconfig, map
// kube groups, take a name or alias, or add a project tuple; each refusal
// says what, why and how, and nothing changed, also after a restart. The
// config upsert restores a config Resource's one project.
func TestBoundaryProjectAdminStaysInProject(t *testing.T) {
	b, root, mallory := projectBastion(t, true, "resource_policy:\n  logins: [deploy]\n"+
		"kube:\n  credentials:\n    prod: /nonexistent/prod.kubeconfig\n"+
		"resources:\n  - {name: cfg-db, kind: tcp, address: '192.0.2.40:5432', project: payments}\n")
	mustOK(t, b.SSH(root, "resources", "add", "web-1", "--kind", "ssh", "--address", "192.0.2.10:22", "--project", "payments", "--alias", "web"), "add web-1")
	// What mallory may do: her own project, a login from the allow-list.
	mustOK(t, b.SSH(mallory, "resources", "add", "mine", "--kind", "tcp", "--address", "192.0.2.20:80", "--project", "sandbox"), "mallory adds mine")
	mustOK(t, b.SSH(mallory, "resources", "add", "box", "--kind", "ssh", "--address", "192.0.2.21:22", "--project", "sandbox", "--login", "deploy"), "mallory adds box")

	deny := []string{"permission denied"}
	for _, c := range []struct {
		want []string
		args []string
	}{
		// web-1 is payments', which mallory cannot view: the refusal
		// says that the name is taken, not by what or where.
		{append(deny, "the name web-1 is already taken", "Ask a domain admin"),
			[]string{"resources", "add", "web-1", "--kind", "ssh", "--address", "192.0.2.66:22", "--project", "sandbox", "--login", "deploy"}},
		{append(deny, "the name web-1 is already taken"),
			[]string{"resources", "add", "web-1", "--kind", "ssh", "--address", "192.0.2.66:22", "--project", "payments"}},
		{append(deny, "move the Resource mine into project payments", "admin on project:payments"),
			[]string{"resources", "add", "mine", "--kind", "tcp", "--address", "192.0.2.20:80", "--project", "payments"}},
		// mallory cannot view payments' Resources: removing one is
		// refused as a name that does not exist is (issue 19, item 6).
		{append(deny, "it needs the relation admin on the Resource's project"),
			[]string{"resources", "rm", "web-1"}},
		{append(deny, "it needs the relation admin on the Resource's project"),
			[]string{"resources", "rm", "cfg-db"}},
		{append(deny, "--login root may be set only by a domain admin", "ask a domain admin"),
			[]string{"resources", "add", "box2", "--kind", "ssh", "--address", "192.0.2.22:22", "--project", "sandbox", "--login", "root"}},
		{append(deny, "--login ubuntu (not in the config's resource_policy.logins)", "logins project admins may set: deploy"),
			[]string{"resources", "add", "box2", "--kind", "ssh", "--address", "192.0.2.22:22", "--project", "sandbox", "--login", "ubuntu"}},
		{[]string{"--kubeconfig, --context and --in-cluster are not accepted over ssh", "kube.credentials", "--credentials NAME"},
			[]string{"resources", "add", "k", "--kind", "kube", "--address", "https://192.0.2.30:6443", "--project", "sandbox", "--kubeconfig", "/etc/passwd"}},
		{append(deny, "--kube-group", "may be set only by a domain admin"),
			[]string{"resources", "add", "k", "--kind", "kube", "--address", "https://192.0.2.30:6443", "--project", "sandbox", "--kube-group", "act=system:masters"}},
		{append(deny, "--credentials", "may be set only by a domain admin"),
			[]string{"resources", "add", "k", "--kind", "kube", "--address", "https://192.0.2.30:6443", "--project", "sandbox", "--credentials", "prod"}},
		{[]string{"--alias web is already a name or alias of another Resource"},
			[]string{"resources", "add", "box3", "--kind", "tcp", "--address", "192.0.2.23:80", "--project", "sandbox", "--alias", "web"}},
		{[]string{"--alias cfg-db is already a name or alias of another Resource"},
			[]string{"resources", "add", "box3", "--kind", "tcp", "--address", "192.0.2.23:80", "--project", "sandbox", "--alias", "cfg-db"}},
		{[]string{"the name web is an alias of another Resource"},
			[]string{"resources", "add", "web", "--kind", "tcp", "--address", "192.0.2.23:80", "--project", "sandbox"}},
		{append(deny, "resource:web-1#project@project:sandbox is a Resource's project", "resources add web-1 --project P"),
			[]string{"tuples", "add", "resource:web-1#project@project:sandbox"}},
		{append(deny, "is a Resource's project"),
			[]string{"tuples", "add", "resource:mine#project@project:payments"}},
		{append(deny, "is a Resource's project"),
			[]string{"tuples", "rm", "resource:mine#project@project:sandbox"}},
	} {
		refused(t, b, mallory, c.want, c.args...)
	}

	unchanged := func(when string) {
		t.Helper()
		w := showResource(t, b, root, "web-1")
		if w.Address != "192.0.2.10:22" || w.Project != "payments" || w.Login != "" || !slices.Equal(w.Aliases, []string{"web"}) {
			t.Errorf("%s: web-1 changed: %+v", when, w)
		}
		if got := projectsOf(t, b, root, "web-1"); !slices.Equal(got, []string{"project:payments"}) {
			t.Errorf("%s: web-1's project tuples = %v, want exactly project:payments", when, got)
		}
		if got := projectsOf(t, b, root, "mine"); !slices.Equal(got, []string{"project:sandbox"}) {
			t.Errorf("%s: mine's project tuples = %v", when, got)
		}
		names := resourceNames(t, b, root)
		for _, n := range []string{"box2", "box3", "k", "web"} {
			if slices.Contains(names, n) {
				t.Errorf("%s: a refused add saved %s", when, n)
			}
		}
	}
	unchanged("after the refusals")

	// A domain admin moves a Resource (admin on both projects): it keeps
	// exactly one project tuple. Moving the config's cfg-db sticks until
	// the next start, which restores the config's project, alone.
	mustOK(t, b.SSH(root, "resources", "add", "cfg-db", "--kind", "tcp", "--address", "192.0.2.40:5432", "--project", "sandbox"), "root moves cfg-db")
	if got := projectsOf(t, b, root, "cfg-db"); !slices.Equal(got, []string{"project:sandbox"}) {
		t.Fatalf("after the move cfg-db's project tuples = %v", got)
	}
	r := b.SSH(root, "resources", "add", "mine", "--kind", "tcp", "--address", "192.0.2.20:80", "--project", "payments")
	mustOK(t, r, "root moves mine")
	if !strings.Contains(r.Stdout, "moved from project sandbox") {
		t.Errorf("a move does not say what it kept:\n%s", r.Stdout)
	}
	b.Restart()
	if got := projectsOf(t, b, root, "cfg-db"); !slices.Equal(got, []string{"project:payments"}) {
		t.Errorf("after a restart cfg-db's project tuples = %v, want the config's alone", got)
	}
	if got := projectsOf(t, b, root, "web-1"); !slices.Equal(got, []string{"project:payments"}) {
		t.Errorf("after a restart web-1's project tuples = %v", got)
	}
	if got := projectsOf(t, b, root, "mine"); !slices.Equal(got, []string{"project:payments"}) {
		t.Errorf("after a restart mine's project tuples = %v", got)
	}
	// mine is payments' now: mallory lost it with the move.
	refused(t, b, mallory, append(deny, "it needs the relation admin on the Resource's project"), "resources", "rm", "mine")
	refused(t, b, mallory, append(deny, "it needs the relation admin on the Resource's project"), "resources", "rm", "web-1")
}

// TestBoundaryProjectAddressesRefusedByDefault: with no allow CIDR, the
// bastion's own ports, loopback (also by name), metadata and link-local
// are refused at add, for project and domain admins alike.
func TestBoundaryProjectAddressesRefusedByDefault(t *testing.T) {
	b, root, mallory := projectBastion(t, true, "kube:\n  credentials:\n    prod: /nonexistent/prod.kubeconfig\n")
	metricsPort := b.Metrics[strings.LastIndexByte(b.Metrics, ':')+1:]
	allow := "resource_policy.allow_cidrs"
	for i, c := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:" + metricsPort, []string{"port " + metricsPort + " is the bastion's own metrics listener", "no setting allows this"}},
		{"127.0.0.1:" + b.Port, []string{"is the bastion's own ssh listener"}},
		{"169.254.169.254:80", []string{"169.254.169.254 is the cloud metadata service", allow + ": [169.254.169.254/32]"}},
		{"[fd00:ec2::254]:80", []string{"cloud metadata service"}},
		{"localhost:22", []string{"address localhost:22 refused", "is loopback", allow + ": [127.0.0.0/8]"}},
		{"127.0.0.1:5432", []string{"127.0.0.1 is loopback", allow}},
		{"[::1]:22", []string{"::1 is loopback", allow + ": [::1/128]"}},
		{"169.254.10.1:80", []string{"link-local", allow + ": [169.254.0.0/16]"}},
		{"0.0.0.0:22", []string{"unspecified"}},
	} {
		name := "x" + string(rune('a'+i))
		refused(t, b, mallory, append([]string{"resources add " + name + " refused"}, c.want...),
			"resources", "add", name, "--kind", "tcp", "--address", c.addr, "--project", "sandbox")
	}
	// The guard holds for domain admins, and for kube apiserver URLs.
	refused(t, b, root, []string{"is loopback"}, "resources", "add", "y", "--kind", "ssh", "--address", "localhost:22")
	refused(t, b, root, []string{"cloud metadata service"}, "resources", "add", "y", "--kind", "kube", "--address", "https://169.254.169.254", "--credentials", "prod")
	if names := resourceNames(t, b, root); len(names) != 0 {
		t.Fatalf("refused adds saved %v", names)
	}
}

// TestBoundaryProjectOwnPortsWithLoopbackAllowed: with 127.0.0.0/8
// allowed (the harness's default), loopback targets work, but the
// bastion's own listeners stay refused at add and, for a Resource whose
// port became the bastion's after it was added, at dial: forwards, the
// onward ssh of shells, and the kube proxy's connection to the apiserver.
func TestBoundaryProjectOwnPortsWithLoopbackAllowed(t *testing.T) {
	dir := t.TempDir()
	future := freeLoopbackPort(t)
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:"+future+
		"', insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: x}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := "kube:\n  credentials:\n    prod: " + kc + "\n"
	b, root, mallory := projectBastion(t, false, config)
	metricsPort := b.Metrics[strings.LastIndexByte(b.Metrics, ':')+1:]
	echo := harness.StartEcho(t)
	mustOK(t, b.SSH(mallory, "resources", "add", "echo", "--kind", "tcp", "--address", echo, "--project", "sandbox"), "mallory adds a loopback echo")
	echoPort := echo[strings.LastIndexByte(echo, ':')+1:]
	f := b.StartForward(mallory, "echo:"+echoPort)
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	harness.Echo(t, c, []byte("allowed loopback"))
	c.Close()
	f.Stop()

	// A domain admin may give a root login; the shell's onward ssh goes
	// through the same guarded dialer, to an allowed loopback sshd.
	r := b.SSH(root, "ca")
	mustOK(t, r, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(r.Stdout)})
	mustOK(t, b.SSH(root, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root", "--project", "sandbox"), "root adds host-1")
	r = b.SSH(root, "host-1", "--", "echo", "hi")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "hi" {
		t.Fatalf("shell on an allowed loopback host: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	for _, args := range [][]string{
		{"--address", "127.0.0.1:" + metricsPort},
		{"--address", "localhost:" + metricsPort},
		{"--address", "127.0.0.1:" + b.Port},
		{"--address", "127.0.0.2:" + b.Port},
		{"--address", "127.0.0.1:" + echoPort, "--port", echoPort, "--port", metricsPort},
	} {
		refused(t, b, mallory, []string{"refused", "is the bastion's own", "no setting allows this"},
			append([]string{"resources", "add", "self", "--kind", "tcp", "--project", "sandbox"}, args...)...)
	}

	// Resources on a port nothing listens on yet; then the bastion starts
	// with its metrics there.
	mustOK(t, b.SSH(mallory, "resources", "add", "later", "--kind", "tcp", "--address", "127.0.0.1:"+future, "--project", "sandbox"), "add later")
	mustOK(t, b.SSH(mallory, "resources", "add", "later-ssh", "--kind", "ssh", "--address", "127.0.0.1:"+future, "--project", "sandbox"), "add later-ssh")
	mustOK(t, b.SSH(root, "resources", "add", "later-kube", "--kind", "kube", "--address", "https://127.0.0.1:"+future, "--credentials", "prod", "--project", "sandbox"), "add later-kube")
	b.Stop()
	b = harness.Start(t, harness.Options{DataDir: b.DataDir, Admin: "root", AdminKeys: []harness.Key{root}, Config: config,
		Env: []string{"BASTION_METRICS_LISTEN=127.0.0.1:" + future}})
	if b.Metrics != "127.0.0.1:"+future {
		t.Fatalf("metrics at %s, want 127.0.0.1:%s", b.Metrics, future)
	}
	if resp, err := http.Get("http://" + b.Metrics + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the metrics listener does not answer: %v", err)
	}

	own := "address 127.0.0.1:" + future + " refused: 127.0.0.1 port " + future + " is the bastion's own metrics listener"
	r = b.SSHRun(harness.Run{Key: &mallory, Flags: []string{"-W", "later:" + future}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !harness.Contains(r.Stderr, "cannot reach later", own) {
		t.Errorf("-W later: exit %d, want a dial-time refusal\n%s", r.Code, r.Stderr)
	}
	r = b.SSH(mallory, "later-ssh", "true")
	if r.Code == 0 || !harness.Contains(r.Stderr, "cannot log in to later-ssh", own) {
		t.Errorf("shell on later-ssh: exit %d, want a dial-time refusal\n%s", r.Code, r.Stderr)
	}
	kf := b.StartForward(root, "later-kube:443")
	port := kf.Local[strings.LastIndexByte(kf.Local, ':')+1:]
	r = b.SSH(root, "kubeconfig", "later-kube", "--port", port)
	mustOK(t, r, "kubeconfig later-kube")
	kcPath := filepath.Join(dir, "kc")
	if err := os.WriteFile(kcPath, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := (&harness.Kube{Dir: dir}).Kubectl(t, kcPath, "get", "ns")
	if err == nil || !strings.Contains(out, own) {
		t.Errorf("kubectl through later-kube: %v, want the dial-time refusal\n%s", err, out)
	}
}

func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):]
}
