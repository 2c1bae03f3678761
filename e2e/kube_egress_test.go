package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// egressSetup: prod is a kube Resource of the config file on the shared
// test cluster, whose egress_address is the host's end of the veth that
// pods reach. bob has act and egress, and a Role that lets him publish
// Services in his namespace.
func egressSetup(t *testing.T) (*harness.KubeNode, *harness.Bastion, harness.Key, harness.Key, string) {
	t.Helper()
	n := harness.SharedKubeNode(t)
	ns := n.Namespace(t, "eg")
	cfg := kubeCredentialsYAML(n.Kube) + "resources:\n  - name: prod\n    kind: kube\n    address: '" + n.URL + "'\n" +
		"    kube: {credentials: prod, egress_address: '" + n.EgressAddress() + "', groups: {act: [bastion:prod-users]}}\n"
	b, alice := admin(t, cfg)
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#act@user:bob"), "act for bob")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#egress@user:bob"), "egress for bob")
	for _, args := range [][]string{
		{"-n", ns, "create", "role", "egress", "--verb=get,create,patch,delete", "--resource=services,endpointslices.discovery.k8s.io"},
		{"-n", ns, "create", "rolebinding", "bob-egress", "--role=egress", "--user=bob"},
	} {
		if out, err := n.Kubectl(t, n.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	return n, b, alice, bob, ns
}

// `ssh -N -R NS/laptop:9000:localhost:PORT` makes Service NS/laptop and
// an EndpointSlice at the bastion's egress address; a pod connecting to
// that address reaches the server on the user's side; when ssh ends, both
// are gone, and egress.open/close carry the namespace, service, port and
// bytes.
func TestKubeEgressFromPod(t *testing.T) {
	n, b, alice, bob, ns := egressSetup(t)
	laptop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello-from-laptop %s\n", r.URL.Path)
	}))
	defer laptop.Close()
	n.RunPod(t, ns, "client", nil, "", "sleep", "3600")

	spec := ns + "/laptop:9000:" + strings.TrimPrefix(laptop.URL, "http://")
	cmd := exec.Command("ssh", append(b.SSHArgs(bob), "-N", "-o", "ExitOnForwardFailure=yes", "-R", spec, "127.0.0.1")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	var addr string
	waitFor(t, 30*time.Second, "the EndpointSlice of laptop", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("ssh -R ended: %v\n%s", err, stderr.String())
		default:
		}
		out, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "get", "endpointslice", "-l", "kubernetes.io/service-name=laptop",
			"-o", "jsonpath={.items[0].endpoints[0].addresses[0]}:{.items[0].ports[0].port}")
		addr = strings.TrimSpace(out)
		return err == nil && strings.HasPrefix(addr, n.EgressAddress()+":")
	})
	svc, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "get", "service", "laptop", "-o", "jsonpath={.spec.ports[0].port} {.spec.selector}")
	if err != nil || strings.TrimSpace(svc) != "9000" {
		t.Fatalf("service laptop: port 9000 and no selector expected, got %q (%v)", svc, err)
	}
	for i := 0; i < 2; i++ {
		// busybox-static's wget crashes (Debian's build); nc speaks HTTP/1.0.
		host, port, _ := strings.Cut(addr, ":")
		out, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "exec", "client", "--", "sh", "-c",
			fmt.Sprintf(`printf 'GET /try%d HTTP/1.0\r\n\r\n' | nc -w 10 %s %s`, i, host, port))
		if err != nil || !strings.Contains(out, fmt.Sprintf("hello-from-laptop /try%d", i)) {
			t.Fatalf("wget %s from the pod: %v\n%s\nssh: %s", addr, err, out, stderr.String())
		}
	}

	_ = cmd.Process.Kill()
	<-exited
	waitFor(t, 30*time.Second, "service and endpointslice removed", func() bool {
		out, _ := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "get", "service,endpointslice", "-o", "name")
		return !strings.Contains(out, "laptop")
	})
	var closes []store.Event
	waitFor(t, 20*time.Second, "egress.close", func() bool {
		closes = auditEvents(t, b, alice, "--action", "egress.close")
		return len(closes) == 1
	})
	d := closes[0].Details
	if closes[0].Actor != "bob" || closes[0].Target != "prod" || d["namespace"] != ns || d["service"] != "laptop" || d["port"] != "9000" ||
		d["bytes_in"] == "0" || d["bytes_out"] == "0" || d["connections"] != "2" || d["cleanup_error"] != "" {
		t.Fatalf("egress.close: %+v", closes[0])
	}
	opens := auditEvents(t, b, alice, "--action", "egress.open")
	if len(opens) != 1 || opens[0].Details["as_user"] != "bob" || opens[0].Details["service_created"] != "true" {
		t.Fatalf("egress.open: %+v", opens)
	}
}

