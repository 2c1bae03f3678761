package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// With the apiserver gone, kube requests fail closed with a message that
// names the cluster, and ssh logins are unaffected.
func TestFaultApiserverDown(t *testing.T) {
	e := kubeSetup(t)
	kc, _ := e.tunnel(t, e.bob, "prod")
	if out, err := e.k.Kubectl(t, kc, "-n", "dev", "get", "cm"); err != nil {
		t.Fatalf("before the fault: %v\n%s", err, out)
	}
	e.k.StopAPIServer()
	out, err := e.k.Kubectl(t, kc, "-n", "dev", "get", "cm", "--request-timeout=20s")
	if err == nil || !harness.Contains(out, "apiserver of prod", "cannot be reached") {
		t.Fatalf("with the apiserver down: %v\n%s", err, out)
	}
	mustOK(t, e.b.SSH(e.bob, "whoami"), "public-key login with the apiserver down")
}

// A store on a read-only filesystem: the bastion refuses to start, and
// says which directory and why. (A read-only remount under a running
// bastion is refused by the kernel while the store holds its files open.)
func TestFaultReadOnlyStoreRefusesToStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a read-only tmpfs (the tests run as root): %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, harness.Binary(t), "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--data", dir).CombinedOutput()
	if err == nil || !harness.Contains(string(out), dir, "not writable", "refuses to start") {
		t.Fatalf("serve on a read-only store: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "bastion listening") {
		t.Fatal("the bastion listened without a writable store")
	}
}
