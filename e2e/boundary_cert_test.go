package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// certEnv: a bastion trusting a user CA made with ssh-keygen; alice is the
// admin, carol logs in with certificates only and has act on host-1, a
// Debian sshd that trusts the bastion's CA and logs, at DEBUG1, the
// options of every certificate it accepts ("cert: key options: pty
// user-rc ..."): that is how the onward certificate is inspected.
type certEnv struct {
	b     *harness.Bastion
	alice harness.Key
	carol harness.Key
	ca    string
	sshd  *harness.SSHD
}

func newCertEnv(t *testing.T) *certEnv {
	t.Helper()
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
	e := &certEnv{b: b, alice: alice, ca: ca, carol: harness.NewKey(t, t.TempDir(), "carol")}
	mustOK(t, b.SSH(alice, "users", "add", "carol"), "users add carol")
	r := b.SSH(alice, "ca")
	mustOK(t, r, "ca")
	// sshd keeps the first value of a keyword; a Match block may still
	// raise the level for the sessions it matches, which is all of them.
	e.sshd = harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(r.Stdout), Extra: "Match all\n  LogLevel DEBUG1\n"})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", e.sshd.Addr, "--login", "root"), "resources add host-1")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:carol"), "grant carol")
	return e
}

// cert gives carol a certificate with serial and the ssh-keygen -O options.
func (e *certEnv) cert(t *testing.T, serial string, opts ...string) {
	t.Helper()
	args := []string{"-n", "carol", "-V", "-5m:+1h"}
	for _, o := range opts {
		args = append(args, "-O", o)
	}
	userCert(t, e.ca, e.carol, serial, args...)
}

var keyOptionsRe = regexp.MustCompile(`(?m)^debug1: cert: key options:(.*)$`)

