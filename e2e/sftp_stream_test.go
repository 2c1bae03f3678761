package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
)

// 256 MiB up and down stream through the bastion: its resident memory
// grows by less than 64 MiB, and the bytes arrive whole.
func TestSFTPStreamsLargeFiles(t *testing.T) {
	b, _, bob, remote := sftpSetup(t)
	local := t.TempDir()
	const size = 256 << 20
	src := filepath.Join(local, "big.bin")
	sum := harness.WriteRandomFile(t, src, size)

	rss := harness.WatchRSS(t, b.Pid())
	r := sftpBatch(t, b, bob, fmt.Sprintf("put %s /host-1%s/big.bin\nget /host-1%s/big.bin %s/back.bin\n", src, remote, remote, local))
	grew := rss.Stop()
	mustOK(t, r, "sftp put/get 256 MiB")
	t.Logf("bastion RSS: baseline %d MiB, peak %d MiB, grew %d MiB", rss.Baseline>>20, rss.Peak>>20, grew>>20)
	if got := harness.FileSHA256(t, filepath.Join(remote, "big.bin")); got != sum {
		t.Fatal("the uploaded file differs on the target")
	}
	if got := harness.FileSHA256(t, filepath.Join(local, "back.bin")); got != sum {
		t.Fatal("the downloaded file differs")
	}
	if grew >= 64<<20 {
		t.Fatalf("the bastion's resident memory grew by %d MiB (limit 64)", grew>>20)
	}
}

// An sftp session is cut like any other: `sessions kill` ends the channel,
// and the sftp client exits.
func TestSFTPSessionIsRevocable(t *testing.T) {
	b, alice, bob, remote := sftpSetup(t)
	cmd := exec.Command("sftp", append(b.FileArgs(bob), "-b", "-", "127.0.0.1")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = io.Copy(io.Discard, stdout) }()
	lines := bufio.NewScanner(stdout)
	fmt.Fprintf(stdin, "ls /host-1%s\n", remote)
	lines.Scan() // the echoed command: the session is open once it is answered
	var ss []store.Session
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(ss) == 0 {
		r := b.SSH(bob, "sessions", "-o", "json")
		mustOK(t, r, "sessions")
		var all []store.Session
		if err := json.Unmarshal([]byte(r.Stdout), &all); err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if s.Kind == "sftp" && s.State == "open" {
				ss = append(ss, s)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(ss) != 1 || ss[0].Resource != "host-1" {
		t.Fatalf("open sftp sessions: %+v", ss)
	}
	sshPid := childOf(t, cmd.Process.Pid)
	mustOK(t, b.SSH(alice, "sessions", "kill", ss[0].ID), "sessions kill")
	// sftp waits on its batch input; its ssh transport must end now, as
	// the bastion closes the channel.
	deadline = time.Now().Add(30 * time.Second)
	for alive(sshPid) {
		if time.Now().After(deadline) {
			t.Fatalf("sftp's ssh still runs 30 s after its session was killed; stderr: %q", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The next command finds the connection gone.
	fmt.Fprintf(stdin, "ls /host-1%s\n", remote)
	_ = stdin.Close()
	done := make(chan error, 1)
	go func() { _, _ = io.Copy(io.Discard, stdout); done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("sftp succeeded after its session was killed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sftp still runs 30 s after its session was killed")
	}
	if !strings.Contains(stderr.String(), "ended: revoked") {
		t.Fatalf("sftp's stderr does not say why: %q", stderr.String())
	}
	var closed bool
	for _, e := range auditEvents(t, b, alice, "--action", "sftp.close") {
		closed = closed || (e.Target == "host-1" && e.Reason == "revoked")
	}
	if !closed {
		t.Fatal("no sftp.close with the reason revoked")
	}
}

// childOf returns the one child process of pid (sftp's ssh).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(raw))
	if len(f) != 1 {
		t.Fatalf("sftp has children %q, want its one ssh", f)
	}
	c, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// alive reports whether pid runs (and is no zombie).
func alive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(raw))
	return len(f) > 2 && f[2] != "Z"
}
