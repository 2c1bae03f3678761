package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// bareContainerPod runs PauseImage (one static binary, no shell, no tar,
// like a distroless image) as pod name in ns, and waits until it is Ready.
func bareContainerPod(t *testing.T, n *harness.KubeNode, ns, name string) {
	t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
spec:
  nodeName: %s
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: ["/pause"]
`, name, ns, harness.KubeNodeName, harness.PauseImage)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"apply", "-f", path}, {"-n", ns, "wait", "--for=condition=Ready", "pod/" + name, "--timeout=50s"}} {
		if out, err := n.Kubectl(t, n.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
}

// sftp and scp into a pod's container: /prod/NS/POD/CONTAINER/path, read
// and write through pods/exec as bob, every operation audited.
func TestKubeSFTPPods(t *testing.T) {
	e := workloadSetup(t)
	local := t.TempDir()
	up := filepath.Join(local, "up.bin")
	sum := harness.WriteRandomFile(t, up, 3<<20+17)
	pod := "/prod/" + e.ns + "/web/main"
	batch := fmt.Sprintf(`ls /
ls /prod/%s
ls /prod/%s/web
get %s/www/index.html %s/index.html
put %s %s/tmp/up.bin
mkdir %s/tmp/sub
rename %s/tmp/up.bin %s/tmp/sub/moved.bin
ls -l %s/tmp/sub
get %s/tmp/sub/moved.bin %s/down.bin
rm %s/tmp/sub/moved.bin
rmdir %s/tmp/sub
ls %s/tmp
`, e.ns, e.ns, pod, local, up, pod, pod, pod, pod, pod, pod, local, pod, pod, pod)
	start := time.Now()
	r := sftpBatch(t, e.b, e.bob, batch)
	mustOK(t, r, "sftp -b into the pod")
	t.Logf("sftp batch into the pod (3 MiB up, 3 MiB down, 12 more operations) in %s", time.Since(start).Round(time.Millisecond))
	if !harness.Contains(r.Stdout, "prod", "web", "main", "moved.bin") {
		t.Fatalf("listings lack the Resource, pod, container or file:\n%s", r.Stdout)
	}
	if got, _ := os.ReadFile(filepath.Join(local, "index.html")); string(got) != "hello-from-pod\n" {
		t.Fatalf("get of /www/index.html gave %q\n%s", got, r.Stderr)
	}
	if got := harness.FileSHA256(t, filepath.Join(local, "down.bin")); got != sum {
		fi, _ := os.Stat(filepath.Join(local, "down.bin"))
		t.Fatalf("the file came back changed (%d bytes): %s != %s\n%s", fi.Size(), got, sum, r.Combined())
	}
	// The pod itself holds what was written, and no longer what was removed.
	if out, err := e.n.Kubectl(t, e.n.AdminKubeconfig, "-n", e.ns, "exec", "web", "--", "sh", "-c", "ls /tmp; test -e /tmp/sub && echo sub-left; true"); err != nil || strings.Contains(out, "sub-left") || strings.Contains(out, "up.bin") {
		t.Fatalf("the pod's /tmp after rm and rmdir: %v\n%s", err, out)
	}

	// scp, both ways.
	src := filepath.Join(local, "f")
	if err := os.WriteFile(src, []byte("scp into a pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := e.b.FileArgs(e.bob)
	mustOK(t, harness.RunProgram(t, "", "scp", append(args, src, "127.0.0.1:"+strings.TrimPrefix(pod, "/")+"/tmp/f")...), "scp into the pod")
	if out, err := e.n.Kubectl(t, e.n.AdminKubeconfig, "-n", e.ns, "exec", "web", "--", "cat", "/tmp/f"); err != nil || out != "scp into a pod\n" {
		t.Fatalf("the pod's /tmp/f: %v %q", err, out)
	}
	mustOK(t, harness.RunProgram(t, "", "scp", append(args, "127.0.0.1:"+strings.TrimPrefix(pod, "/")+"/tmp/f", local+"/back")...), "scp from the pod")
	if got, _ := os.ReadFile(filepath.Join(local, "back")); string(got) != "scp into a pod\n" {
		t.Fatalf("scp from the pod gave %q", got)
	}

	// Every operation is audited like a host's, with the container path.
	want := map[string]bool{}
	inner := "/" + e.ns + "/web/main"
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", "sftp.") {
		if ev.Actor != "bob" || ev.Target != "prod" {
			continue
		}
		d := ev.Details
		switch {
		case ev.Action == "sftp.open" && d["kind"] == "pods" && d["as_user"] == "bob":
			want["open"] = true
		case ev.Action == "sftp.read" && d["path"] == inner+"/www/index.html" && d["bytes"] == "15":
			want["read"] = true
		case ev.Action == "sftp.write" && d["path"] == inner+"/tmp/up.bin" && d["bytes"] == strconv.Itoa(3<<20+17) && d["result"] == "ok":
			want["write"] = true
		case ev.Action == "sftp.mkdir" && d["path"] == inner+"/tmp/sub" && d["result"] == "ok":
			want["mkdir"] = true
		case ev.Action == "sftp.rename" && strings.Contains(d["path"], "moved.bin") && d["result"] == "ok":
			want["rename"] = true
		case ev.Action == "sftp.remove" && d["path"] == inner+"/tmp/sub/moved.bin" && d["result"] == "ok":
			want["remove"] = true
		case ev.Action == "sftp.list" && d["path"] == "/"+e.ns:
			want["list"] = true
		case ev.Action == "sftp.close":
			want["close"] = true
		}
	}
	for _, op := range []string{"open", "read", "write", "mkdir", "rename", "remove", "list", "close"} {
		if !want[op] {
			t.Errorf("no sftp.%s audit event for the pod with its details", op)
		}
	}
}

// The two gates: act on the Resource (the bastion) and the cluster's own
// RBAC (get pods, create pods/exec); each refusal says which refused. A
// container without a shell is a clear error, not a hang.
func TestKubeSFTPRefusals(t *testing.T) {
	e := workloadSetup(t)
	carol := addUser(t, e.b, e.alice, "carol") // act, but no Kubernetes RBAC
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "resource:prod#act@user:carol"), "grant carol")
	dave := addUser(t, e.b, e.alice, "dave") // no act
	pod := "/prod/" + e.ns + "/web/main"

	r := sftpBatch(t, e.b, carol, "ls "+pod+"/tmp\n")
	if r.Code == 0 || !harness.Contains(r.Stderr, "refused by the Kubernetes RBAC of prod, not by the bastion", `user "carol"`, "get pods", "pods/exec", "create rolebinding") {
		t.Fatalf("carol without RBAC: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = sftpBatch(t, e.b, dave, "ls "+pod+"/tmp\n")
	if r.Code == 0 || !harness.Contains(r.Stderr, "/prod refused", "user:dave lacks act on resource:prod", "request create prod") {
		t.Fatalf("dave without act: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = sftpBatch(t, e.b, dave, "ls /\n")
	if strings.Contains(r.Stdout, "prod") {
		t.Fatalf("dave's root lists prod:\n%s", r.Stdout)
	}
	var rbac, act bool
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", "sftp.deny") {
		switch {
		case ev.Actor == "carol" && ev.Details["reason_code"] == "kube_rbac_denied" && strings.Contains(ev.Reason, "Kubernetes RBAC"):
			rbac = true
		case ev.Actor == "dave" && strings.Contains(ev.Reason, "lacks act"):
			act = true
		}
	}
	if !rbac || !act {
		t.Fatalf("sftp.deny events: rbac %v, act %v", rbac, act)
	}

	// A container with no shell (a distroless image): a clear error.
	bareContainerPod(t, e.n, e.ns, "bare")
	r = sftpBatch(t, e.b, e.bob, "ls /prod/"+e.ns+"/bare/main/\n")
	if r.Code == 0 || !harness.Contains(r.Stderr, "container main of pod "+e.ns+"/bare has no sh", "distroless") {
		t.Fatalf("ls in a container without a shell: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
