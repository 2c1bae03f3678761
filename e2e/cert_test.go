package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// userCert signs k's public key with the CA at caPath (ssh-keygen -s) and
// places the certificate next to k, where ssh -i picks it up.
func userCert(t *testing.T, caPath string, k harness.Key, serial string, extra ...string) {
	t.Helper()
	_ = os.Remove(k.Path + "-cert.pub")
	args := append([]string{"-q", "-s", caPath, "-I", "id-" + serial, "-z", serial}, extra...)
	args = append(args, k.PubPath)
	if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
}

func TestUserCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "user_ca")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "user-ca", "-f", ca).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	caPub, err := os.ReadFile(ca + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	b, alice := admin(t, "user_ca_keys:\n  - "+strings.TrimSpace(string(caPub))+"\n")
	mustOK(t, b.SSH(alice, "users", "add", "carol"), "users add carol")
	k := harness.NewKey(t, t.TempDir(), "carol")

	// A valid certificate logs in as its principal.
	userCert(t, ca, k, "100", "-n", "carol", "-V", "-5m:+1h")
	w := parseWhoami(t, b.SSH(k, "whoami", "-o", "json"))
	if w.User != "carol" || w.Method != "cert" {
		t.Fatalf("whoami with a certificate: %+v", w)
	}
	// force-command replaces what the client asks for.
	userCert(t, ca, k, "104", "-n", "carol", "-V", "-5m:+1h", "-O", "force-command=whoami")
	r := b.SSH(k, "help")
	mustOK(t, r, "help under force-command")
	if !strings.Contains(r.Stdout, "carol") || strings.Contains(r.Stdout, "resources") {
		t.Fatalf("force-command=whoami did not replace `help`:\n%s", r.Stdout)
	}

	// A certificate without permit-port-forwarding may not forward; the
	// default (ssh-keygen grants it) may.
	userCert(t, ca, k, "105", "-n", "carol", "-V", "-5m:+1h", "-O", "no-port-forwarding")
	r = b.SSHRun(harness.Run{Key: &k, Flags: []string{"-W", "anything:22"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not permit port forwarding") {
		t.Fatalf("-W with a no-port-forwarding certificate: exit %d\n%s", r.Code, r.Stderr)
	}
	userCert(t, ca, k, "106", "-n", "carol", "-V", "-5m:+1h")
	r = b.SSHRun(harness.Run{Key: &k, Flags: []string{"-W", "anything:22"}, Options: []string{"LogLevel=INFO"}})
	if strings.Contains(r.Stderr, "does not permit port forwarding") || !strings.Contains(r.Stderr, "is not a Resource") {
		t.Fatalf("-W with a default certificate: exit %d\n%s", r.Code, r.Stderr)
	}

	// Refusals, each audited with its reason.
	cases := []struct {
		serial, why string
		opts        []string
	}{
		{"101", "expired", []string{"-n", "carol", "-V", "20200101:20200102"}},
		{"102", "revoked", []string{"-n", "carol", "-V", "-5m:+1h"}},
		{"103", "source-address", []string{"-n", "carol", "-V", "-5m:+1h", "-O", "source-address=10.9.8.7/32"}},
	}
	r = b.SSH(alice, "certs", "revoke", "102", "--reason", "'laptop lost'")
	mustOK(t, r, "certs revoke")
	for _, c := range cases {
		userCert(t, ca, k, c.serial, c.opts...)
		if r := b.SSH(k, "whoami"); r.Code == 0 {
			t.Errorf("certificate %s (%s) logged in", c.serial, c.why)
		}
	}
	refused := map[string]string{}
	perSerial := map[string]int{}
	for _, e := range auditEvents(t, b, alice, "--action", "auth.cert.refuse") {
		refused[e.Details["serial"]] = e.Reason
		perSerial[e.Details["serial"]]++
	}
	// One event per attempt: the refusal, with its reason; no second
	// auth.cert.refuse and no auth.fail for the same connection.
	for _, c := range cases {
		if perSerial[c.serial] != 1 {
			t.Errorf("certificate %s: %d auth.cert.refuse events for one attempt, want 1", c.serial, perSerial[c.serial])
		}
	}
	for _, e := range auditEvents(t, b, alice, "--action", "auth.fail") {
		if e.Actor == "carol" {
			t.Errorf("a refused certificate also wrote auth.fail: %+v", e)
		}
	}
	for _, c := range cases {
		if !strings.Contains(refused[c.serial], c.why) {
			t.Errorf("certificate %s: audit reason %q lacks %q", c.serial, refused[c.serial], c.why)
		}
	}
	var accepted bool
	for _, e := range auditEvents(t, b, alice, "--action", "auth.success") {
		accepted = accepted || (e.Actor == "carol" && e.Details["method"] == "cert" && e.Details["serial"] == "100")
	}
	if !accepted {
		t.Error("no auth.success with method cert and serial 100")
	}
}
