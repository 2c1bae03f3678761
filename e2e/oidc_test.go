package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

func oidcBastion(t *testing.T, o *harness.OIDC) (*harness.Bastion, harness.Key) {
	t.Helper()
	return admin(t, fmt.Sprintf("oidc:\n  issuer: %s\n  client_id: bastion\n", o.Issuer))
}

// deviceLogin runs `ssh ... whoami -o json` and approves the shown code as
// login at the IdP, as a person would.
func deviceLogin(t *testing.T, b *harness.Bastion, o *harness.OIDC, key *harness.Key, options []string, login string) harness.Result {
	t.Helper()
	x := b.SSHInteractive(key, options, "whoami", "-o", "json")
	prompt := x.Prompt(t, 0)
	if !harness.Contains(prompt, o.VerificationURI, "Code:", "▀") {
		t.Fatalf("the prompt lacks the URL, the code or the QR code:\n%s", prompt)
	}
	if err := o.Approve(t, harness.UserCode(t, prompt), login); err != nil {
		t.Fatal(err)
	}
	x.Answer(t, 0, "")
	return x.Wait(t)
}

type whoami struct {
	User   string   `json:"user"`
	Groups []string `json:"groups"`
	Method string   `json:"method"`
}

func parseWhoami(t *testing.T, r harness.Result) whoami {
	t.Helper()
	mustOK(t, r, "whoami")
	var w whoami
	if err := json.Unmarshal([]byte(r.Stdout), &w); err != nil {
		t.Fatalf("whoami -o json: %v\n%s", err, r.Stdout)
	}
	return w
}

func TestOIDCDeviceLoginRemembersTheKey(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{})
	b, alice := oidcBastion(t, o)
	k1 := harness.NewKey(t, t.TempDir(), "fresh")

	w := parseWhoami(t, deviceLogin(t, b, o, &k1, nil, "alice"))
	if w.User != "alice@example.com" || w.Method != "oidc" || strings.Join(w.Groups, ",") != "devs,ops" {
		t.Fatalf("whoami after the device login: %+v", w)
	}
	// The same key now logs in without a prompt (BatchMode: none possible).
	w = parseWhoami(t, b.SSH(k1, "whoami", "-o", "json"))
	if w.User != "alice@example.com" {
		t.Fatalf("second login with the bound key: %+v", w)
	}
	// keys list shows the binding with its expiry; keys rm revokes it.
	r := b.SSH(alice, "keys", "list", "alice@example.com")
	mustOK(t, r, "keys list")
	if !harness.Contains(r.Stdout, k1.Fingerprint, "oidc") || !strings.Contains(r.Stdout, "20") {
		t.Fatalf("keys list lacks the bound key with its expiry:\n%s", r.Stdout)
	}
	// Another key prompts again.
	k2 := harness.NewKey(t, t.TempDir(), "other")
	x := b.SSHInteractive(&k2, nil, "whoami")
	x.Prompt(t, 0)
	x.Answer(t, 0, "") // not approved: polling goes on until the test ends
	mustOK(t, b.SSH(alice, "keys", "rm", k1.Fingerprint), "keys rm")
	if r := b.SSH(k1, "whoami"); r.Code == 0 {
		t.Fatal("the removed key still logs in")
	}

	var bound, completed bool
	for _, e := range auditEvents(t, b, alice, "--action", "oidc.") {
		bound = bound || (e.Action == "oidc.key.bind" && e.Details["fingerprint"] == k1.Fingerprint)
		completed = completed || (e.Action == "oidc.device.complete" && e.Actor == "alice@example.com")
	}
	if !bound || !completed {
		t.Fatalf("audit lacks oidc.key.bind (%v) or oidc.device.complete (%v)", bound, completed)
	}
}

// A client without any key logs in through the device flow; nothing is
// bound.
func TestOIDCDeviceLoginWithoutKey(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{})
	b, alice := oidcBastion(t, o)
	w := parseWhoami(t, deviceLogin(t, b, o, nil, []string{"PubkeyAuthentication=no"}, "bob"))
	if w.User != "bob@example.com" || w.Method != "oidc" {
		t.Fatalf("whoami: %+v", w)
	}
	r := b.SSH(alice, "keys", "list", "bob@example.com", "-o", "json")
	mustOK(t, r, "keys list")
	if strings.Contains(r.Stdout, "SHA256:") {
		t.Fatalf("a key was bound for a keyless login:\n%s", r.Stdout)
	}
}

// Denied and expired codes each end the login with a clear message.
func TestOIDCDeniedAndExpired(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{})
	b, alice := oidcBastion(t, o)
	k := harness.NewKey(t, t.TempDir(), "k")

	x := b.SSHInteractive(&k, nil, "whoami")
	prompt := x.Prompt(t, 0)
	if err := o.Deny(t, harness.UserCode(t, prompt), "mallory"); err != nil {
		t.Fatal(err)
	}
	x.Answer(t, 0, "")
	r := x.Wait(t)
	if r.Code == 0 || !strings.Contains(r.Stderr, "denied at the identity provider") {
		t.Fatalf("denied login: exit %d\n%s", r.Code, r.Stderr)
	}

	if strings.Count(r.Stderr, "denied at the identity provider") != 1 {
		t.Fatalf("the reason should show once:\n%s", r.Stderr)
	}

	// Codes of this provider live 6 s.
	o2 := harness.StartOIDC(t, harness.OIDCOptions{DeviceTTL: 6 * time.Second})
	b2, alice2 := oidcBastion(t, o2)
	x = b2.SSHInteractive(&k, nil, "whoami")
	x.Prompt(t, 0)
	// A person presses Enter without approving (later than a program
	// would: an answer within 1.5 s is taken as a client without a
	// terminal); the code expires.
	time.Sleep(2 * time.Second)
	x.Answer(t, 0, "")
	r = x.Wait(t)
	if r.Code == 0 || !strings.Contains(r.Stderr, "expired") {
		t.Fatalf("expired login: exit %d\n%s", r.Code, r.Stderr)
	}
	want := map[string]bool{}
	for _, e := range append(auditEvents(t, b, alice, "--action", "oidc.device."), auditEvents(t, b2, alice2, "--action", "oidc.device.")...) {
		want[e.Action] = true
	}
	if !want["oidc.device.deny"] || !want["oidc.device.expire"] {
		t.Fatalf("audit: %v", want)
	}
	if r := b.SSH(alice, "keys", "list", "-o", "json"); strings.Contains(r.Stdout, k.Fingerprint) {
		t.Fatal("a denied or expired login bound the key")
	}
}
