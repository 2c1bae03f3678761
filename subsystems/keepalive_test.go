package subsystems

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// freezable is a client-side conn whose reads can be stopped, as a peer
// that vanished without closing its socket.
type freezable struct {
	net.Conn
	mu     sync.Mutex
	frozen bool
}

func (f *freezable) Read(p []byte) (int, error) {
	for {
		f.mu.Lock()
		fr := f.frozen
		f.mu.Unlock()
		if !fr {
			return f.Conn.Read(p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKeepaliveClosesDeadPeers(t *testing.T) {
	alice := newSigner(t)
	fp := gossh.FingerprintSHA256(alice.PublicKey())
	mk := &memKeys{keys: map[string]store.Key{fp: {Fingerprint: fp, User: "alice"}}, users: map[string]store.User{"alice": {Name: "alice"}}}
	srv, err := New(Config{HostSigners: []gossh.Signer{newSigner(t)}, KeepaliveInterval: 200 * time.Millisecond, KeepaliveCountMax: 2},
		NewTable(), &authn.PublicKeys{Store: mk}, &memAudit{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fc := &freezable{Conn: raw}
	c, chans, reqs, err := gossh.NewClientConn(fc, "x", &gossh.ClientConfig{User: "x", Auth: []gossh.AuthMethod{gossh.PublicKeys(alice)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	client := gossh.NewClient(c, chans, reqs)
	defer client.Close()
	if got := testutil.ToFloat64(srv.metrics.active); got != 1 {
		t.Fatalf("active connections = %v, want 1", got)
	}
	// A live peer answers keepalives and stays connected.
	time.Sleep(time.Second)
	if got := testutil.ToFloat64(srv.metrics.active); got != 1 {
		t.Fatalf("a live peer was dropped: active = %v", got)
	}
	fc.mu.Lock()
	fc.frozen = true
	fc.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(srv.metrics.active) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server kept a dead peer's connection open")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
