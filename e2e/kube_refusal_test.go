package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// Without act there is neither a kubeconfig nor a tunnel, and both say why
// and how to ask.
func TestKubeRefusedWithoutAct(t *testing.T) {
	e := kubeSetup(t)
	// carol may see prod but not use it (without view, both refusals
	// read as for a name that is no Resource).
	r := e.b.SSH(e.carol, "kubeconfig", "prod")
	if r.Code == 0 || !strings.Contains(r.Stderr, `"prod" is not a kube Resource`) {
		t.Fatalf("kubeconfig without view: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "resource:prod#view@user:carol"), "grant view")
	r = e.b.SSH(e.carol, "kubeconfig", "prod")
	if r.Code == 0 || !harness.Contains(r.Stderr, "user:carol lacks act on resource:prod", "request create prod") || strings.Contains(r.Stdout, "token") {
		t.Fatalf("kubeconfig without act: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = e.b.SSHRun(harness.Run{Key: &e.carol, Flags: []string{"-W", "prod:443"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !harness.Contains(r.Stderr, "prod:443 refused", "user:carol lacks act on resource:prod") {
		t.Fatalf("tunnel without act: exit %d\n%s", r.Code, r.Stderr)
	}
}

// A token works only on its owner's tunnel, and only while its session
// lives: another user's token, an unknown one, a revoked one and an
// expired one each get a 401 that kubectl prints with the reason.
func TestKubeTokenBoundToUserAndSession(t *testing.T) {
	e := kubeSetup(t)
	kc, session := e.tunnel(t, e.bob, "prod")
	if out, err := e.k.Kubectl(t, kc, "-n", "dev", "get", "cm"); err != nil {
		t.Fatalf("bob's own tunnel: %v\n%s", err, out)
	}

	// alice (an admin, so she may act on prod) opens a tunnel; bob's
	// kubeconfig pointed at it is refused: reaching a forwarded port is not
	// enough.
	aliceFwd := e.b.StartForward(e.alice, "prod:443")
	out, err := e.k.Kubectl(t, kc, "--server=https://"+aliceFwd.Local, "-n", "dev", "get", "cm")
	if err == nil || !harness.Contains(out, "You must be logged in to the server", "issued to another user, not to alice") {
		t.Fatalf("bob token on alice tunnel: %v\n%q", err, out)
	}
	out, err = e.k.Kubectl(t, kc, "--token=sbk_forged", "-n", "dev", "get", "cm")
	if err == nil || !harness.Contains(out, "unknown token", "kubeconfig prod") {
		t.Fatalf("forged token: %v\n%s", err, out)
	}

	// Revocation ends the token and cuts a live watch.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := exec.CommandContext(ctx, "kubectl", "--kubeconfig="+kc, "get", "cm", "-w", "-n", "dev")
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	waitForKubeRequest(t, e, "watch")
	mustOK(t, e.b.SSH(e.bob, "sessions", "kill", session), "sessions kill")
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the watch still runs 20 s after its session was revoked")
	}
	out, err = e.k.Kubectl(t, kc, "-n", "dev", "get", "cm")
	if err == nil || !harness.Contains(out, "You must be logged in to the server", "was revoked", session, "kubeconfig prod") {
		t.Fatalf("revoked token: %v\n%s", err, out)
	}

	// Expiry: a Resource whose sessions last 2 s.
	mustOK(t, e.b.SSH(e.alice, "resources", "add", "prod-short", "--kind", "kube", "--address", e.k.URL,
		"--credentials", "prod", "--ttl", "2s"), "resources add prod-short")
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "resource:prod-short#act@user:bob"), "grant prod-short")
	kc2, s2 := e.tunnel(t, e.bob, "prod-short")
	time.Sleep(3 * time.Second)
	out, err = e.k.Kubectl(t, kc2, "-n", "dev", "get", "cm")
	if err == nil || !harness.Contains(out, "You must be logged in to the server", "expired", s2) {
		t.Fatalf("expired token: %v\n%s", err, out)
	}
}

// waitForKubeRequest waits until a kube.request with verb has started:
// a watch is audited when it ends, so this watches the session list
// instead, through the audit of its preceding list.
func waitForKubeRequest(t *testing.T, e *kubeEnv, verb string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, ev := range auditEvents(t, e.b, e.alice, "--action", "kube.request") {
			// kubectl get -w lists first, then watches on at once.
			if ev.Details["verb"] == "list" && ev.Details["namespace"] == "dev" && strings.Contains(ev.Details["path"], "configmaps") {
				time.Sleep(500 * time.Millisecond)
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kubectl did not start its %s", verb)
}
