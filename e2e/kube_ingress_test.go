package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// ingressEvents returns the forward events (open, close, deny) of user
// on prod.
func ingressEvents(t *testing.T, e *workloadEnv, action, user string) []store.Event {
	t.Helper()
	var out []store.Event
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", action) {
		if ev.Actor == user && ev.Target == "prod" {
			out = append(out, ev)
		}
	}
	return out
}

// `ssh -L 8080:prod/pods/NS/web:8080` and `.../services/NS/web:80` reach
// the pod over pods/portforward as bob, audited with the namespace, pod,
// port and bytes.
func TestKubeIngressPodAndService(t *testing.T) {
	e := workloadSetup(t)
	svc := filepath.Join(t.TempDir(), "svc.yaml")
	manifest := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: " + e.ns + "}\n" +
		"spec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n"
	if err := os.WriteFile(svc, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := e.n.Kubectl(t, e.n.AdminKubeconfig, "apply", "-f", svc); err != nil {
		t.Fatalf("create service: %v\n%s", err, out)
	}

	pod := e.b.StartForward(e.bob, "prod/pods/"+e.ns+"/web:8080")
	for i := 0; i < 2; i++ {
		if body := httpGet(t, "http://"+pod.Local+"/"); !strings.Contains(body, "hello-from-pod") {
			t.Fatalf("GET through -L prod/pods/%s/web:8080: %q", e.ns, body)
		}
	}
	viaSvc := e.b.StartForward(e.bob, "prod/services/"+e.ns+"/web:80")
	if body := httpGet(t, "http://"+viaSvc.Local+"/"); !strings.Contains(body, "hello-from-pod") {
		t.Fatalf("GET through -L prod/services/%s/web:80: %q", e.ns, body)
	}

	var closes []store.Event
	waitFor(t, 20*time.Second, "three forward.close events", func() bool {
		closes = ingressEvents(t, e, "forward.close", "bob")
		return len(closes) >= 3
	})
	sawService := false
	for _, ev := range closes {
		d := ev.Details
		if d["namespace"] != e.ns || d["pod"] != "web" || d["pod_port"] != "8080" || d["bytes_in"] == "0" || d["bytes_out"] == "0" {
			t.Errorf("forward.close lacks namespace, pod, port or bytes: %v", d)
		}
		sawService = sawService || (d["service"] == "web" && d["port"] == "80")
	}
	if !sawService {
		t.Errorf("no forward.close names the service and its port: %v", closes)
	}
	opens := ingressEvents(t, e, "forward.open", "bob")
	if len(opens) < 3 || opens[0].Details["as_user"] != "bob" || opens[0].Details["namespace"] != e.ns {
		t.Fatalf("forward.open events: %v", opens)
	}
}

