package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// skWhoami logs in with a security key through the software authenticator
// (the real ssh, ssh-sk-helper and the provider) and runs whoami -o json.
func skWhoami(b *harness.Bastion, k harness.SKey) harness.Result {
	return b.SSHRun(harness.Run{Key: &k.Key, Options: append(k.Options(), "LogLevel=INFO"), Args: []string{"whoami", "-o", "json"}})
}

type skWho struct {
	User       string    `json:"user"`
	Method     string    `json:"method"`
	AuthMethod string    `json:"auth_method"`
	AuthTime   time.Time `json:"auth_time"`
	ACR        string    `json:"acr"`
	MFA        bool      `json:"mfa"`
	AMR        []string  `json:"amr"`
}

// A FIDO2 login (ed25519-sk and ecdsa-sk, enrolled with the real
// ssh-keygen) is a strong login; a signature without user presence is
// refused unless the key is registered with --no-touch-required, as sshd
// does.
func TestSecurityKeyTouchRequired(t *testing.T) {
	b, alice := admin(t, "")
	mustOK(t, b.SSH(alice, "users", "add", "bob"), "users add bob")
	for _, typ := range []string{"ed25519-sk", "ecdsa-sk"} {
		t.Run(typ, func(t *testing.T) {
			k := harness.NewSKey(t, t.TempDir(), "bob-"+typ, typ)
			mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: k.Public}), "keys add")

			before := time.Now().Add(-time.Second)
			r := skWhoami(b, k)
			mustOK(t, r, "whoami with the security key")
			var w skWho
			if err := json.Unmarshal([]byte(r.Stdout), &w); err != nil {
				t.Fatalf("whoami -o json: %v\n%s", err, r.Stdout)
			}
			if w.User != "bob" || w.Method != "sk" || w.AuthMethod != "sk" || w.ACR != "sk" || !w.MFA || w.AuthTime.Before(before) {
				t.Fatalf("whoami after a security-key login: %+v", w)
			}

			// No touch: x/crypto refuses the signature, the login fails.
			k.SetPresence(t, false)
			if r := skWhoami(b, k); r.Code == 0 {
				t.Fatalf("a signature without user presence logged in:\n%s", r.Stdout)
			}
			// Registered with --no-touch-required (the key was made without
			// that option, so only the server's waiver lets it in).
			mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob", "--no-touch-required"}, Stdin: k.Public}), "keys add --no-touch-required")
			mustOK(t, skWhoami(b, k), "whoami without a touch, key registered --no-touch-required")
			// The waiver is the key's alone: registered again without it,
			// the same untouched signature is refused again.
			mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: k.Public}), "keys add (again, with touch)")
			if r := skWhoami(b, k); r.Code == 0 {
				t.Fatal("the waiver outlived the registration that granted it")
			}
			k.SetPresence(t, true)
			mustOK(t, skWhoami(b, k), "touched again")
		})
	}
	var successes, fails int
	for _, e := range auditEvents(t, b, alice) {
		switch {
		case e.Action == "auth.success" && e.Actor == "bob" && e.Details["method"] == "sk" && e.Details["acr"] == "sk" && e.Details["mfa"] == "true":
			successes++
		case e.Action == "auth.fail" && strings.Contains(e.Reason, "user presence") && strings.Contains(e.Reason, "--no-touch-required"):
			fails++
		}
	}
	if successes < 6 || fails < 4 {
		t.Fatalf("audit: %d sk logins and %d failures, want >= 6 and >= 4", successes, fails)
	}
}

// --flags that only mean something on security keys are refused on other
// keys; --verify-required is kept, and its logins are refused with the
// reason until the bastion can read the user-verification flag (see
// authn.ErrVerifyUnsupported): a registered requirement is never dropped
// silently.
func TestSecurityKeyVerifyRequired(t *testing.T) {
	b, alice := admin(t, "")
	mustOK(t, b.SSH(alice, "users", "add", "bob"), "users add bob")
	plain := harness.NewKey(t, t.TempDir(), "plain")
	r := b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob", "--verify-required"}, Stdin: plain.Public})
	if r.Code == 0 || !strings.Contains(r.Stderr, "security keys") {
		t.Fatalf("--verify-required on an ed25519 key: exit %d\n%s", r.Code, r.Stderr)
	}
	k := harness.NewSKey(t, t.TempDir(), "bob-sk", "ed25519-sk")
	r = b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob", "--verify-required"}, Stdin: k.Public})
	mustOK(t, r, "keys add --verify-required")
	if !strings.Contains(r.Stderr, "verify-required") {
		t.Errorf("keys add --verify-required does not say what it means here:\n%s", r.Stderr)
	}
	for _, uv := range []bool{false, true} {
		k.SetVerification(t, uv)
		r := skWhoami(b, k)
		if r.Code == 0 {
			t.Fatalf("a --verify-required key logged in (uv %v)", uv)
		}
		if !strings.Contains(r.Stderr, "user-verification") {
			t.Errorf("the refusal does not say why (uv %v):\n%s", uv, r.Stderr)
		}
	}
}

// A security-key login satisfies a tcp step-up that a plain key does not;
// the refusal carries the reason code and the how-to, in the message and
// in the audit log.
func TestSecurityKeySatisfiesStepUp(t *testing.T) {
	b, alice := admin(t, "step_up:\n  sessions:\n    tcp: 10m\n")
	echoResource(t, b, alice)
	bob := addUser(t, b, alice, "bob")
	k := harness.NewSKey(t, t.TempDir(), "bob-sk", "ed25519-sk")
	mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: k.Public}), "keys add sk")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")

	r := b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-W", "echo-svc:7"}, Options: []string{"LogLevel=INFO"}, Stdin: "ping\n"})
	if r.Code == 0 || strings.Contains(r.Stdout, "ping") {
		t.Fatalf("a plain key reached a Resource that needs a step-up:\n%s", r.Stdout)
	}
	if !harness.Contains(r.Stderr, "step_up_required", "within 10m", "tcp sessions", "publickey", "step-up", "security key") {
		t.Fatalf("the refusal lacks the reason code, the need or the how-to:\n%s", r.Stderr)
	}

	r = b.SSHRun(harness.Run{Key: &k.Key, Flags: []string{"-W", "echo-svc:7"}, Options: k.Options(), Stdin: "ping\n"})
	mustOK(t, r, "forward with the security key")
	if !strings.Contains(r.Stdout, "ping") {
		t.Fatalf("the forward with the security key did not echo: %q", r.Stdout)
	}
	var denied, opened bool
	for _, e := range auditEvents(t, b, alice, "--actor", "bob") {
		denied = denied || (e.Action == "forward.deny" && e.Details["reason_code"] == "step_up_required" && e.Details["have_method"] == "publickey")
		opened = opened || e.Action == "forward.open"
	}
	if !denied || !opened {
		t.Fatalf("audit: step_up_required denial %v, forward.open %v", denied, opened)
	}
}
