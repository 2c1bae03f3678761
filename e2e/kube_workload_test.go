package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// workloadEnv: the shared test cluster (a real kubelet); prod is a kube
// Resource on it; bob may act on prod, and a Role in his namespace lets
// him exec, attach, read logs and port-forward there. The pod web serves
// /www on 8080 and logs a tick every second.
type workloadEnv struct {
	n          *harness.KubeNode
	b          *harness.Bastion
	alice, bob harness.Key
	ns         string
}

// kubeProtocols are the two ways kubectl streams: WebSocket (its default
// since 1.31) and SPDY (its fallback, forced by these variables).
var kubeProtocols = []struct {
	name string
	env  []string
}{
	{"websocket", nil},
	{"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
}

func workloadSetup(t *testing.T) *workloadEnv {
	t.Helper()
	n := harness.SharedKubeNode(t)
	ns := n.Namespace(t, "wl")
	b, alice := admin(t, kubeCredentialsYAML(n.Kube))
	bob := addUser(t, b, alice, "bob")
	mustOK(t, b.SSH(alice, "resources", "add", "prod", "--kind", "kube", "--address", n.URL,
		"--credentials", "prod", "--kube-group", "act=bastion:prod-users"), "resources add prod")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:prod#act@user:bob"), "grant bob")
	for _, args := range [][]string{
		{"-n", ns, "create", "role", "workload", "--verb=get,list,watch", "--resource=pods,services,pods/log"},
		{"-n", ns, "create", "role", "streams", "--verb=get,create", "--resource=pods/exec,pods/attach,pods/portforward"},
		{"-n", ns, "create", "rolebinding", "bob-workload", "--role=workload", "--user=bob"},
		{"-n", ns, "create", "rolebinding", "bob-streams", "--role=streams", "--user=bob"},
	} {
		if out, err := n.Kubectl(t, n.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	n.RunPod(t, ns, "web", map[string]string{"tier": "web"}, "ports: [{name: http, containerPort: 8080}]", "sh", "-c",
		"echo started-web; (i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done) & exec httpd -f -v -p 8080 -h /www")
	return &workloadEnv{n: n, b: b, alice: alice, bob: bob, ns: ns}
}

// tunnel opens bob's forward and kubeconfig to prod.
func (e *workloadEnv) tunnel(t *testing.T) (kc, session string) {
	t.Helper()
	ke := &kubeEnv{b: e.b, k: e.n.Kube, alice: e.alice, bob: e.bob}
	return ke.tunnel(t, e.bob, "prod")
}

// kubectl runs kubectl with kubeconfig kc, env and stdin, for at most a
// minute; it returns the combined output and exit code.
func kubectl(t *testing.T, kc string, env []string, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig=" + kc}, args...)...)
	cmd.Env = append(kubectlEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl %v: %v\n%s", args, err, out)
	}
	return string(out), 0
}

func kubectlEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") && !strings.HasPrefix(e, "KUBECTL_") {
			env = append(env, e)
		}
	}
	return env
}

// startKubectl runs a long-lived kubectl (logs -f, attach, port-forward);
// its output lines arrive on the returned channel.
func startKubectl(t *testing.T, kc string, env []string, stdin *os.File, args ...string) (*exec.Cmd, <-chan string, chan error) {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig=" + kc}, args...)...)
	cmd.Env = append(kubectlEnv(), env...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		var buf bytes.Buffer
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			buf.Write(b[:n])
			for {
				i := bytes.IndexByte(buf.Bytes(), '\n')
				if i < 0 {
					break
				}
				lines <- string(buf.Next(i + 1))
			}
			if err != nil {
				if buf.Len() > 0 {
					lines <- buf.String()
				}
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-lines })
	return cmd, lines, done
}

// kubeStreamEvents returns bob's kube.request events for subresource sub.
func kubeStreamEvents(t *testing.T, e *workloadEnv, sub string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, ev := range auditEvents(t, e.b, e.alice, "--action", "kube.request") {
		if ev.Actor == "bob" && ev.Target == "prod" && ev.Details["subresource"] == sub {
			out = append(out, ev.Details)
		}
	}
	return out
}

// waitStreamEvent waits until bob has a kube.request for sub with status.
func waitStreamEvent(t *testing.T, e *workloadEnv, sub, status string) map[string]string {
	t.Helper()
	var last []map[string]string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		last = kubeStreamEvents(t, e, sub)
		for _, d := range last {
			if d["status"] == status && d["namespace"] == e.ns && d["as_user"] == "bob" {
				return d
			}
		}
	}
	t.Fatalf("no kube.request for %s with status %s; have %v", sub, status, last)
	return nil
}

// kubectl exec through the bastion, over WebSocket and over SPDY: stdin,
// a tty, and the remote exit code, each audited as pods/exec.
func TestKubeWorkloadExec(t *testing.T) {
	e := workloadSetup(t)
	kc, _ := e.tunnel(t)
	for _, p := range kubeProtocols {
		t.Run(p.name, func(t *testing.T) {
			out, code := kubectl(t, kc, p.env, "piped-stdin-"+p.name+"\n", "-n", e.ns, "exec", "-i", "web", "--", "cat")
			if code != 0 || !strings.Contains(out, "piped-stdin-"+p.name) {
				t.Fatalf("exec -i cat: exit %d\n%s", code, out)
			}
			out, code = kubectl(t, kc, p.env, "", "-n", e.ns, "exec", "web", "--", "sh", "-c", "echo on-stdout; echo on-stderr >&2; exit 7")
			if code != 7 || !harness.Contains(out, "on-stdout", "on-stderr", "command terminated with exit code 7") {
				t.Fatalf("exec exit 7: exit %d\n%s", code, out)
			}
			// -it: kubectl needs a terminal of its own; script(1) gives it one.
			line := "kubectl --kubeconfig=" + kc + " -n " + e.ns + " exec -it web -- sh -c 'tty; echo tty-ok; exit 3'"
			cmd := exec.Command("script", "-qec", line, "/dev/null")
			cmd.Env = append(kubectlEnv(), p.env...)
			raw, err := cmd.CombinedOutput()
			got := strings.ReplaceAll(string(raw), "\r", "")
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 || !harness.Contains(got, "/dev/pts/", "tty-ok") {
				t.Fatalf("exec -it: %v\n%s", err, got)
			}
		})
	}
	d := waitStreamEvent(t, e, "exec", "101")
	if d["name"] != "web" || d["bytes_out"] == "0" {
		t.Fatalf("exec event lacks the pod or the bytes: %v", d)
	}
}

// kubectl cp both ways (exec plus tar in the pod), over both protocols.
func TestKubeWorkloadCopy(t *testing.T) {
	e := workloadSetup(t)
	kc, _ := e.tunnel(t)
	dir := t.TempDir()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	src := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(src, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range kubeProtocols {
		t.Run(p.name, func(t *testing.T) {
			remote := e.ns + "/web:/tmp/payload-" + p.name
			if out, code := kubectl(t, kc, p.env, "", "cp", src, remote); code != 0 {
				t.Fatalf("cp to the pod: exit %d\n%s", code, out)
			}
			back := filepath.Join(dir, "back-"+p.name)
			if out, code := kubectl(t, kc, p.env, "", "cp", remote, back); code != 0 {
				t.Fatalf("cp from the pod: exit %d\n%s", code, out)
			}
			got, err := os.ReadFile(back)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("the file came back changed (%d bytes, want %d): %v", len(got), len(payload), err)
			}
		})
	}
}
