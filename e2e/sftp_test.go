package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// sftpSetup: a Debian sshd trusting the bastion's CA, host-1 (bob may act)
// and host-2 (he may not), and a scratch directory on the target.
func sftpSetup(t *testing.T) (b *harness.Bastion, alice, bob harness.Key, remote string) {
	t.Helper()
	b, alice, bob = withBob(t)
	ca := b.SSH(alice, "ca")
	mustOK(t, ca, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(ca.Stdout)})
	for _, h := range []string{"host-1", "host-2"} {
		mustOK(t, b.SSH(alice, "resources", "add", h, "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add "+h)
	}
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant")
	remote = t.TempDir() // the target runs on this machine: its files are ours to check
	return b, alice, bob, remote
}

func sftpBatch(t *testing.T, b *harness.Bastion, k harness.Key, batch string) harness.Result {
	t.Helper()
	args := append(b.FileArgs(k), "-b", "-", "127.0.0.1")
	return harness.RunProgram(t, batch, "sftp", args...)
}

func TestSFTPBatchThroughTheBastion(t *testing.T) {
	b, alice, bob, remote := sftpSetup(t)
	local := t.TempDir()
	up := filepath.Join(local, "up.bin")
	sum := harness.WriteRandomFile(t, up, 3<<20+17)
	other := filepath.Join(local, "other.txt")
	if err := os.WriteFile(other, []byte("rename me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := "/host-1" + remote
	batch := fmt.Sprintf(`ls /
put %s %s/up.bin
put %s %s/other.txt
mkdir %s/sub
rename %s/other.txt %s/sub/moved.txt
ls %s/sub
get %s/up.bin %s/down.bin
rm %s/sub/moved.txt
ls -l %s
`, up, dir, other, dir, dir, dir, dir, dir, dir, local, dir, dir)
	r := sftpBatch(t, b, bob, batch)
	mustOK(t, r, "sftp -b")
	if !strings.Contains(r.Stdout, "host-1") || strings.Contains(r.Stdout, "host-2") {
		t.Fatalf("root listing should show host-1 only:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "moved.txt") {
		t.Fatalf("listing of sub lacks moved.txt:\n%s", r.Stdout)
	}
	if got := harness.FileSHA256(t, filepath.Join(remote, "up.bin")); got != sum {
		t.Fatalf("the file on the target differs: %s != %s", got, sum)
	}
	if got := harness.FileSHA256(t, filepath.Join(local, "down.bin")); got != sum {
		t.Fatalf("the downloaded file differs: %s != %s", got, sum)
	}
	if _, err := os.Stat(filepath.Join(remote, "sub", "moved.txt")); !os.IsNotExist(err) {
		t.Fatalf("rm did not remove the file on the target: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(remote, "sub")); err != nil || !fi.IsDir() {
		t.Fatalf("mkdir did not make the directory on the target: %v", err)
	}

	// host-2: not listed, and refused by path.
	r = sftpBatch(t, b, bob, "ls /host-2"+remote+"\n")
	if r.Code == 0 || !harness.Contains(r.Stderr, "/host-2 refused", "user:bob lacks act on resource:host-2", "request create host-2") {
		t.Fatalf("ls /host-2: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = sftpBatch(t, b, bob, fmt.Sprintf("put %s /host-2%s/x\n", other, remote))
	if r.Code == 0 || !harness.Contains(r.Stderr, "Permission denied") {
		t.Fatalf("put to /host-2: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(remote, "x")); !os.IsNotExist(err) {
		t.Fatalf("the refused put wrote the file: %v", err)
	}
	r = sftpBatch(t, b, bob, fmt.Sprintf("get /host-1%s/../../host-2/etc/hostname %s/x\n", remote, local))
	if r.Code == 0 {
		t.Fatalf("a path climbing into host-2 was served:\n%s%s", r.Stdout, r.Stderr)
	}

	// Each file operation is audited, the transfers with their bytes.
	want := map[string]bool{}
	for _, e := range auditEvents(t, b, alice, "--action", "sftp.") {
		if e.Actor != "bob" {
			continue
		}
		switch {
		case e.Action == "sftp.write" && e.Target == "host-1" && e.Details["path"] == remote+"/up.bin" && e.Details["bytes"] == strconv.Itoa(3<<20+17):
			want["write"] = true
		case e.Action == "sftp.read" && e.Details["path"] == remote+"/up.bin" && e.Details["bytes"] == strconv.Itoa(3<<20+17):
			want["read"] = true
		case e.Action == "sftp.mkdir" && e.Details["path"] == remote+"/sub" && e.Details["result"] == "ok":
			want["mkdir"] = true
		case e.Action == "sftp.rename" && strings.Contains(e.Details["path"], "moved.txt"):
			want["rename"] = true
		case e.Action == "sftp.remove" && e.Details["path"] == remote+"/sub/moved.txt":
			want["remove"] = true
		case e.Action == "sftp.deny" && e.Target == "host-2" && strings.Contains(e.Reason, "lacks act"):
			want["deny"] = true
		}
	}
	for _, op := range []string{"write", "read", "mkdir", "rename", "remove", "deny"} {
		if !want[op] {
			t.Errorf("no sftp.%s audit event with its details", op)
		}
	}
}

func TestSCPBothWays(t *testing.T) {
	b, _, bob, remote := sftpSetup(t)
	local := t.TempDir()
	src := filepath.Join(local, "f")
	if err := os.WriteFile(src, []byte("scp through the bastion\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := b.FileArgs(bob)
	r := harness.RunProgram(t, "", "scp", append(args, src, "127.0.0.1:host-1"+remote+"/f")...)
	mustOK(t, r, "scp up")
	if got, _ := os.ReadFile(filepath.Join(remote, "f")); string(got) != "scp through the bastion\n" {
		t.Fatalf("target holds %q", got)
	}
	if err := os.WriteFile(filepath.Join(remote, "hostname"), []byte("host-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = harness.RunProgram(t, "", "scp", append(args, "127.0.0.1:host-1"+remote+"/hostname", local+"/")...)
	mustOK(t, r, "scp down")
	if got, _ := os.ReadFile(filepath.Join(local, "hostname")); string(got) != "host-1\n" {
		t.Fatalf("downloaded %q", got)
	}
	// Legacy scp is refused with what to do.
	r = harness.RunProgram(t, "", "scp", append(append([]string{"-O"}, args...), src, "127.0.0.1:host-1"+remote+"/g")...)
	if r.Code == 0 || !strings.Contains(r.Stderr, "drop -O") || !strings.Contains(r.Stderr, "scp -P "+b.Port+" FILE") {
		t.Fatalf("scp -O: exit %d %q (the hint must use scp's -P)", r.Code, r.Stderr)
	}
	// No scp to host-2.
	r = harness.RunProgram(t, "", "scp", append(args, src, "127.0.0.1:host-2"+remote+"/f2")...)
	if r.Code == 0 {
		t.Fatal("scp to host-2 succeeded without act")
	}
}
