package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// certJumpConfig is what a user pastes: the `config` blocks of the ssh
// Resources, with the certificate at certFile instead of under ~/.ssh, and
// the test's own identity and known hosts.
func certJumpConfig(t *testing.T, b *harness.Bastion, key harness.Key, configOut, certFile string) string {
	t.Helper()
	dir := t.TempDir()
	var blocks []string
	for _, block := range strings.Split(configOut, "\n\n") {
		if strings.Contains(block, "ProxyJump") {
			blocks = append(blocks, strings.ReplaceAll(block, "~/.ssh/id_ed25519-cert.pub", certFile))
		}
	}
	common := fmt.Sprintf("Host bastion\n  HostName 127.0.0.1\n  Port %s\n  HostKeyAlias bastion-under-test\n  UserKnownHostsFile %s\n"+
		"Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  StrictHostKeyChecking accept-new\n"+
		"  UserKnownHostsFile %s\n  LogLevel ERROR\n  ConnectTimeout 20\n", b.Port, b.KnownHosts, key.Path, filepath.Join(dir, "known_hosts_targets"))
	path := filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(path, []byte(strings.Join(blocks, "\n\n")+"\n\n"+common), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	keyIDRe  = regexp.MustCompile(`Key ID: "(bastion:bob:(\d+))"`)
	serialRe = regexp.MustCompile(`Serial: (\d+)`)
	validRe  = regexp.MustCompile(`Valid: from (\S+) to (\S+)`)
)

// A target that trusts only the bastion's user CA, not bob's key: plain
// `ssh web-1` through the generated config works with the certificate
// `cert` signed for the key bob logged in with, and fails without it.
func TestCertProxyJumpToATargetTrustingOnlyTheCA(t *testing.T) {
	b, alice, bob := withBob(t)
	r := b.SSH(bob, "ca")
	mustOK(t, r, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(r.Stdout)})
	mustOK(t, b.SSH(alice, "resources", "add", "web-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add web-1")
	// web-2: bob may see it, not act on it; hidden: bob may not see it.
	mustOK(t, b.SSH(alice, "resources", "add", "web-2", "--kind", "ssh", "--address", sshd.Addr, "--login", "daemon"), "resources add web-2")
	mustOK(t, b.SSH(alice, "resources", "add", "hidden", "--kind", "ssh", "--address", sshd.Addr, "--login", "bin"), "resources add hidden")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:web-1#act@user:bob"), "grant act web-1")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:web-2#view@user:bob"), "grant view web-2")

	// The real ssh, as the user types it: ssh bastion cert > FILE.
	dir := t.TempDir()
	certFile := filepath.Join(dir, "id_ed25519-cert.pub")
	f, err := os.Create(certFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh", append(b.SSHArgs(bob), "127.0.0.1", "cert")...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	err = cmd.Run()
	f.Close()
	if err != nil {
		t.Fatalf("ssh bastion cert: %v\n%s", err, stderr.String())
	}

	// ssh-keygen reads it: bob's key, key id and serial, root only (not
	// web-2's or hidden's login), valid ten minutes from a minute ago.
	out, err := exec.Command("ssh-keygen", "-L", "-f", certFile).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	listing := string(out)
	m, sm, vm := keyIDRe.FindStringSubmatch(listing), serialRe.FindStringSubmatch(listing), validRe.FindStringSubmatch(listing)
	if m == nil || sm == nil || vm == nil || m[2] != sm[1] || !strings.Contains(listing, "user certificate") {
		t.Fatalf("ssh-keygen -L:\n%s", listing)
	}
	keyID, serial := m[1], sm[1]
	principals := listing[strings.Index(listing, "Principals:"):strings.Index(listing, "Critical Options:")]
	if !strings.Contains(principals, "root") || strings.Contains(principals, "daemon") || strings.Contains(principals, "bin") {
		t.Fatalf("principals: %s", principals)
	}
	if !strings.Contains(listing, "permit-pty") || strings.Contains(listing, "permit-port-forwarding") {
		t.Fatalf("extensions:\n%s", listing)
	}
	from, err1 := time.ParseInLocation("2006-01-02T15:04:05", vm[1], time.Local)
	to, err2 := time.ParseInLocation("2006-01-02T15:04:05", vm[2], time.Local)
	if err1 != nil || err2 != nil || !from.Before(time.Now()) || to.Sub(from) != 11*time.Minute {
		t.Fatalf("validity %s to %s (%v %v), want 10m from a minute ago", vm[1], vm[2], err1, err2)
	}
	if !strings.Contains(stderr.String(), "serial "+serial) {
		t.Errorf("cert's stderr does not name the serial: %q", stderr.String())
	}

	// The `config` blocks, pointed at that certificate: plain ssh web-1.
	r = b.SSH(bob, "config")
	mustOK(t, r, "config")
	if !harness.Contains(r.Stdout, "Host web-1", "ProxyJump bastion", "CertificateFile ~/.ssh/id_ed25519-cert.pub",
		"ssh bastion cert > ~/.ssh/id_ed25519-cert.pub") || strings.Contains(r.Stdout, "Host web-2") {
		t.Fatalf("config:\n%s", r.Stdout)
	}
	withCert := certJumpConfig(t, b, bob, r.Stdout, certFile)
	out, err = exec.Command("ssh", "-F", withCert, "web-1", "echo", "via-bastion-cert").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "via-bastion-cert" {
		t.Fatalf("ssh web-1 with the certificate: %v\n%s\nsshd: %s", err, out, sshd.Logs())
	}
	// Without it, the same ssh is refused: the certificate is what grants.
	without := certJumpConfig(t, b, bob, r.Stdout, filepath.Join(dir, "missing-cert.pub"))
	out, err = exec.Command("ssh", "-F", without, "web-1", "echo", "via-bastion-cert").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("ssh web-1 without the certificate: %v\n%s", err, out)
	}

	// Audited before it was printed, with its serial and key id.
	var issued bool
	for _, e := range auditEvents(t, b, alice, "--action", "cert.issue") {
		if e.Actor == "bob" && e.Details["serial"] == serial && e.Details["key_id"] == keyID && e.Details["principals"] == "root" {
			issued = true
		}
	}
	if !issued {
		t.Fatalf("no cert.issue event for serial %s", serial)
	}

	// Where ssh looks by default (KEY-cert.pub), the certificate is offered
	// to the bastion too, which does not trust its own CA: the key still
	// logs in.
	if err := os.Rename(certFile, bob.Path+"-cert.pub"); err != nil {
		t.Fatal(err)
	}
	mustOK(t, b.SSH(bob, "whoami"), "whoami with the bastion's certificate beside the key")

	// -o json, for scripts.
	r = b.SSH(bob, "cert", "web-1", "--ttl", "5m", "-o", "json")
	mustOK(t, r, "cert -o json")
	var got struct {
		Serial      uint64   `json:"serial"`
		KeyID       string   `json:"key_id"`
		Principals  []string `json:"principals"`
		ValidBefore string   `json:"valid_before"`
		Certificate string   `json:"certificate"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil || got.Serial == 0 || got.KeyID != fmt.Sprintf("bastion:bob:%d", got.Serial) ||
		len(got.Principals) != 1 || got.Principals[0] != "root" || !strings.HasPrefix(got.Certificate, "ssh-ed25519-cert-v01@openssh.com ") {
		t.Fatalf("cert -o json: %v\n%s", err, r.Stdout)
	}
	r = b.SSH(bob, "config", "-o", "json")
	mustOK(t, r, "config -o json")
	if !harness.Contains(r.Stdout, `"name": "web-1"`, `"proxy_jump": "bastion"`, `"certificate_file": "~/.ssh/id_ed25519-cert.pub"`) {
		t.Fatalf("config -o json:\n%s", r.Stdout)
	}
}

// No principal for a Resource bob may not act on; one he may not even
// see is refused as if it did not exist; the cap on --ttl holds.
func TestCertRefusesWhatIsNotGranted(t *testing.T) {
	b, alice, bob := withBob(t)
	mustOK(t, b.SSH(alice, "resources", "add", "web-2", "--kind", "ssh", "--address", "127.0.0.1:1", "--login", "daemon"), "resources add web-2")
	mustOK(t, b.SSH(alice, "resources", "add", "hidden", "--kind", "ssh", "--address", "127.0.0.1:1", "--login", "bin"), "resources add hidden")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:web-2#view@user:bob"), "grant view web-2")

	r := b.SSH(bob, "cert", "web-2")
	if r.Code == 0 || !harness.Contains(r.Stderr, "user:bob lacks act on resource:web-2", "request create web-2") || r.Stdout != "" {
		t.Fatalf("cert web-2 (view only): exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	hidden, missing := b.SSH(bob, "cert", "hidden"), b.SSH(bob, "cert", "no-such")
	if hidden.Code == 0 || missing.Code == 0 ||
		strings.ReplaceAll(hidden.Stderr, "hidden", "X") != strings.ReplaceAll(missing.Stderr, "no-such", "X") {
		t.Fatalf("hidden %q vs missing %q: want the same refusal", hidden.Stderr, missing.Stderr)
	}
	r = b.SSH(bob, "cert")
	if r.Code == 0 || !strings.Contains(r.Stderr, "may act on no ssh Resource") || r.Stdout != "" {
		t.Fatalf("cert with nothing to act on: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	r = b.SSH(alice, "cert", "web-2", "--ttl", "2h")
	if r.Code == 0 || !strings.Contains(r.Stderr, "above the cap of 1h0m0s (ssh_certificates.max_ttl)") || r.Stdout != "" {
		t.Fatalf("--ttl 2h: exit %d %q %q", r.Code, r.Stdout, r.Stderr)
	}
	// Logins without a key (device flow) are refused in the unit tests;
	// here: bob's refusals were audited.
	var denied int
	for _, e := range auditEvents(t, b, alice, "--action", "command.deny") {
		if e.Actor == "bob" && strings.HasPrefix(e.Target, "cert") {
			denied++
		}
	}
	if denied < 3 {
		t.Fatalf("%d cert refusals audited, want 3 or more", denied)
	}
}
