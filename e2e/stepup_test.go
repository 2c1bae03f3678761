package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// stepUp runs `ssh bastion step-up` as key, approves the code it shows as
// login at the IdP, and returns what the command printed.
func stepUp(t *testing.T, b *harness.Bastion, o *harness.OIDC, key harness.Key, login string, args ...string) harness.Result {
	t.Helper()
	var out, errb harness.SyncBuffer
	cmd := exec.Command("ssh", append(append(b.SSHArgs(key), "127.0.0.1", "step-up"), args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "Waiting for you") {
		select {
		case err := <-done:
			t.Fatalf("step-up ended before showing a code (%v):\n%s%s", err, out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("step-up showed no code:\n%s", errb.String())
		}
	}
	prompt := errb.String()
	if !harness.Contains(prompt, o.VerificationURI, "Code:", "▀") {
		t.Fatalf("the step-up lacks the URL, the code or the QR code:\n%s", prompt)
	}
	if err := o.Approve(t, harness.UserCode(t, prompt), login); err != nil {
		t.Fatal(err)
	}
	res := harness.Result{}
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			res.Code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("step-up did not end after the approval:\n%s", errb.String())
	}
	res.Stdout, res.Stderr = out.String(), errb.String()
	return res
}

// viaW opens a forward with ssh -W as key, sends ping and returns the run.
func viaW(b *harness.Bastion, key harness.Key, options []string, spec string) harness.Result {
	return b.SSHRun(harness.Run{Key: &key, Flags: []string{"-W", spec}, Options: append(options, "LogLevel=INFO"), Stdin: "ping\n"})
}

// With the real OIDC provider (reporting acr and auth_time): a plain key
// is refused on a Resource that needs a step-up; `step-up` completes a
// device login inside the ssh session; the next forward, on a new
// connection, works; after step_up.remember it is refused again.
func TestStepUpWithTheIdentityProvider(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{ACR: "urn:bastion:mfa", AMR: []string{"pwd", "otp"}})
	const remember = 6 * time.Second
	b, alice := admin(t, fmt.Sprintf("oidc:\n  issuer: %s\n  client_id: bastion\n  username_claim: sub\nstep_up:\n  remember: %s\n", o.Issuer, remember))
	echoResource(t, b, alice)
	// The Resource itself asks for the step-up, with the acr it accepts.
	mustOK(t, b.SSH(alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", harness.StartEcho(t), "--port", "7",
		"--step-up", "10m,acr=urn:bastion:mfa"), "resources add --step-up")
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")

	r := viaW(b, bob, nil, "echo-svc:7")
	if r.Code == 0 || strings.Contains(r.Stdout, "ping") {
		t.Fatalf("a plain key reached a Resource that needs a step-up:\n%s", r.Stdout)
	}
	if !harness.Contains(r.Stderr, "step_up_required", "within 10m", "urn:bastion:mfa", "Resource echo-svc", "your last strong login: none", "publickey", "step-up") {
		t.Fatalf("the refusal lacks the reason code, the need, what bob has or the how-to:\n%s", r.Stderr)
	}

	// Another IdP account cannot step up for bob.
	if r := stepUp(t, b, o, bob, "alice"); r.Code == 0 || !strings.Contains(r.Stderr, `logged in "alice", but you are "bob"`) {
		t.Fatalf("a step-up as alice counted for bob: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := viaW(b, bob, nil, "echo-svc:7"); r.Code == 0 {
		t.Fatal("a refused step-up still let bob through")
	}

	before := time.Now().Add(-2 * time.Second)
	r = stepUp(t, b, o, bob, "bob", "echo-svc", "-o", "json")
	mustOK(t, r, "step-up")
	var res struct {
		Method   string    `json:"method"`
		AuthTime time.Time `json:"auth_time"`
		ACR      string    `json:"acr"`
		MFA      bool      `json:"mfa"`
		Until    time.Time `json:"until"`
		Scope    string    `json:"scope"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("step-up -o json: %v\n%s", err, r.Stdout)
	}
	if res.ACR != "urn:bastion:mfa" || !res.MFA || res.AuthTime.Before(before) || res.Scope != "key "+bob.Fingerprint {
		t.Fatalf("step-up result: %+v", res)
	}
	stepped := time.Now()

	// A new connection: the key carries the step-up.
	r = viaW(b, bob, nil, "echo-svc:7")
	mustOK(t, r, "forward after the step-up")
	if !strings.Contains(r.Stdout, "ping") {
		t.Fatalf("the forward after the step-up did not echo: %q", r.Stdout)
	}
	var w skWho
	r = b.SSH(bob, "whoami", "-o", "json")
	mustOK(t, r, "whoami")
	var full struct {
		StrongLogin struct {
			Method string `json:"method"`
			ACR    string `json:"acr"`
			Strong bool   `json:"strong"`
		} `json:"strong_login"`
	}
	_ = json.Unmarshal([]byte(r.Stdout), &w)
	_ = json.Unmarshal([]byte(r.Stdout), &full)
	if w.AuthMethod != "publickey" || full.StrongLogin.Method != "step-up" || full.StrongLogin.ACR != "urn:bastion:mfa" || !full.StrongLogin.Strong {
		t.Fatalf("whoami after the step-up: %s", r.Stdout)
	}

	// After step_up.remember the step-up counts no more.
	time.Sleep(time.Until(stepped.Add(remember + time.Second)))
	r = viaW(b, bob, nil, "echo-svc:7")
	if r.Code == 0 || !strings.Contains(r.Stderr, "step_up_required") {
		t.Fatalf("the step-up still counted after step_up.remember: exit %d\n%s", r.Code, r.Stderr)
	}

	var started, completed, denied int
	for _, e := range auditEvents(t, b, alice, "--actor", "bob") {
		switch {
		case e.Action == "stepup.start":
			started++
		case e.Action == "stepup.complete" && e.Details["acr"] == "urn:bastion:mfa" && e.Details["fingerprint"] == bob.Fingerprint:
			completed++
		case e.Action == "forward.deny" && e.Details["reason_code"] == "step_up_required":
			denied++
		}
	}
	if started != 2 || completed != 1 || denied < 3 {
		t.Fatalf("audit: %d stepup.start, %d stepup.complete, %d step_up_required denials", started, completed, denied)
	}
}

// skForward is harness StartForward for a security key: ssh -N -L through
// the software authenticator.
func skForward(t *testing.T, b *harness.Bastion, k harness.SKey, spec string) (string, *harness.SyncBuffer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := l.Addr().String()
	l.Close()
	args := append([]string{"-o", "LogLevel=INFO"}, b.SSHArgs(k.Key)...)
	args = append(args, "-o", "SecurityKeyProvider="+k.Provider, "-N", "-o", "ExitOnForwardFailure=yes", "-L", local+":"+spec, "127.0.0.1")
	cmd := exec.Command("ssh", args...)
	errb := &harness.SyncBuffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
		if harness.Listening(local) {
			return local, errb
		}
	}
	t.Fatalf("ssh -L with the security key did not listen: %s", errb.String())
	return "", nil
}

// Kube sessions that need a step-up: kubeconfig with a plain key is
// refused with step_up_required and the how-to; with a security key it
// works, and the session (with its token and tunnel) is cut as
// step_up_expired once it outlives that login.
func TestStepUpKubeTunnelOutlivesItsStepUp(t *testing.T) {
	k := harness.StartKube(t)
	const maxAge = 8 * time.Second
	b, alice := admin(t, kubeCredentialsYAML(k)+fmt.Sprintf("step_up:\n  sessions:\n    kube: %s\n", maxAge))
	bob := addUser(t, b, alice, "bob")
	sk := harness.NewSKey(t, t.TempDir(), "bob-sk", "ed25519-sk")
	mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: sk.Public}), "keys add sk")
	mustOK(t, b.SSH(alice, "resources", "add", "prod", "--kind", "kube", "--address", k.URL,
		"--credentials", "prod", "--kube-group", "act=bastion:prod-users"), "resources add prod")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#act@user:bob"), "grant bob")
	for _, args := range [][]string{
		{"create", "namespace", "dev"},
		{"-n", "dev", "create", "configmap", "cm-1", "--from-literal=a=b"},
		{"-n", "dev", "create", "role", "reader", "--verb=get,list,watch", "--resource=configmaps"},
		{"-n", "dev", "create", "rolebinding", "bob-reader", "--role=reader", "--user=bob"},
	} {
		if out, err := k.Kubectl(t, k.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}

	r := b.SSH(bob, "kubeconfig", "prod")
	if r.Code == 0 || !harness.Contains(r.Stderr, "step_up_required", "kube sessions", "publickey", "step-up", "security key") {
		t.Fatalf("kubeconfig with a plain key: exit %d\n%s", r.Code, r.Stderr)
	}

	local, tunnelErr := skForward(t, b, sk, "prod:443")
	port := local[strings.LastIndexByte(local, ':')+1:]
	r = b.SSHRun(harness.Run{Key: &sk.Key, Options: sk.Options(), Args: []string{"kubeconfig", "prod", "--port", port}})
	mustOK(t, r, "kubeconfig with the security key")
	loggedIn := time.Now()
	kc := filepath.Join(t.TempDir(), "kc")
	if err := os.WriteFile(kc, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	session := regexp.MustCompile(`session (s-[0-9a-f]+)`).FindStringSubmatch(r.Stdout)
	if session == nil {
		t.Fatalf("no session in the kubeconfig:\n%s", r.Stdout)
	}
	if out, err := k.Kubectl(t, kc, "-n", "dev", "get", "configmaps"); err != nil || !strings.Contains(out, "cm-1") {
		t.Fatalf("kubectl through the tunnel: %v\n%s", err, out)
	}

	// The login that satisfied the step-up gets too old: the session is
	// cut with its tunnel, and a new tunnel channel is refused with the
	// reason (ssh -L prints it).
	time.Sleep(time.Until(loggedIn.Add(maxAge + 2*time.Second)))
	out, err := k.Kubectl(t, kc, "-n", "dev", "get", "configmaps")
	if err == nil {
		t.Fatalf("kubectl still works after the step-up lapsed:\n%s", out)
	}
	if !harness.Contains(tunnelErr.String(), "step_up_required", "kube sessions") {
		t.Fatalf("the tunnel's new channel was not refused with the reason:\n%s", tunnelErr.String())
	}
	r = b.SSH(alice, "sessions", "--all", "-o", "json")
	mustOK(t, r, "sessions")
	var ss []store.Session
	if err := json.Unmarshal([]byte(r.Stdout), &ss); err != nil {
		t.Fatalf("sessions -o json: %v\n%s", err, r.Stdout)
	}
	var cut bool
	for _, s := range ss {
		cut = cut || (s.ID == session[1] && s.Reason == "step_up_expired" && s.State == "closed")
	}
	if !cut {
		t.Fatalf("session %s was not cut as step_up_expired: %s", session[1], r.Stdout)
	}
	var denied bool
	for _, e := range auditEvents(t, b, alice, "--actor", "bob") {
		denied = denied || (e.Action == "kube.deny" && e.Details["reason_code"] == "step_up_required")
	}
	if !denied {
		t.Fatal("no kube.deny with reason_code step_up_required in the audit log")
	}
}
