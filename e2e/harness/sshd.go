package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SSHDOptions configure a Debian OpenSSH sshd target.
type SSHDOptions struct {
	// TrustedUserCAKeys is an authorized_keys-style line of a user CA the
	// target trusts (the bastion's, for shells and sftp).
	TrustedUserCAKeys string
	// AuthorizedKeys are public key lines accepted for every user.
	AuthorizedKeys []string
	// ForceCommand, if set, is run for every session (e.g. "true" for the
	// connection benchmark).
	ForceCommand string
	Extra        string // extra sshd_config lines
}

// SSHD is a running sshd on a loopback port.
type SSHD struct {
	Addr    string
	Port    string
	Dir     string
	HostPub string // host public key line
	cmd     *exec.Cmd
	logs    *syncBuffer
}

// SSHDPath is where Debian's openssh-server installs sshd.
const SSHDPath = "/usr/sbin/sshd"

// StartSSHD runs sshd -D on a free loopback port; it is stopped when the
// test ends. It needs root (the test machines run as root) for privilege
// separation.
func StartSSHD(t testing.TB, o SSHDOptions) *SSHD {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		t.Fatalf("sshd is not installed (%v); `make test` installs openssh-server", err)
	}
	_ = os.MkdirAll("/run/sshd", 0o755)
	dir := t.TempDir()
	// sshd's StrictModes refuses files in group/world-writable dirs.
	_ = os.Chmod(dir, 0o700)
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, _ := os.ReadFile(hostKey + ".pub")
	port := freePort(t)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "Port %s\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\n", port, hostKey, filepath.Join(dir, "sshd.pid"))
	fmt.Fprintf(&cfg, "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin yes\nStrictModes no\n")
	fmt.Fprintf(&cfg, "MaxStartups 1000:30:2000\nLogLevel ERROR\nPrintMotd no\nUseDNS no\nSubsystem sftp internal-sftp\n")
	if o.TrustedUserCAKeys != "" {
		ca := filepath.Join(dir, "user_ca.pub")
		if err := os.WriteFile(ca, []byte(o.TrustedUserCAKeys+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfg, "TrustedUserCAKeys %s\n", ca)
	}
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(strings.Join(o.AuthorizedKeys, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&cfg, "AuthorizedKeysFile %s\n", ak)
	if o.ForceCommand != "" {
		fmt.Fprintf(&cfg, "ForceCommand %s\n", o.ForceCommand)
	}
	cfg.WriteString(o.Extra)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &SSHD{Addr: "127.0.0.1:" + port, Port: port, Dir: dir, HostPub: strings.TrimSpace(string(pub)), logs: &syncBuffer{}}
	s.cmd = exec.Command(SSHDPath, "-D", "-e", "-f", cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
			c.Close()
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sshd did not listen on %s:\n%s", s.Addr, s.logs.String())
	return nil
}

// Logs returns what sshd printed.
func (s *SSHD) Logs() string { return s.logs.String() }

// SSH runs the real ssh client against this sshd.
func (s *SSHD) SSH(t testing.TB, r Run) Result {
	t.Helper()
	kh := filepath.Join(s.Dir, "known_hosts")
	_ = os.WriteFile(kh, []byte("bastion-under-test "+s.HostPub+"\n"), 0o600)
	r.StrictHostKey = "yes"
	return runSSH(t, s.Port, kh, r)
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
