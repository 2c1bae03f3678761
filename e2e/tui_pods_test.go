package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// The front door's kube discovery, as a person uses it: real ssh -tt in a
// real terminal (tmux) against the real kubelet data plane. Under prod,
// bob sees his namespace, the pod web with its status and the Service web;
// the detail pane gives the exact -L; enter opens a shell in the pod (its
// size follows the window; recorded, audited), exit comes back; l follows
// the logs until q.
func TestTUIPodsShellAndLogs(t *testing.T) {
	e := workloadSetup(t)
	svc := filepath.Join(t.TempDir(), "svc.yaml")
	manifest := "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: " + e.ns + "}\n" +
		"spec:\n  selector: {tier: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n"
	if err := os.WriteFile(svc, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	// bob may list namespaces (cluster-wide), so the picker finds his.
	for _, args := range [][]string{
		{"apply", "-f", svc},
		{"create", "clusterrole", "ns-list-" + e.ns, "--verb=list", "--resource=namespaces"},
		{"create", "clusterrolebinding", "bob-ns-list-" + e.ns, "--clusterrole=ns-list-" + e.ns, "--user=bob"},
	} {
		if out, err := e.n.Kubectl(t, e.n.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		_, _ = e.n.Kubectl(t, e.n.AdminKubeconfig, "delete", "clusterrolebinding", "bob-ns-list-"+e.ns)
		_, _ = e.n.Kubectl(t, e.n.AdminKubeconfig, "delete", "clusterrole", "ns-list-"+e.ns)
	})

	argv := append([]string{"ssh", "-tt"}, e.b.SSHArgs(e.bob)...)
	pane := harness.StartPane(t, 120, 32, nil, append(argv, "127.0.0.1")...)
	s := pane.WaitText(20*time.Second, "prod", "kube", "NAME")
	// Lazy: nothing was listed before the Resource is opened.
	if n := len(listEvents(t, e, "bob")); n != 0 {
		t.Fatalf("%d kube.list events before prod was expanded", n)
	}
	if strings.Contains(s, e.ns) {
		t.Fatalf("workloads shown before prod was expanded:\n%s", s)
	}

	pane.Send("Enter") // expands prod
	s = pane.WaitText(20*time.Second, "└ "+e.ns, "web", "Running 1/1", "ports 8080", "svc", "ClusterIP")
	if strings.Contains(s, "└ default") || strings.Contains(s, "kube-system") {
		t.Fatalf("namespaces where bob may list nothing are shown:\n%s", s)
	}
	// Down to the pod web: namespaces of earlier tests where bob may
	// list pods too may come first.
	downTo(t, pane, "-N -L 8080:prod/pods/"+e.ns+"/web:8080", "enter for a shell in web")
	pane.Send("Down") // the Service web
	pane.WaitText(30*time.Second, "-N -L 80:prod/services/"+e.ns+"/web:80")
	pane.Send("Up")

	// enter: a shell in the pod, as bob (his RBAC: pods/exec).
	pane.Send("Enter")
	pane.WaitText(20*time.Second, "shell in pod "+e.ns+"/web", "as bob")
	time.Sleep(time.Second) // let the shell print its prompt
	pane.Type("echo in-pod-$((6*7)); stty size")
	pane.Send("Enter")
	pane.WaitFor("the pod's output and the pane's size", 20*time.Second, func(s string) bool {
		return hasLine(s, "in-pod-42") && hasLine(s, "32 120")
	})
	pane.Resize(100, 28)
	time.Sleep(500 * time.Millisecond)
	pane.Type("stty size")
	pane.Send("Enter")
	pane.WaitFor("the new size inside the pod", 20*time.Second, func(s string) bool { return hasLine(s, "28 100") })
	pane.Type("exit 3")
	pane.Send("Enter")
	// Back in the TUI, prod still expanded and the pod selected.
	s = pane.WaitText(20*time.Second, "NAME", "└ "+e.ns, "enter for a shell in web")

	// l: the logs, following, until q.
	pane.Send("l")
	s = pane.WaitText(20*time.Second, "logs of pod "+e.ns+"/web", "started-web", "tick-")
	first := lastTick(s)
	pane.WaitFor("a newer tick (following)", 20*time.Second, func(s string) bool { return lastTick(s) > first })
	pane.Send("q")
	pane.WaitText(20*time.Second, "NAME", "└ "+e.ns)

	// A pod shell is a session: sessions kill cuts it, back to the menu.
	pane.Send("Enter")
	pane.WaitText(20*time.Second, "shell in pod "+e.ns+"/web")
	var live []store.Session
	deadline := time.Now().Add(10 * time.Second)
	for len(live) == 0 && time.Now().Before(deadline) {
		r := e.b.SSH(e.bob, "sessions", "-o", "json")
		mustOK(t, r, "sessions")
		live = nil
		_ = json.Unmarshal([]byte(r.Stdout), &live)
		time.Sleep(100 * time.Millisecond)
	}
	if len(live) != 1 || live[0].Kind != "shell" || !strings.Contains(live[0].Target, "prod/pods/"+e.ns+"/web") {
		t.Fatalf("bob's live sessions: %+v", live)
	}
	mustOK(t, e.b.SSH(e.alice, "sessions", "kill", live[0].ID), "sessions kill")
	pane.WaitText(20*time.Second, "shell in pod "+e.ns+"/web ended", "NAME", "└ "+e.ns)
	pane.Send("q")
	if code := pane.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d:\n%s", code, pane.Screen())
	}

	// The shells were audited with the pod, and recorded.
	var opened, closed []store.Event
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", "shell.open") {
		if ev.Actor == "bob" && ev.Target == "prod" {
			opened = append(opened, ev)
		}
	}
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", "shell.close") {
		if ev.Actor == "bob" && ev.Target == "prod" {
			closed = append(closed, ev)
		}
	}
	if len(opened) != 2 || opened[0].Details["pod"] != "web" || opened[0].Details["namespace"] != e.ns ||
		opened[0].Details["as_user"] != "bob" || opened[0].Details["container"] == "" {
		t.Fatalf("shell.open events: %+v", opened)
	}
	if len(closed) != 2 || closed[0].Details["exit"] != "3" || closed[0].Details["session"] != opened[0].Details["session"] {
		t.Fatalf("shell.close events: %+v", closed)
	}
	if closed[1].Reason == "" || closed[1].Reason == "client closed" {
		t.Fatalf("the killed shell's close does not say it was cut: %+v", closed[1])
	}
	if n := len(listEvents(t, e, "bob")); n < 2 {
		t.Fatalf("kube.list events: %d, want one per listing (expanded twice)", n)
	}
	logs := auditEvents(t, e.b, e.alice, "--action", "kube.logs")
	if len(logs) != 1 || logs[0].Details["pod"] != "web" || logs[0].Actor != "bob" {
		t.Fatalf("kube.logs events: %+v", logs)
	}
	r := e.b.SSH(e.bob, "recordings", "list", "-o", "json")
	mustOK(t, r, "recordings list")
	var recs []store.Session
	if err := json.Unmarshal([]byte(r.Stdout), &recs); err != nil || len(recs) != 2 {
		t.Fatalf("recordings list: %v %s", err, r.Stdout)
	}
	shell := recs[0]
	for _, rec := range recs {
		if rec.ID == opened[0].Details["session"] {
			shell = rec
		}
	}
	cast := e.b.SSH(e.bob, "recordings", "export", shell.Recording)
	mustOK(t, cast, "recordings export")
	lines := strings.Split(strings.TrimSpace(cast.Stdout), "\n")
	var hdr map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil || hdr["version"] != float64(2) || hdr["width"] != float64(120) {
		t.Fatalf("not an asciicast v2 header of the pane's width: %q", lines[0])
	}
	if !strings.Contains(cast.Stdout, "in-pod-42") || !strings.Contains(cast.Stdout, `"r", "100x28"`) && !strings.Contains(cast.Stdout, `"r","100x28"`) {
		t.Fatalf("the recording lacks the output or the resize:\n%s", cast.Stdout)
	}
}