// Without egress the bastion refuses and names the relation; with it but
// without the cluster's RBAC the cluster does, and says what to create; a
// plain -R is refused as it always was; nothing is left in the cluster.
func TestKubeEgressRefusals(t *testing.T) {
	n, b, alice, _, ns := egressSetup(t)
	dave := addUser(t, b, alice, "dave") // act, RBAC, but no egress
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#act@user:dave"), "act for dave")
	if out, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "create", "rolebinding", "dave-egress", "--role=egress", "--user=dave"); err != nil {
		t.Fatalf("bind dave: %v\n%s", err, out)
	}
	carol := addUser(t, b, alice, "carol") // act and egress, but no Role
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#act@user:carol"), "act for carol")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#egress@user:carol"), "egress for carol")
	rForward := func(k harness.Key, spec string) harness.Result {
		return b.SSHRun(harness.Run{Key: &k, Flags: []string{"-R", spec}, Args: []string{"whoami"}, Options: []string{"LogLevel=INFO"}})
	}
	r := rForward(dave, ns+"/laptop:9000:localhost:1")
	if !harness.Contains(r.Stderr, "remote port forwarding (ssh -R "+ns+"/laptop:9000) refused", "user:dave lacks egress on resource:prod",
		"tuples add resource:prod#egress@user:dave") {
		t.Fatalf("dave without egress: exit %d\n%s", r.Code, r.Stderr)
	}
	r = rForward(carol, ns+"/laptop:9000:localhost:1")
	if !harness.Contains(r.Stderr, "refused by the Kubernetes RBAC of prod, not by the bastion", `user "carol"`, "may not patch services",
		"create role egress") {
		t.Fatalf("carol without RBAC: exit %d\n%s", r.Code, r.Stderr)
	}
	r = rForward(carol, "0:x:1")
	if !harness.Contains(r.Stderr, "remote port forwarding (ssh -R) refused: this bastion does not provide it") {
		t.Fatalf("plain -R: exit %d\n%s", r.Code, r.Stderr)
	}
	denies := map[string]string{}
	for _, ev := range auditEvents(t, b, alice, "--action", "egress.deny") {
		denies[ev.Actor] = ev.Details["reason_code"]
	}
	if denies["dave"] != "rebac_denied" || denies["carol"] != "kube_rbac_denied" {
		t.Fatalf("egress.deny events: %v", denies)
	}
	if out, _ := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "get", "service,endpointslice", "-o", "name"); strings.Contains(out, "laptop") {
		t.Fatalf("a refused -R left something in the cluster: %s", out)
	}
}

// An -R into an existing selector-less Service adds its port to it and
// takes only that port back; `sessions kill` ends the egress (the ssh
// connection may stay), and the Service is as it was.
func TestKubeEgressPatchAndKill(t *testing.T) {
	n, b, alice, bob, ns := egressSetup(t)
	if out, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "create", "service", "clusterip", "db", "--tcp=5432:5432"); err != nil {
		t.Fatalf("create service db: %v\n%s", err, out)
	}
	// kubectl create service sets a selector app=db: take it away.
	if out, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "patch", "service", "db", "--type=json", "-p", `[{"op":"remove","path":"/spec/selector"}]`); err != nil {
		t.Fatalf("unselect db: %v\n%s", err, out)
	}
	ports := func() string {
		out, _ := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "get", "service", "db", "-o", "jsonpath={.spec.ports[*].port}")
		return strings.TrimSpace(out)
	}
	cmd := exec.Command("ssh", append(b.SSHArgs(bob), "-N", "-o", "ExitOnForwardFailure=yes", "-R", "prod/"+ns+"/db:9001:127.0.0.1:1", "127.0.0.1")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitFor(t, 30*time.Second, "port 9001 on service db", func() bool { return ports() == "5432 9001" })
	var session string
	waitFor(t, 10*time.Second, "egress.open", func() bool {
		for _, ev := range auditEvents(t, b, alice, "--action", "egress.open") {
			if ev.Details["service"] == "db" && ev.Details["service_created"] == "false" {
				session = ev.Details["session"]
			}
		}
		return session != ""
	})
	mustOK(t, b.SSH(alice, "sessions", "kill", session), "sessions kill")
	waitFor(t, 30*time.Second, "service db back to its own port", func() bool {
		out, _ := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "get", "endpointslice", "-o", "name")
		return ports() == "5432" && !strings.Contains(out, "db-bastion-egress")
	})
	waitFor(t, 10*time.Second, "egress.close revoked", func() bool {
		for _, ev := range auditEvents(t, b, alice, "--action", "egress.close") {
			if ev.Details["session"] == session {
				return ev.Reason == "revoked" && ev.Details["cleanup_error"] == ""
			}
		}
		return false
	})
}
