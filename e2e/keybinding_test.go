package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// CVE-2024-45337: the real OpenSSH client offers keys it cannot sign with
// (identity files whose private half is missing): first the attacker's own
// key, then the victim's. The server accepts both in the query phase. Then
// the client signs with the attacker's key, which x/crypto has cached. The
// identity must be the attacker's, never the victim's.
func TestIdentityIsBoundToTheVerifiedKeyOnly(t *testing.T) {
	b, alice := admin(t, "")
	mallory := harness.NewKey(t, t.TempDir(), "mallory")
	mustOK(t, b.SSH(alice, "users", "add", "mallory"), "users add")
	mustOK(t, b.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "mallory"}, Stdin: mallory.Public}), "keys add")

	// Public halves only: OpenSSH offers them, then fails to load the
	// private key and moves on without signing.
	pubOnly := func(k harness.Key, name string) string {
		dir := t.TempDir()
		p := filepath.Join(dir, name)
		data, _ := os.ReadFile(k.PubPath)
		if err := os.WriteFile(p+".pub", data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := b.SSHRun(harness.Run{
		Flags: []string{"-i", pubOnly(mallory, "m"), "-i", pubOnly(alice, "victim"), "-i", mallory.Path},
		Args:  []string{"whoami"},
	})
	mustOK(t, r, "whoami")
	if !strings.Contains(r.Stdout, "mallory") || strings.Contains(r.Stdout, "alice") || !strings.Contains(r.Stdout, mallory.Fingerprint) {
		t.Fatalf("identity bound to a key that was only offered:\n%s", r.Stdout)
	}
	// The victim's key was offered: the audit must show it was never the
	// authenticated one.
	for _, e := range auditEvents(t, b, alice, "--action", "auth.success") {
		if e.Details["fingerprint"] == alice.Fingerprint && e.Actor == "mallory" {
			t.Fatal("audit binds mallory to alice's key")
		}
	}
}
