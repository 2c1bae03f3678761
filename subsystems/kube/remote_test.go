package kube

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// pipeChannel is an ssh channel over a pipe, for tunnel connections.
type pipeChannel struct{ net.Conn }

func (pipeChannel) CloseWrite() error                                    { return nil }
func (pipeChannel) SendRequest(string, bool, []byte) (bool, error)       { return false, nil }
func (pipeChannel) Stderr() io.ReadWriter                                { return &bytes.Buffer{} }
func newChannel() (pipeChannel, net.Conn)                                { a, b := net.Pipe(); return pipeChannel{a}, b }
func (f *fakeAudit) AppendAll(_ context.Context, es []store.Event) error { return nil }

type fakeAudit struct{}

func (*fakeAudit) Append(_ context.Context, e store.Event) (store.Event, error) { return e, nil }

// A kubeconfig issued through replica A works through a tunnel on B (the
// store keeps its hash), only for its user and Resource; B's use is
// recorded for A's idle clock; and when the session is killed anywhere,
// the token dies on B too, closing B's tunnel within a second.
func TestKubeconfigFromAWorksThroughB(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kc := filepath.Join(t.TempDir(), "kc")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	prod := store.Resource{Name: "prod", Kind: "kube", Address: "https://127.0.0.1:1", Origin: store.OriginConfig,
		Kube: &store.KubeSpec{Kubeconfig: kc, Context: "x"}}
	if err := st.PutResource(ctx, prod); err != nil {
		t.Fatal(err)
	}
	reps := badger.NewReplicas()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	replica := func(id string) (*Module, *sessions.Manager) {
		sm := sessions.New(sessions.Config{ReplicaID: id, Feed: st, Replicas: reps, SweepInterval: time.Hour}, st, allowAll{}, nil, quiet)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { sm.Run(rctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		m, err := New(Config{Host: "ssh bastion", Tokens: st, Feed: st}, st, allowAll{}, sm, &fakeAudit{}, quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m, sm
	}
	a, _ := replica("a")
	b, smB := replica("b")
	for !b.following.Load() {
		time.Sleep(time.Millisecond)
	}

	alice := authn.Principal{User: "alice", Groups: []string{"ops"}}
	var out, errOut bytes.Buffer
	if err := a.issue(ctx, alice, "prod", 6443, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	mt := regexp.MustCompile(`token: (sbk_\S+)`).FindStringSubmatch(out.String())
	if mt == nil {
		t.Fatalf("no token in the kubeconfig:\n%s", out.String())
	}
	tok := mt[1]
	req := func(tok string) *http.Request {
		r, _ := http.NewRequest("GET", "https://127.0.0.1:6443/api", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	tunnel := func(p authn.Principal) (*tunnelConn, net.Conn) {
		ch, peer := newChannel()
		return newTunnelConn(ch, p, prod), peer
	}

	cB, peer := tunnel(authn.Principal{User: "alice"})
	g, code, deny := b.authorize(cB, req(tok))
	if deny != "" || g == nil || g.live != nil {
		t.Fatalf("B refused A's token: %d %s", code, deny)
	}
	if g.p.User != "alice" || len(g.p.Groups) != 1 || g.p.Groups[0] != "ops" || g.session == "" {
		t.Fatalf("B's grant: %+v", g)
	}
	if _, code, deny := b.authorize(cB, req(tok)); deny != "" {
		t.Fatalf("B's second request: %d %s", code, deny)
	}
	// Someone else's tunnel, an unknown token: refused.
	cE, _ := tunnel(authn.Principal{User: "eve"})
	if _, _, deny := b.authorize(cE, req(tok)); !strings.Contains(deny, "issued to another user") {
		t.Fatalf("eve's tunnel with alice's token: %q", deny)
	}
	if _, _, deny := b.authorize(cB, req("sbk_nothing")); !strings.Contains(deny, "unknown token") {
		t.Fatalf("an unknown token: %q", deny)
	}
	// B's use reaches the store, for A's idle clock.
	b.touch(g)
	waitFor(t, "B's use recorded", func() bool {
		kt, err := st.KubeToken(ctx, store.TokenHash(tok))
		return err == nil && !kt.Used.IsZero()
	})

	// Killed from B (A holds the session): the token dies on B and B's
	// tunnel closes.
	start := time.Now()
	if _, err := smB.Kill(g.session); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, peer); close(closed) }()
	select {
	case <-closed:
		t.Logf("B's tunnel closed %s after the kill", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("B's tunnel still open 1 s after the session was killed")
	}
	cB2, _ := tunnel(authn.Principal{User: "alice"})
	if _, _, deny := b.authorize(cB2, req(tok)); !strings.Contains(deny, "revoked") {
		t.Fatalf("after the kill, B answers %q", deny)
	}
	// A learns of the kill through the feed: wait for it, boundedly.
	waitFor(t, "A to refuse the killed token", func() bool {
		_, _, deny := a.authorize(cB2, req(tok))
		return strings.Contains(deny, "revoked")
	})
	waitFor(t, "the ended token removed from the store", func() bool {
		_, err := st.KubeToken(ctx, store.TokenHash(tok))
		return err != nil
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2 s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