// Both gates hold: without act (ReBAC) the bastion refuses; with act but
// without pods/portforward in the cluster's RBAC, the cluster does, and
// each refusal says which and how to get it. A live tunnel is cut by
// `sessions kill`.
func TestKubeIngressGates(t *testing.T) {
	e := workloadSetup(t)
	carol := addUser(t, e.b, e.alice, "carol") // act, but no Role in the cluster
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "resource:prod#act@user:carol"), "grant carol")
	dave := addUser(t, e.b, e.alice, "dave") // a Role in the cluster, but no act
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "resource:prod#view@user:dave"), "view for dave")
	if out, err := e.n.Kubectl(t, e.n.AdminKubeconfig, "-n", e.ns, "create", "rolebinding", "dave-streams", "--role=streams", "--user=dave"); err != nil {
		t.Fatalf("bind dave: %v\n%s", err, out)
	}
	target := "prod/pods/" + e.ns + "/web:8080"
	w := func(k harness.Key) harness.Result {
		return e.b.SSHRun(harness.Run{Key: &k, Flags: []string{"-W", target}, Options: []string{"LogLevel=INFO"}})
	}
	r := w(carol)
	if r.Code == 0 || !harness.Contains(r.Stderr, "refused by the Kubernetes RBAC of prod, not by the bastion", `user "carol"`,
		"get pods", "pods/portforward", "create rolebinding") {
		t.Fatalf("carol without RBAC: exit %d\n%s", r.Code, r.Stderr)
	}
	r = w(dave)
	if r.Code == 0 || !harness.Contains(r.Stderr, "user:dave lacks act on resource:prod", "request create prod") {
		t.Fatalf("dave without act: exit %d\n%s", r.Code, r.Stderr)
	}
	r = e.b.SSHRun(harness.Run{Key: &e.bob, Flags: []string{"-W", "prod/deployments/" + e.ns + "/web:8080"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !harness.Contains(r.Stderr, "neither pods nor services") {
		t.Fatalf("bad workload kind: exit %d\n%s", r.Code, r.Stderr)
	}
	denied := ingressEvents(t, e, "forward.deny", "carol")
	if len(denied) == 0 || denied[0].Details["reason_code"] != "kube_rbac_denied" || denied[0].Details["pod"] != "web" {
		t.Fatalf("carol's refusal is not audited with its code and pod: %v", denied)
	}

	// sessions kill cuts a live connection: httpd waits for the request
	// that never comes, until the kill closes the tunnel.
	f := e.b.StartForward(e.bob, target)
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var session string
	waitFor(t, 20*time.Second, "the forward.open of the live tunnel", func() bool {
		for _, ev := range ingressEvents(t, e, "forward.open", "bob") {
			session = ev.Details["session"]
		}
		return session != ""
	})
	mustOK(t, e.b.SSH(e.bob, "sessions", "kill", session), "sessions kill")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("the tunnel still stands after sessions kill: %v", err)
	}
	waitFor(t, 20*time.Second, "forward.close revoked", func() bool {
		for _, ev := range ingressEvents(t, e, "forward.close", "bob") {
			if ev.Details["session"] == session && ev.Reason == "revoked" {
				return true
			}
		}
		return false
	})
}

// `ssh bastion pods prod` lists what bob's RBAC lets him list, with the
// -L that reaches each; without list on namespaces he names one with -n.
func TestKubePodsCommand(t *testing.T) {
	e := workloadSetup(t)
	r := e.b.SSH(e.bob, "pods", "prod")
	if r.Code == 0 || !harness.Contains(r.Stderr, `does not let user "bob" list namespaces`, "-n NAMESPACE") {
		t.Fatalf("pods without list on namespaces: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = e.b.SSH(e.bob, "pods", "prod", "-n", e.ns)
	mustOK(t, r, "pods -n")
	if !harness.Contains(r.Stdout, "NAMESPACE", "web", "Running 1/1", "-N -L 8080:prod/pods/"+e.ns+"/web:8080") {
		t.Fatalf("pods -n %s:\n%s", e.ns, r.Stdout)
	}
	r = e.b.SSH(e.bob, "pods", "prod", "-n", e.ns, "-o", "json")
	mustOK(t, r, "pods -o json")
	var got []struct {
		Namespace string `json:"namespace"`
		Pods      []struct {
			Name, Status, Ready, IP string
			Ports                   []int
		} `json:"pods"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || len(got) != 1 || len(got[0].Pods) != 1 {
		t.Fatalf("pods -o json: %v\n%s", err, r.Stdout)
	}
	if p := got[0].Pods[0]; p.Name != "web" || p.Status != "Running" || !strings.HasPrefix(p.IP, "10.88.0.") || len(p.Ports) != 1 || p.Ports[0] != 8080 {
		t.Fatalf("pod web: %+v", p)
	}
	// Another namespace: bob's RBAC lets him list nothing there.
	r = e.b.SSH(e.bob, "pods", "prod", "-n", "default")
	mustOK(t, r, "pods -n default")
	if !harness.Contains(r.Stdout, "pods,services", "forbidden by your Kubernetes RBAC") {
		t.Fatalf("pods -n default:\n%s", r.Stdout)
	}
	if evs := ingressEvents(t, e, "kube.list", "bob"); len(evs) < 3 {
		t.Fatalf("pods is not audited: %v", evs)
	}
}
