package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// waitOutput waits for a line containing want, failing after limit.
func waitOutput(t *testing.T, lines <-chan string, want string, limit time.Duration) string {
	t.Helper()
	deadline := time.After(limit)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl ended before %q:\n%s", want, strings.Join(seen, ""))
			}
			seen = append(seen, l)
			if strings.Contains(l, want) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %q within %s:\n%s", want, limit, strings.Join(seen, ""))
		}
	}
}

// waitKubectlExit waits until kubectl ended, failing after limit.
func waitKubectlExit(t *testing.T, done chan error, what string, limit time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s still runs %s after its session was killed", what, limit)
	}
}

// logs -f follows the pod through the bastion until the session is killed,
// which cuts the stream, and a running exec with it.
func TestKubeWorkloadLogsFollow(t *testing.T) {
	e := workloadSetup(t)
	kc, session := e.tunnel(t)
	_, execLines, execDone := startKubectl(t, kc, nil, nil, "-n", e.ns, "exec", "web", "--", "sh", "-c", "echo exec-running; exec sleep 300")
	waitOutput(t, execLines, "exec-running", 20*time.Second)
	_, lines, done := startKubectl(t, kc, nil, nil, "-n", e.ns, "logs", "-f", "web")
	waitOutput(t, lines, "started-web", 20*time.Second)
	first := waitOutput(t, lines, "tick-", 20*time.Second)
	next := waitOutput(t, lines, "tick-", 20*time.Second)
	if first == next {
		t.Fatalf("logs -f does not follow: %q twice", first)
	}
	mustOK(t, e.b.SSH(e.bob, "sessions", "kill", session), "sessions kill")
	waitKubectlExit(t, done, "kubectl logs -f", 20*time.Second)
	waitKubectlExit(t, execDone, "kubectl exec", 20*time.Second)
	d := waitStreamEvent(t, e, "log", "200")
	if d["verb"] != "get" || d["name"] != "web" {
		t.Fatalf("log event: %v", d)
	}
}

// attach to a container's stdin (a shell reading commands), over both
// protocols.
func TestKubeWorkloadAttach(t *testing.T) {
	e := workloadSetup(t)
	e.n.RunPod(t, e.ns, "shell", nil, "stdin: true", "sh")
	kc, _ := e.tunnel(t)
	for _, p := range kubeProtocols {
		t.Run(p.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			cmd, lines, _ := startKubectl(t, kc, p.env, r, "-n", e.ns, "attach", "-i", "shell")
			r.Close()
			// The shell reads what we type once attach is connected;
			// lines typed earlier would be lost, so type until one answers.
			answered := make(chan struct{})
			go func() {
				for i := 0; ; i++ {
					select {
					case <-answered:
						return
					case <-time.After(300 * time.Millisecond):
					}
					if _, err := fmt.Fprintf(w, "echo attached-%s-$((%d+1))\n", p.name, i); err != nil {
						return
					}
				}
			}()
			waitOutput(t, lines, "attached-"+p.name+"-", 20*time.Second)
			close(answered)
			_ = cmd.Process.Kill()
		})
	}
	waitStreamEvent(t, e, "attach", "101")
}

// port-forward through the bastion, over both protocols; killing the
// session ends it.
func TestKubeWorkloadPortForward(t *testing.T) {
	e := workloadSetup(t)
	for _, p := range kubeProtocols {
		t.Run(p.name, func(t *testing.T) {
			kc, session := e.tunnel(t)
			_, lines, done := startKubectl(t, kc, p.env, nil, "-n", e.ns, "port-forward", "--address", "127.0.0.1", "pod/web", ":8080")
			l := waitOutput(t, lines, "Forwarding from 127.0.0.1:", 20*time.Second)
			m := regexp.MustCompile(`127\.0\.0\.1:(\d+) -> 8080`).FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("no local port in %q", l)
			}
			for i := 0; i < 3; i++ { // one stream per connection
				body := httpGet(t, "http://127.0.0.1:"+m[1]+"/")
				if !strings.Contains(body, "hello-from-pod") {
					t.Fatalf("GET through port-forward: %q", body)
				}
			}
			mustOK(t, e.b.SSH(e.bob, "sessions", "kill", session), "sessions kill")
			waitKubectlExit(t, done, "kubectl port-forward", 20*time.Second)
		})
	}
	d := waitStreamEvent(t, e, "portforward", "101")
	if d["name"] != "web" || d["bytes_out"] == "0" || d["bytes_in"] == "0" {
		t.Fatalf("portforward event lacks the pod or the bytes: %v", d)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