// onward runs r as carol and returns the options the target saw on the
// certificate the bastion signed for it.
func (e *certEnv) onward(t *testing.T, r harness.Run) (harness.Result, string) {
	t.Helper()
	before := len(e.sshd.Logs())
	r.Key = &e.carol
	res := e.b.SSHRun(r)
	var opts string
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs := e.sshd.Logs()[before:]
		if m := keyOptionsRe.FindAllStringSubmatch(logs, -1); m != nil && strings.Contains(logs, `Accepted certificate ID "bastion user=carol`) {
			opts = " " + strings.TrimSpace(m[len(m)-1][1]) + " "
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target logged no onward certificate (ssh exit %d, stderr %q):\n%s", res.Code, res.Stderr, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return res, opts
}

// Every extension a user certificate withholds is withheld on the bastion
// and on the certificate the bastion signs for the target; a default
// certificate (ssh-keygen grants all of them) keeps today's behaviour.
func TestBoundaryCertRestrictions(t *testing.T) {
	e := newCertEnv(t)
	tty := harness.Run{Flags: []string{"-tt"}, Args: []string{"host-1", "--", "tty"}}

	t.Run("default certificate", func(t *testing.T) {
		e.cert(t, "200")
		r, opts := e.onward(t, tty)
		mustOK(t, r, "ssh -tt bastion host-1 -- tty")
		if !strings.Contains(r.Stdout, "/dev/pts/") {
			t.Fatalf("no pty on the target: %q", r.Stdout)
		}
		if !harness.Contains(opts, " pty ", " user-rc ") || harness.Contains(opts, "agent") || strings.Contains(opts, "forwarding") {
			t.Fatalf("onward certificate options %q: want pty and user-rc, no forwarding", opts)
		}
	})

	t.Run("no-pty", func(t *testing.T) {
		e.cert(t, "201", "no-pty")
		// ssh -t: the bastion refuses the pty with a clear message; the
		// OpenSSH client then ends the session, as it does against an sshd
		// given the same certificate ("PTY allocation request failed").
		r := e.b.SSHRun(harness.Run{Key: &e.carol, Flags: []string{"-tt"}, Args: []string{"host-1", "--", "tty"}})
		if r.Code == 0 || strings.Contains(r.Stdout, "/dev/pts") {
			t.Fatalf("ssh -tt with no-pty: exit %d, stdout %q", r.Code, r.Stdout)
		}
		if !harness.Contains(r.Stderr, "a terminal (pty) refused", "certificate (serial 201)", "permit-pty") {
			t.Fatalf("no clear message on stderr: %q", r.Stderr)
		}
		// Without -t the command runs; the target has no pty, and the
		// onward certificate lacks permit-pty, so the target itself would
		// refuse one.
		r, opts := e.onward(t, harness.Run{Args: []string{"host-1", "--", "tty"}})
		if !strings.Contains(r.Stdout, "not a tty") {
			t.Fatalf("tty on the target printed %q (exit %d, stderr %q)", r.Stdout, r.Code, r.Stderr)
		}
		if strings.Contains(opts, " pty ") || !strings.Contains(opts, " user-rc ") {
			t.Fatalf("onward certificate options %q: want user-rc without pty", opts)
		}
		// A client that goes on after the refused pty (x/crypto does) runs
		// on the target without one.
		c := certSSHClient(t, e.b.Addr, e.carol)
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err == nil {
			t.Fatal("the bastion granted a pty to a no-pty certificate")
		}
		out, _ := s.CombinedOutput("host-1 -- tty")
		if !harness.Contains(string(out), "permit-pty", "not a tty") {
			t.Fatalf("after the refused pty: %q", out)
		}
		var refused bool
		for _, ev := range auditEvents(t, e.b, e.alice, "--action", "request.refuse") {
			refused = refused || (ev.Actor == "carol" && ev.Target == "pty-req" && ev.Reason == "certificate without permit-pty")
		}
		if !refused {
			t.Fatal("the refused pty-req is not audited")
		}
	})

	t.Run("no-user-rc", func(t *testing.T) {
		e.cert(t, "202", "no-user-rc")
		r, opts := e.onward(t, harness.Run{Args: []string{"host-1", "--", "true"}})
		mustOK(t, r, "ssh bastion host-1 -- true")
		if strings.Contains(opts, "user-rc") || !strings.Contains(opts, " pty ") {
			t.Fatalf("onward certificate options %q: want pty without user-rc", opts)
		}
	})

	t.Run("force-command runs on the host", func(t *testing.T) {
		e.cert(t, "206", "force-command=host-1 -- id -un")
		before := len(e.sshd.Logs())
		// The client asks for a shell; the certificate decides.
		r, _ := e.onward(t, harness.Run{Flags: []string{"-tt"}, Args: []string{"host-1"}})
		mustOK(t, r, "ssh -tt bastion host-1 under force-command")
		// (The target's debug log also reaches the pty: keep the last line.)
		if lines := strings.Fields(r.Stdout); len(lines) == 0 || lines[len(lines)-1] != "root" {
			t.Fatalf("forced command printed %q", r.Stdout)
		}
		if !strings.Contains(e.sshd.Logs()[before:], `forced command: "id -un"`) {
			t.Fatal("the onward certificate does not force the command on the target")
		}
	})

	t.Run("no-port-forwarding", func(t *testing.T) {
		e.cert(t, "203", "no-port-forwarding")
		r := e.b.SSHRun(harness.Run{Key: &e.carol, Flags: []string{"-W", "host-1:22"}, Options: []string{"LogLevel=INFO"}})
		if r.Code == 0 || !strings.Contains(r.Stderr, "does not permit port forwarding") {
			t.Fatalf("-W host-1:22 (carol has act) with no-port-forwarding: exit %d\n%s", r.Code, r.Stderr)
		}
	})

	t.Run("no-agent-forwarding", func(t *testing.T) {
		agent := harness.StartAgent(t)
		e.cert(t, "204", "no-agent-forwarding")
		r := e.b.SSHRun(harness.Run{Key: &e.carol, Agent: agent, Flags: []string{"-A"}, Args: []string{"whoami"}})
		mustOK(t, r, "ssh -A whoami")
		if !harness.Contains(r.Stderr, "agent forwarding refused", "certificate (serial 204)", "permit-agent-forwarding") {
			t.Fatalf("ssh -A with no-agent-forwarding: %q", r.Stderr)
		}
	})

	t.Run("no-x11-forwarding", func(t *testing.T) {
		// ssh -Y sends x11-req once DISPLAY is set, with fake cookie data
		// when no X server answers.
		t.Setenv("DISPLAY", "127.0.0.1:99")
		e.cert(t, "205", "no-x11-forwarding")
		r := e.b.SSHRun(harness.Run{Key: &e.carol, Flags: []string{"-Y"}, Args: []string{"whoami"}})
		mustOK(t, r, "ssh -Y whoami")
		if !harness.Contains(r.Stderr, "X11 forwarding refused", "certificate (serial 205)", "permit-X11-forwarding") {
			t.Fatalf("ssh -Y with no-x11-forwarding: %q", r.Stderr)
		}
	})

	t.Run("source-address", func(t *testing.T) {
		e.cert(t, "207", "source-address=127.0.0.1/32")
		mustOK(t, e.b.SSH(e.carol, "whoami"), "whoami from 127.0.0.1")
		if r := e.b.SSHRun(harness.Run{Key: &e.carol, Flags: []string{"-b", "127.0.0.2"}, Args: []string{"whoami"}}); r.Code == 0 {
			t.Fatal("source-address=127.0.0.1/32 logged in from 127.0.0.2")
		}
	})
}

// certSSHClient logs in with k and the certificate next to it, with
// x/crypto.
func certSSHClient(t *testing.T, addr string, k harness.Key) *gossh.Client {
	t.Helper()
	signer := loadSigner(t, k)
	raw, err := os.ReadFile(k.Path + "-cert.pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := gossh.NewCertSigner(pub.(*gossh.Certificate), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "carol", Auth: []gossh.AuthMethod{gossh.PublicKeys(cs)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A shell and a forward opened with a certificate valid for 20 s are cut
// at its ValidBefore, recorded as "certificate expired".
func TestBoundaryCertExpiryEndsSessions(t *testing.T) {
	e := newCertEnv(t)
	echo := harness.StartEcho(t)
	mustOK(t, e.b.SSH(e.alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7"), "resources add echo-svc")
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "resource:echo-svc#act@user:carol"), "grant echo-svc")
	userCert(t, e.ca, e.carol, "300", "-n", "carol", "-V", "-1m:+20s")

	var shellErr bytes.Buffer
	shell := exec.Command("ssh", append(e.b.SSHArgs(e.carol), "127.0.0.1", "host-1", "--", "sleep", "300")...)
	shell.Stderr = &shellErr
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shell.Process.Kill() })
	f := e.b.StartForward(e.carol, "echo-svc:7")
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echo(t, c, []byte("ping"))

	// Generous limits: the certificate ends 20 s after it was made.
	harness.WaitClosed(t, c, 90*time.Second)
	if err := waitExit(t, shell, 90*time.Second, "the shell after the certificate expired"); err == nil {
		t.Fatal("the shell ended successfully instead of being cut")
	}
	if !strings.Contains(shellErr.String(), "certificate expired") && !strings.Contains(shellErr.String(), "expired at") {
		t.Errorf("the shell's stderr does not say why it ended: %q", shellErr.String())
	}

	r := e.b.SSH(e.alice, "sessions", "--all", "-o", "json")
	mustOK(t, r, "sessions --all")
	var ss []store.Session
	if err := json.Unmarshal([]byte(r.Stdout), &ss); err != nil {
		t.Fatalf("sessions -o json: %v\n%s", err, r.Stdout)
	}
	kinds := map[string]string{}
	for _, s := range ss {
		if s.User == "carol" {
			kinds[s.Kind] = s.Reason
		}
	}
	if kinds["shell"] != "certificate expired" || kinds["forward"] != "certificate expired" {
		t.Fatalf("carol's sessions ended as %v, want both \"certificate expired\"", kinds)
	}
	seen := map[string]bool{}
	for _, ev := range auditEvents(t, e.b, e.alice) {
		if ev.Actor == "carol" && (ev.Action == "auth.cert.expired" || ev.Reason == "certificate expired") {
			seen[ev.Action] = true
		}
	}
	for _, a := range []string{"auth.cert.expired", "shell.close", "forward.close"} {
		if !seen[a] {
			t.Errorf("no %s event with the reason certificate expired (seen %v)", a, seen)
		}
	}
}
