package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// kubeEnv: a real apiserver; prod is a kube Resource whose credentials are
// the impersonator's kubeconfig; bob may act on prod, and a Role lets him
// read configmaps (and pods) in dev only.
type kubeEnv struct {
	b                 *harness.Bastion
	k                 *harness.Kube
	alice, bob, carol harness.Key
}

func kubeSetup(t *testing.T) *kubeEnv {
	t.Helper()
	k := harness.StartKube(t)
	b, alice := admin(t, kubeCredentialsYAML(k))
	bob := addUser(t, b, alice, "bob")
	carol := addUser(t, b, alice, "carol")
	mustOK(t, b.SSH(alice, "resources", "add", "prod", "--kind", "kube", "--address", k.URL,
		"--credentials", "prod", "--kube-group", "act=bastion:prod-users"), "resources add prod")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#act@user:bob"), "grant bob")
	for _, args := range [][]string{
		{"create", "namespace", "dev"},
		{"-n", "dev", "create", "serviceaccount", "default"}, // no controller-manager makes it
		{"-n", "dev", "create", "configmap", "cm-1", "--from-literal=a=b"},
		{"-n", "default", "create", "configmap", "secret-ish", "--from-literal=a=b"},
		{"-n", "dev", "create", "role", "reader", "--verb=get,list,watch", "--resource=configmaps,pods"},
		{"-n", "dev", "create", "rolebinding", "bob-reader", "--role=reader", "--user=bob"},
	} {
		if out, err := k.Kubectl(t, k.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	return &kubeEnv{b: b, k: k, alice: alice, bob: bob, carol: carol}
}

// kubeCredentialsYAML names the impersonator's kubeconfig as the
// bastion's credentials "prod": over ssh, kube Resources refer to
// credentials by name and never name a file.
func kubeCredentialsYAML(k *harness.Kube) string {
	return "kube:\n  credentials:\n    prod:\n      kubeconfig: " + k.ImpersonatorKubeconfig + "\n"
}

// tunnel opens `ssh -N -L PORT:res:443` as key and fetches a kubeconfig
// for that port; it returns the kubeconfig's path and the session id.
func (e *kubeEnv) tunnel(t *testing.T, key harness.Key, res string) (kc, session string) {
	t.Helper()
	f := e.b.StartForward(key, res+":443")
	port := f.Local[strings.LastIndexByte(f.Local, ':')+1:]
	r := e.b.SSH(key, "kubeconfig", res, "--port", port)
	mustOK(t, r, "kubeconfig")
	if !strings.Contains(r.Stderr, "-N -L "+port+":"+res+":443") {
		t.Fatalf("kubeconfig does not print the tunnel command:\n%s", r.Stderr)
	}
	kc = filepath.Join(t.TempDir(), "kc")
	if err := os.WriteFile(kc, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`session (s-[0-9a-f]+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no session id in the kubeconfig:\n%s", r.Stdout)
	}
	return kc, m[1]
}

func TestKubeForwardImpersonates(t *testing.T) {
	e := kubeSetup(t)
	kc, _ := e.tunnel(t, e.bob, "prod")

	out, err := e.k.Kubectl(t, kc, "-n", "dev", "get", "cm")
	if err != nil || !strings.Contains(out, "cm-1") {
		t.Fatalf("get cm in dev: %v\n%s", err, out)
	}
	out, err = e.k.Kubectl(t, kc, "-n", "default", "get", "cm")
	if err == nil || !harness.Contains(out, "Forbidden", `User "bob" cannot list resource "configmaps"`, `namespace "default"`) {
		t.Fatalf("get cm in default should be Forbidden for bob: %v\n%s", err, out)
	}
	// whoami: the impersonated user and the groups mapped from act. The
	// client's own impersonation flags are stripped, not obeyed.
	out, err = e.k.Kubectl(t, kc, "auth", "whoami", "--as=kube-admin", "--as-group=system:masters")
	if err != nil || !harness.Contains(out, "bob", "bastion:prod-users") || strings.Contains(out, "system:masters") {
		t.Fatalf("auth whoami: %v\n%s", err, out)
	}

	// A watch streams a change made while it runs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := exec.CommandContext(ctx, "kubectl", "--kubeconfig="+kc, "get", "cm", "-w", "-n", "dev", "-o", "name")
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Stderr = os.Stderr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Process.Kill(); _ = w.Wait() }()
	lines := make(chan string, 16)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	waitLine(t, lines, "configmap/cm-1")
	if out, err := e.k.Kubectl(t, e.k.AdminKubeconfig, "-n", "dev", "create", "configmap", "cm-2"); err != nil {
		t.Fatalf("create cm-2: %v\n%s", err, out)
	}
	waitLine(t, lines, "configmap/cm-2")
	_ = w.Process.Kill() // the watch's event is written when it ends

	// Upgrades pass through, as bob: exec is an upgrade request, which the
	// apiserver refuses for bob (no pods/exec) before upgrading.
	out, err = e.k.Kubectl(t, e.k.AdminKubeconfig, "-n", "dev", "run", "p", "--image=busybox", "--restart=Never")
	if err != nil {
		t.Fatalf("create pod: %v\n%s", err, out)
	}
	out, err = e.k.Kubectl(t, kc, "-n", "dev", "exec", "p", "--", "true")
	if err == nil || !harness.Contains(out, `User "bob" cannot create resource "pods/exec"`) {
		t.Fatalf("exec should reach the apiserver as bob and be forbidden: %v\n%s", err, out)
	}

	// Every request is audited with its Kubernetes attributes (the events
	// are written just after each response: poll briefly).
	want := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	for len(want) < 5 && time.Now().Before(deadline) {
		want = kubeAuditKinds(t, e)
		time.Sleep(200 * time.Millisecond)
	}
	for _, k := range []string{"list dev", "list default 403", "watch", "whoami", "exec"} {
		if !want[k] {
			t.Errorf("no kube.request event for %s", k)
		}
	}
	if t.Failed() {
		for _, ev := range auditEvents(t, e.b, e.alice, "--action", "kube.request") {
			t.Logf("%s %v", ev.Reason, ev.Details)
		}
	}
}

func kubeAuditKinds(t *testing.T, e *kubeEnv) map[string]bool {
	want := map[string]bool{}
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", "kube.request") {
		d := ev.Details
		if ev.Actor != "bob" || ev.Target != "prod" {
			continue
		}
		switch {
		case d["verb"] == "list" && d["resource"] == "configmaps" && d["namespace"] == "dev" && d["status"] == "200":
			want["list dev"] = true
		case d["verb"] == "list" && d["resource"] == "configmaps" && d["namespace"] == "default" && d["status"] == "403":
			want["list default 403"] = true
		case d["verb"] == "watch" && d["resource"] == "configmaps" && d["namespace"] == "dev":
			want["watch"] = true
		case d["verb"] == "create" && d["resource"] == "selfsubjectreviews" && d["api_group"] == "authentication.k8s.io":
			want["whoami"] = true
		case d["verb"] == "create" && d["resource"] == "pods" && d["subresource"] == "exec" && d["status"] == "403":
			want["exec"] = true
		}
		if d["latency_ms"] == "" || d["bytes_out"] == "" || d["as_user"] != "bob" {
			t.Errorf("kube.request lacks latency, bytes or the impersonated user: %+v", ev)
		}
	}
	return want
}

func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the watch ended before %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("the watch did not show %q within 30 s", want)
		}
	}
}
