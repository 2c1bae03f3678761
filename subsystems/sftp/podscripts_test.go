package sftp

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The container scripts, run by this machine's sh (POSIX, as a
// container's busybox or dash is): exit codes and outputs the tree reads.
func TestPodScripts(t *testing.T) {
	dir := t.TempDir()
	run := func(script, stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	f := filepath.Join(dir, "a file")
	if out, code := run(writeScript, "hello", f, "trunc"); code != 0 || out != "ok" {
		t.Fatalf("write: %q %d", out, code)
	}
	if out, code := run(writeScript, " again", f, "append"); code != 0 || out != "ok" {
		t.Fatalf("append: %q %d", out, code)
	}
	if _, code := run(writeScript, "x", f, "excl"); code != 17 {
		t.Fatalf("excl on an existing file: exit %d", code)
	}
	if _, code := run(writeScript, "x", f, "fresh"); code != 95 {
		t.Fatalf("fresh on a non-empty file: exit %d", code)
	}
	if _, code := run(writeScript, "x", filepath.Join(dir, "no", "such"), "trunc"); code != 2 {
		t.Fatalf("write under a missing directory: exit %d", code)
	}
	if out, code := run(readScript, "", f, "1"); code != 0 || out != "okhello again" {
		t.Fatalf("read: %q %d", out, code)
	}
	if out, code := run(readScript, "", f, "7"); code != 0 || out != "okagain" {
		t.Fatalf("read from byte 7: %q %d", out, code)
	}
	if _, code := run(readScript, "", dir, "1"); code != 21 {
		t.Fatalf("read of a directory: exit %d", code)
	}
	if _, code := run(statScript, "", filepath.Join(dir, "missing")); code != 2 {
		t.Fatalf("stat of a missing file: exit %d", code)
	}
	if err := os.WriteFile(filepath.Join(dir, ".hidden"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, code := run(mkdirScript, "", filepath.Join(dir, "sub")); code != 0 {
		t.Fatalf("mkdir: exit %d", code)
	}
	if _, code := run(mkdirScript, "", filepath.Join(dir, "sub")); code != 17 {
		t.Fatalf("mkdir of an existing directory: exit %d", code)
	}
	out, code := run(listScript, "", dir)
	infos := parseStat(out)
	names := map[string]bool{}
	for _, i := range infos {
		names[i.name] = true
	}
	if code != 0 || len(infos) != 3 || !names["a file"] || !names[".hidden"] || !names["sub"] {
		t.Fatalf("list: exit %d, %+v from %q", code, infos, out)
	}
	if out, code := run(listScript, "", filepath.Join(dir, "sub")); code != 0 || out != "" {
		t.Fatalf("list of an empty directory: %q %d", out, code)
	}
	if _, code := run(listScript, "", f); code != 20 {
		t.Fatalf("list of a file: exit %d", code)
	}
	if _, code := run(removeScript, "", filepath.Join(dir, "sub")); code != 21 {
		t.Fatalf("remove of a directory: exit %d", code)
	}
	if _, code := run(renameScript, "", f, filepath.Join(dir, ".hidden")); code != 17 {
		t.Fatalf("rename onto an existing file: exit %d", code)
	}
	if _, code := run(posixRenameScript, "", f, filepath.Join(dir, "sub", "moved")); code != 0 {
		t.Fatalf("posix rename: exit %d", code)
	}
	if _, code := run(removeScript, "", filepath.Join(dir, "sub", "moved")); code != 0 {
		t.Fatalf("remove: exit %d", code)
	}
	if _, code := run(rmdirScript, "", filepath.Join(dir, "sub")); code != 0 {
		t.Fatalf("rmdir: exit %d", code)
	}
}