// A user whose Kubernetes RBAC lets them list nothing sees why, inline
// under the Resource. One who may not list namespaces (bob here) is told
// so, names his own with n, and sees its pods.
func TestTUIPodsRefusedByRBACInline(t *testing.T) {
	e := workloadSetup(t)
	carol := addUser(t, e.b, e.alice, "carol")
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "resource:prod#act@user:carol"), "grant carol")
	argv := append([]string{"ssh", "-tt"}, e.b.SSHArgs(carol)...)
	pane := harness.StartPane(t, 160, 30, nil, append(argv, "127.0.0.1")...)
	pane.WaitText(20*time.Second, "prod", "NAME")
	pane.Send("Right")
	pane.WaitText(20*time.Second, `refused by the Kubernetes RBAC of prod: user "carol"`, "└ default", "pods, services forbidden by your")
	pane.Send("q")
	if code := pane.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d:\n%s", code, pane.Screen())
	}

	argv = append([]string{"ssh", "-tt"}, e.b.SSHArgs(e.bob)...)
	pane = harness.StartPane(t, 160, 30, nil, append(argv, "127.0.0.1")...)
	pane.WaitText(20*time.Second, "prod", "NAME")
	pane.Send("Enter")
	pane.WaitText(20*time.Second, `user "bob"`, "may not list namespaces")
	pane.Send("n")
	pane.WaitText(30*time.Second, "Namespace to list in prod")
	pane.Type(e.ns)
	pane.Send("Enter")
	pane.WaitText(20*time.Second, "└ "+e.ns, "web", "Running 1/1")
	pane.Send("q")
	if code := pane.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d:\n%s", code, pane.Screen())
	}
}

func listEvents(t *testing.T, e *workloadEnv, user string) []store.Event {
	t.Helper()
	var out []store.Event
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", "kube.list") {
		if ev.Actor == user && ev.Details["via"] == "tui" {
			out = append(out, ev)
		}
	}
	return out
}

var tickRE = regexp.MustCompile(`tick-(\d+)`)

// lastTick is the highest tick the screen shows (-1: none).
func lastTick(s string) int {
	n := -1
	for _, m := range tickRE.FindAllStringSubmatch(s, -1) {
		if v, err := strconv.Atoi(m[1]); err == nil && v > n {
			n = v
		}
	}
	return n
}

// downTo presses Down until the screen shows every one of want, for at
// most 80 rows, waiting up to 1 s for each row's detail pane.
func downTo(t *testing.T, pane *harness.Pane, want ...string) {
	t.Helper()
	for range 80 {
		pane.Send("Down")
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if harness.Contains(pane.Screen(), want...) {
				return
			}
		}
	}
	t.Fatalf("no row shows %q; the screen shows:\n%s", want, pane.Screen())
}
