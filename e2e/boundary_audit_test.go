package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/sshbastion/bastion/e2e/harness"
)

// A 70 KB command on a host runs, and shell.open (which holds the command)
// is written, truncated with a marker, rather than lost.
func TestBoundaryAuditHugeCommandIsRecorded(t *testing.T) {
	b, alice, bob := withBob(t)
	caLine := strings.TrimSpace(b.SSH(bob, "ca").Stdout)
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: caLine})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant")

	filler := strings.Repeat("A", 70000)
	r := b.SSHRun(harness.Run{Key: &bob, Args: []string{"host-1", "--", "echo ok; : " + filler}})
	mustOK(t, r, "a 70 KB command on host-1")
	if strings.TrimSpace(r.Stdout) != "ok" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	var found bool
	for _, e := range auditEvents(t, b, alice, "--action", "shell.open") {
		cmd := e.Details["command"]
		if e.Actor == "bob" && strings.HasPrefix(cmd, "echo ok; : AAAA") {
			found = true
			if !strings.Contains(cmd, "[truncated: ") || !strings.Contains(cmd, "sha256:") || len(cmd) > 16<<10 {
				t.Fatalf("the command is not truncated with a marker (%d bytes): ...%s", len(cmd), cmd[max(0, len(cmd)-120):])
			}
		}
	}
	if !found {
		t.Fatal("no shell.open event for the 70 KB command")
	}
	mustOK(t, b.SSH(alice, "audit", "verify"), "audit verify")
}

// At SIGTERM, a forward that is drained has its forward.close written
// before the store closes, every time.
func TestBoundaryAuditDrainWritesEveryClose(t *testing.T) {
	b, alice := admin(t, "drain_timeout: 1s\n")
	bob := addUser(t, b, alice, "bob")
	echoResource(t, b, alice)
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")
	const trials = 5
	for i := 0; i < trials; i++ {
		c := liveForward(t, b, bob)
		b.Signal(syscall.SIGTERM)
		waitFor(t, 60*time.Second, "the bastion to exit", b.Exited)
		c.Close()
		b.Restart()
		opens, closes := 0, 0
		for _, e := range auditEvents(t, b, alice, "--action", "forward.") {
			switch e.Action {
			case "forward.open":
				opens++
			case "forward.close":
				closes++
			}
		}
		if opens != i+1 || closes != i+1 {
			t.Fatalf("trial %d: forward.open %d, forward.close %d; want %d each\n%s", i+1, opens, closes, i+1, b.Logs())
		}
	}
	mustOK(t, b.SSH(alice, "audit", "verify"), "audit verify")
}

// One kube request with a 70 KB path must not erase the events of other
// requests committed in the same batch: each is stored, the long one
// truncated.
func TestBoundaryAuditKubeBatchSurvivesHugePath(t *testing.T) {
	e := kubeSetup(t)
	kc, _ := e.tunnel(t, e.bob, "prod")
	client := kubeHTTPClient(t, kc)
	server := kubeServer(t, kc)

	long := "/api/v1/namespaces/dev/configmaps/" + strings.Repeat("x", 70000)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			path := fmt.Sprintf("/api/v1/namespaces/dev/configmaps?limit=%d", i+1)
			if i == 0 {
				path = long
			}
			resp, err := client.Get(server + path)
			if err != nil {
				t.Errorf("GET %d: %v", i, err)
				return
			}
			resp.Body.Close()
		}(i)
	}
	wg.Wait()
	var normal, huge int
	waitFor(t, 30*time.Second, "the kube.request events", func() bool {
		normal, huge = 0, 0
		for _, ev := range auditEvents(t, e.b, e.alice, "--action", "kube.request") {
			p := ev.Details["path"]
			switch {
			case strings.Contains(p, "[truncated: "):
				huge++
			case ev.Details["verb"] == "list" && ev.Details["namespace"] == "dev":
				normal++
			}
		}
		return huge >= 1 && normal >= 7
	})
	mustOK(t, e.b.SSH(e.alice, "audit", "verify"), "audit verify")
}

// kubeHTTPClient is a plain HTTP client with the kubeconfig's pinned CA
// and bearer token: it keeps its connections alive.
func kubeHTTPClient(t *testing.T, kc string) *http.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.TLSClientConfig.CAData) {
		t.Fatal("no CA in the kubeconfig")
	}
	tok := cfg.BearerToken
	base := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	return &http.Client{Timeout: time.Minute, Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(context.Background())
		r.Header.Set("Authorization", "Bearer "+tok)
		return base.RoundTrip(r)
	})}
}

func kubeServer(t *testing.T, kc string) string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(cfg.Host, "/")
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A client that disconnects in the middle of a device login still leaves
// its oidc.device.fail event: its cancelled context does not cancel the
// write.
func TestBoundaryAuditDeviceLoginAbandoned(t *testing.T) {
	o := harness.StartOIDC(t, harness.OIDCOptions{})
	b, alice := oidcBastion(t, o)
	k := harness.NewKey(t, t.TempDir(), "k")
	x := b.SSHInteractive(&k, nil, "whoami")
	x.Prompt(t, 0)
	x.Kill()
	waitFor(t, 30*time.Second, "oidc.device.fail for the abandoned login", func() bool {
		for _, e := range auditEvents(t, b, alice, "--action", "oidc.device.") {
			if e.Action == "oidc.device.fail" && strings.Contains(e.Reason, "client ended") {
				return true
			}
		}
		return false
	})
}
