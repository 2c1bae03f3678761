package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// kill -9 of one replica of three in the middle of audit-heavy load from
// all of them: every acknowledged event is in the chain, the chain
// verifies, and the sessions the dead replica held end as "replica lost".
func TestHAReplicaKill9(t *testing.T) {
	bs, alice, _ := replicas(t, 3)
	bob := addUser(t, bs[0], alice, "bob")
	echoResource(t, bs[0], alice)
	mustOK(t, bs[0].SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant")
	liveForward(t, bs[2], bob) // held on C, which dies

	// Load: each replica runs `whoami` in a loop; a run that exits 0 was
	// acknowledged (its auth.success and command.run are durable).
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Add(1)
		go func(b *harness.Bastion) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r := b.SSH(bob, "whoami"); r.Code == 0 {
					acked.Add(1)
				}
			}
		}(b)
	}
	time.Sleep(2 * time.Second)
	bs[2].Kill()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	// Every acknowledged whoami has its command.run in the one chain.
	var runs int64
	for _, e := range auditEvents(t, bs[0], alice, "--action", "command.run") {
		if e.Actor == "bob" && e.Details["args"] == "whoami" {
			runs++
		}
	}
	if runs < acked.Load() {
		t.Fatalf("%d whoami runs were acknowledged, but only %d command.run events are in the chain", acked.Load(), runs)
	}
	mustOK(t, bs[0].SSH(alice, "audit", "verify"), "audit verify after the kill")

	// C's lease expires; a survivor ends its sessions as replica lost.
	waitFor(t, 60*time.Second, "C's forward to end as replica lost", func() bool {
		r := bs[1].SSH(alice, "sessions", "-o", "json", "--all")
		var ss []store.Session
		if json.Unmarshal([]byte(r.Stdout), &ss) != nil {
			return false
		}
		for _, s := range ss {
			if s.User == "bob" && s.Resource == "echo-svc" && s.Reason == "replica lost" && s.State != "open" {
				return true
			}
		}
		return false
	})
	var lost bool
	for _, e := range auditEvents(t, bs[0], alice, "--action", "session.lost") {
		if e.Target == "echo-svc" && e.Details["user"] == "bob" && e.Reason == "replica lost" && e.Details["replica"] != "" {
			lost = true
		}
	}
	if !lost {
		t.Fatal("no session.lost event for the dead replica's session")
	}
}

// An expiring grant cuts on every replica: the forward is held on B, the
// grant was written on A.
func TestHAExpiringGrantCutsEverywhere(t *testing.T) {
	bs, alice, _ := replicas(t, 2)
	bob := addUser(t, bs[0], alice, "bob")
	echoResource(t, bs[0], alice)
	mustOK(t, bs[0].SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob", "--expires", "6s"), "grant 6s on A")
	c := liveForward(t, bs[1], bob)
	expiry := time.Now().Add(6 * time.Second)
	cut := harness.WaitClosed(t, c, 60*time.Second)
	t.Logf("B's forward cut %s after the grant written on A expired", cut.Sub(expiry))
	if r := bs[1].SSHRun(harness.Run{Key: &bob, Flags: []string{"-W", "echo-svc:7"}}); r.Code == 0 {
		t.Fatal("a new forward on B was allowed after the grant expired")
	}
}

// A kubeconfig issued through replica A works through a tunnel on B (the
// token lives in the store, as a hash), and a kill on A ends it on B.
func TestHAKubeconfigFromAWorksThroughB(t *testing.T) {
	k := harness.StartKube(t)
	bs, alice, _ := replicas(t, 2, kubeCredentialsYAML(k))
	a, b := bs[0], bs[1]
	bob := addUser(t, a, alice, "bob")
	mustOK(t, a.SSH(alice, "resources", "add", "prod", "--kind", "kube", "--address", k.URL,
		"--credentials", "prod", "--kube-group", "act=bastion:prod-users"), "resources add prod")
	mustOK(t, a.SSH(alice, "tuples", "add", "resource:prod#act@user:bob"), "grant bob")
	for _, args := range [][]string{
		{"create", "namespace", "dev"},
		{"-n", "dev", "create", "configmap", "cm-1", "--from-literal=a=b"},
		{"-n", "dev", "create", "role", "reader", "--verb=get,list,watch", "--resource=configmaps"},
		{"-n", "dev", "create", "rolebinding", "bob-reader", "--role=reader", "--user=bob"},
	} {
		if out, err := k.Kubectl(t, k.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	f := b.StartForward(bob, "prod:443") // the tunnel rides B
	port := f.Local[strings.LastIndexByte(f.Local, ':')+1:]
	r := a.SSH(bob, "kubeconfig", "prod", "--port", port) // the token comes from A
	mustOK(t, r, "kubeconfig on A")
	kc := filepath.Join(t.TempDir(), "kc")
	if err := os.WriteFile(kc, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := k.Kubectl(t, kc, "-n", "dev", "get", "cm")
	if err != nil || !strings.Contains(out, "cm-1") {
		t.Fatalf("A's kubeconfig through B's tunnel: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`session (s-[0-9a-f]+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no session id in the kubeconfig:\n%s", r.Stdout)
	}
	mustOK(t, a.SSH(alice, "sessions", "kill", m[1]), "sessions kill on A")
	waitFor(t, 30*time.Second, "B to refuse the killed token", func() bool {
		out, err := k.Kubectl(t, kc, "-n", "dev", "get", "cm")
		return err != nil && strings.Contains(out, "revoked")
	})
}

// kill -9 of one etcd member of three in the middle of load from three
// replicas (each pointed at all members): no user sees an error beyond a
// retry, nothing acknowledged is lost, and the chain verifies.
func TestHAEtcdMemberKill9(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	cfg := fmt.Sprintf("store:\n  backend: etcd\n  etcd:\n    endpoints: [%s]\n    prefix: /ha-member/\n", strings.Join(c.Endpoints(), ", "))
	alice := harness.NewKey(t, t.TempDir(), "alice")
	bs := []*harness.Bastion{harness.Start(t, harness.Options{Admin: "alice", AdminKeys: []harness.Key{alice}, Config: cfg})}
	for i := 1; i < 3; i++ {
		bs = append(bs, harness.Start(t, harness.Options{Config: cfg + "admins: [alice]\n"}))
	}
	bob := addUser(t, bs[0], alice, "bob")
	var acked, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Add(1)
		go func(b *harness.Bastion) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A user retries once, as anyone would after a hiccup.
				r := b.SSH(bob, "whoami")
				if r.Code != 0 {
					r = b.SSH(bob, "whoami")
				}
				if r.Code == 0 {
					acked.Add(1)
				} else {
					failed.Add(1)
					t.Logf("whoami failed twice: %s", r.Stderr)
				}
			}
		}(b)
	}
	time.Sleep(2 * time.Second)
	c.Members[0].Kill(t)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d logins failed even after a retry while one member of three was down", failed.Load())
	}
	var runs int64
	for _, e := range auditEvents(t, bs[1], alice, "--action", "command.run") {
		if e.Actor == "bob" && e.Details["args"] == "whoami" {
			runs++
		}
	}
	if runs < acked.Load() {
		t.Fatalf("%d whoami runs were acknowledged, but only %d command.run events are in the chain", acked.Load(), runs)
	}
	mustOK(t, bs[2].SSH(alice, "audit", "verify"), "audit verify with a member down")
}
