package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// replicas starts n bastions sharing one real etcd under one prefix; the
// first one bootstraps alice as admin, the others find her in the store.
func replicas(t *testing.T, n int, extra ...string) ([]*harness.Bastion, harness.Key, *etcdtest.Proc) {
	t.Helper()
	e := etcdtest.Start(t)
	cfg := fmt.Sprintf("store:\n  backend: etcd\n  lost_grace: 2s\n  etcd:\n    endpoints: [%s]\n    prefix: /ha-test/\n", e.ClientURL) + strings.Join(extra, "")
	alice := harness.NewKey(t, t.TempDir(), "alice")
	bs := []*harness.Bastion{harness.Start(t, harness.Options{Admin: "alice", AdminKeys: []harness.Key{alice}, Config: cfg})}
	for i := 1; i < n; i++ {
		bs = append(bs, harness.Start(t, harness.Options{Config: cfg + "admins: [alice]\n"}))
	}
	return bs, alice, e
}

var hostKeyRe = regexp.MustCompile(`msg="bastion listening".* host_key=(\S+)`)

// Two replicas on etcd are one bastion: the same host key, a user made on
// A logs in on B, a grant written on A holds on B at once (even where B
// had just refused), and both verify the same audit chain.
func TestHAReplicasShareOneState(t *testing.T) {
	bs, alice, _ := replicas(t, 2)
	a, b := bs[0], bs[1]
	ka, kb := hostKeyRe.FindStringSubmatch(a.Logs()), hostKeyRe.FindStringSubmatch(b.Logs())
	if ka == nil || kb == nil || ka[1] != kb[1] {
		t.Fatalf("replicas present different host keys: %v vs %v", ka, kb)
	}
	bob := addUser(t, a, alice, "bob")
	mustOK(t, b.SSH(bob, "whoami"), "bob, made on A, logs in on B")

	echoResource(t, a, alice)
	// B refuses first (and may cache that answer) ...
	f := b.SSHRun(harness.Run{Key: &bob, Args: []string{"check", "user:bob", "act", "resource:echo-svc"}})
	if !strings.Contains(f.Stdout, "denied") {
		t.Fatalf("before the grant, B answers %q (exit %d, %s)", f.Stdout, f.Code, f.Stderr)
	}
	// ... then a grant on A holds on B at once.
	mustOK(t, a.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant on A")
	waitFor(t, 10*time.Second, "B to see the grant made on A", func() bool {
		r := b.SSHRun(harness.Run{Key: &bob, Args: []string{"check", "user:bob", "act", "resource:echo-svc"}})
		return strings.Contains(r.Stdout, "allowed")
	})
	// sessions kill on A cuts a forward held on B; so does a grant
	// removed on A. Both reach B through the change feed.
	c := liveForward(t, b, bob)
	r := a.SSH(alice, "sessions", "-o", "json")
	mustOK(t, r, "sessions on A")
	var ss []store.Session
	if err := json.Unmarshal([]byte(r.Stdout), &ss); err != nil {
		t.Fatal(err)
	}
	var id string
	for _, s := range ss {
		if s.User == "bob" && s.State == "open" && s.Resource == "echo-svc" {
			id = s.ID
		}
	}
	if id == "" {
		t.Fatalf("A does not list the forward held on B: %s", r.Stdout)
	}
	killed := time.Now()
	mustOK(t, a.SSH(alice, "sessions", "kill", id), "sessions kill on A")
	t.Logf("B's forward cut %s after the kill on A", harness.WaitClosed(t, c, 30*time.Second).Sub(killed))
	c = liveForward(t, b, bob)
	removed := time.Now()
	mustOK(t, a.SSH(alice, "tuples", "rm", "resource:echo-svc#act@user:bob"), "revoke on A")
	t.Logf("B's forward cut %s after the grant was removed on A", harness.WaitClosed(t, c, 30*time.Second).Sub(removed))
	mustOK(t, a.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant again")

	// Both replicas write events into one chain: B verifies it, A's
	// events included, and its head is past A's.
	var heads []int
	for _, x := range bs {
		r := x.SSH(alice, "audit", "verify")
		mustOK(t, r, "audit verify")
		m := regexp.MustCompile(`last seq (\d+)`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("audit verify: %q", r.Stdout)
		}
		var n int
		fmt.Sscan(m[1], &n)
		heads = append(heads, n)
	}
	if heads[1] <= heads[0] {
		t.Fatalf("B's chain head %d is not past A's %d: not one chain", heads[1], heads[0])
	}
	var grantOnA bool
	for _, e := range auditEvents(t, b, alice, "--action", "command.run") {
		if strings.Contains(e.Details["args"], "resource:echo-svc#act@user:bob") {
			grantOnA = true
		}
	}
	if !grantOnA {
		t.Fatal("B's audit log lacks the grant made on A")
	}
}

// A replica that loses etcd says so on /healthz (so a load balancer stops
// sending it connections), and recovers by itself when etcd is back.
func TestHAHealthzFollowsTheStore(t *testing.T) {
	bs, alice, e := replicas(t, 1)
	a := bs[0]
	healthz := func() (int, string) {
		resp, err := http.Get("http://" + a.Metrics + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := healthz(); code != 200 {
		t.Fatalf("healthz with etcd up: %d %s", code, body)
	}
	bob := addUser(t, a, alice, "bob")
	echoResource(t, a, alice)
	mustOK(t, a.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")
	c := liveForward(t, a, bob)
	e.Kill(t)
	// Past store.lost_grace (2 s here), the replica cuts what it can no
	// longer re-check.
	harness.WaitClosed(t, c, 60*time.Second)
	// New logins are refused, and the client is told why.
	r := a.SSHRun(harness.Run{Key: &bob, Args: []string{"whoami"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !strings.Contains(r.Stderr, "the store cannot be reached") {
		t.Fatalf("a login while etcd is down: exit %d, stderr %q\n%s", r.Code, r.Stderr, a.Logs())
	}
	waitFor(t, 30*time.Second, "healthz to turn unhealthy", func() bool {
		code, body := healthz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "store cannot be reached")
	})
	e.Start(t)
	waitFor(t, 60*time.Second, "healthz to recover", func() bool {
		code, _ := healthz()
		return code == 200
	})
	mustOK(t, a.SSH(alice, "whoami"), "login after etcd came back")
}
