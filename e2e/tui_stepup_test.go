package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// The TUI marks a Resource that needs a step-up and says what satisfies
// it; enter runs the step-up there (URL, code and QR code, as `ssh
// bastion step-up` shows them), waits for the real identity provider, and
// goes on to the Resource: here a shell on the host.
func TestTUIStepUpThenShell(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{ACR: "urn:bastion:mfa", AMR: []string{"pwd", "otp"}})
	b, alice := admin(t, fmt.Sprintf("oidc:\n  issuer: %s\n  client_id: bastion\n  username_claim: sub\n", o.Issuer))
	ca := b.SSH(alice, "ca")
	mustOK(t, ca, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(ca.Stdout)})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root",
		"--step-up", "10m,acr=urn:bastion:mfa"), "resources add host-1 --step-up")
	mustOK(t, b.SSH(alice, "resources", "add", "host-2", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add host-2")
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant host-1")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-2#act@user:bob"), "grant host-2")

	argv := append([]string{"ssh", "-tt"}, b.SSHArgs(bob)...)
	pane := harness.StartPane(t, 120, 50, nil, append(argv, "127.0.0.1")...)
	s := pane.WaitText(20*time.Second, "host-1", "host-2", "NAME")
	// host-1 is marked, host-2 (no step-up) is not.
	if !harness.Contains(s, "🔑 host-1") || strings.Contains(s, "🔑 host-2") {
		t.Fatalf("the step-up mark is wrong:\n%s", s)
	}
	s = pane.WaitText(30*time.Second, "Needs a step-up", "within 10m", "urn:bastion:mfa", "last strong login: none", "step-up`.")

	pane.Send("Enter")
	s = pane.WaitText(20*time.Second, "Step up for host-1", o.VerificationURI, "Code:", "▀", "Waiting for you to approve")
	if err := o.Approve(t, harness.UserCode(t, s), "bob"); err != nil {
		t.Fatal(err)
	}
	// On to the host, with no second key press.
	pane.WaitText(30*time.Second, "connecting to host-1")
	time.Sleep(time.Second)
	pane.Type("echo stepped-$((40+2))")
	pane.Send("Enter")
	pane.WaitFor("the host's output", 20*time.Second, func(s string) bool { return hasLine(s, "stepped-42") })
	pane.Type("exit")
	pane.Send("Enter")
	s = pane.WaitText(20*time.Second, "NAME", "host-1", "host-2")
	// The step-up counts now: the mark is gone.
	s = pane.WaitFor("the mark gone", 10*time.Second, func(s string) bool { return !strings.Contains(s, "🔑") })
	pane.Send("q")
	if code := pane.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d:\n%s", code, pane.Screen())
	}

	var started, completed int
	for _, ev := range auditEvents(t, b, alice, "--action", "stepup.start") {
		if ev.Actor == "bob" && ev.Details["via"] == "tui" && ev.Details["resource"] == "host-1" && ev.Details["acr_values"] == "urn:bastion:mfa" {
			started++
		}
	}
	for _, ev := range auditEvents(t, b, alice, "--action", "stepup.complete") {
		if ev.Actor == "bob" && ev.Details["via"] == "tui" && ev.Details["acr"] == "urn:bastion:mfa" && ev.Details["fingerprint"] == bob.Fingerprint {
			completed++
		}
	}
	if started != 1 || completed != 1 {
		t.Fatalf("stepup.start %d, stepup.complete %d; want one each from the TUI", started, completed)
	}
	opened := 0
	for _, ev := range auditEvents(t, b, alice, "--action", "shell.open") {
		if ev.Actor == "bob" && ev.Target == "host-1" {
			opened++
		}
	}
	if opened != 1 {
		t.Fatalf("shell.open on host-1: %d", opened)
	}
	// And a new connection is let through too (step_up.remember).
	r := b.SSH(bob, "host-1", "--", "echo", "again")
	if r.Code != 0 || !strings.Contains(r.Stdout, "again") {
		t.Fatalf("a new connection after the TUI's step-up: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// A kube Resource that needs a step-up: its workloads list (as `pods`
// does), but enter on a pod steps up first, then opens the shell in it.
func TestTUIStepUpThenPodShell(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{ACR: "urn:bastion:mfa", AMR: []string{"pwd", "otp"}})
	n := harness.SharedKubeNode(t)
	ns := n.Namespace(t, "su")
	b, alice := admin(t, kubeCredentialsYAML(n.Kube)+fmt.Sprintf("oidc:\n  issuer: %s\n  client_id: bastion\n  username_claim: sub\n", o.Issuer))
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "resources", "add", "prod", "--kind", "kube", "--address", n.URL, "--credentials", "prod", "--step-up", "10m"), "resources add prod")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#act@user:bob"), "grant bob")
	for _, args := range [][]string{
		{"-n", ns, "create", "role", "shell", "--verb=get,list,create", "--resource=pods,services,pods/exec"},
		{"-n", ns, "create", "rolebinding", "bob-shell", "--role=shell", "--user=bob"},
	} {
		if out, err := n.Kubectl(t, n.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	n.RunPod(t, ns, "web", map[string]string{"tier": "web"}, "", "sh", "-c", "exec sleep 3600")

	argv := append([]string{"ssh", "-tt"}, b.SSHArgs(bob)...)
	pane := harness.StartPane(t, 120, 50, nil, append(argv, "127.0.0.1")...)
	pane.WaitText(20*time.Second, "🔑 prod", "Needs a step-up", "within 10m")
	pane.Send("Right") // lists without a step-up, as `pods` does
	pane.WaitText(20*time.Second, "may not list namespaces")
	pane.Send("n")
	pane.Type(ns)
	pane.Send("Enter")
	pane.WaitText(20*time.Second, "└ "+ns, "web", "Running")
	pane.Send("Down")
	pane.Send("Down")
	pane.Send("Down")
	pane.WaitText(30*time.Second, "enter for a shell in web")
	pane.Send("Enter")
	s := pane.WaitText(20*time.Second, "Step up for prod", "Code:", "Waiting for you to approve")
	if err := o.Approve(t, harness.UserCode(t, s), "bob"); err != nil {
		t.Fatal(err)
	}
	pane.WaitText(30*time.Second, "shell in pod "+ns+"/web")
	time.Sleep(time.Second)
	pane.Type("echo pod-$((40+2))")
	pane.Send("Enter")
	pane.WaitFor("the pod's output", 20*time.Second, func(s string) bool { return hasLine(s, "pod-42") })
	pane.Type("exit")
	pane.Send("Enter")
	s = pane.WaitText(20*time.Second, "NAME", "└ "+ns)
	if strings.Contains(s, "🔑") {
		t.Fatalf("still marked after the step-up:\n%s", s)
	}
	pane.Send("q")
	if code := pane.ExitCode(20 * time.Second); code != 0 {
		t.Fatalf("q: ssh exited %d:\n%s", code, pane.Screen())
	}
	var opened int
	for _, ev := range auditEvents(t, b, alice, "--action", "shell.open") {
		if ev.Actor == "bob" && ev.Target == "prod" && ev.Details["pod"] == "web" {
			opened++
		}
	}
	if opened != 1 {
		t.Fatalf("shell.open in the pod: %d", opened)
	}
}
