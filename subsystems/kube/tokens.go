package kube

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// grant is what one kubeconfig token stands for: a user, a Resource and
// the session whose lifetime (TTL, idle, revocation) is the token's.
type grant struct {
	p    authn.Principal
	r    store.Resource
	live *sessions.Live

	mu     sync.Mutex
	ended  time.Time
	reason string
	conns  map[*tunnelConn]struct{}
}

// end is the session's Closer: the token stops working and every tunnel
// connection that used it is closed.
func (g *grant) end(reason string) {
	g.mu.Lock()
	g.ended, g.reason = time.Now(), reason
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	for c := range conns {
		c.close()
	}
}

// state reports whether the grant still holds, and if not, why.
func (g *grant) state() (ended time.Time, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ended, g.reason
}

// attach ties a tunnel connection to the grant, so that ending the grant
// closes it. It reports false when the grant has already ended.
func (g *grant) attach(c *tunnelConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.ended.IsZero() {
		return false
	}
	if g.conns == nil {
		g.conns = map[*tunnelConn]struct{}{}
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *grant) detach(c *tunnelConn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

// tokens holds the issued tokens by their SHA-256: the tokens themselves
// are never kept, so a memory dump or log line cannot replay them.
type tokens struct {
	mu     sync.Mutex
	grants map[[32]byte]*grant
}

const tokenPrefix = "sbk_"

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func (t *tokens) add(tok string, g *grant) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.grants == nil {
		t.grants = map[[32]byte]*grant{}
	}
	// Forget grants that ended a day ago; until then they answer with
	// why they ended rather than "unknown token".
	for k, old := range t.grants {
		if e, _ := old.state(); !e.IsZero() && time.Since(e) > 24*time.Hour {
			delete(t.grants, k)
		}
	}
	t.grants[sha256.Sum256([]byte(tok))] = g
}

func (t *tokens) get(tok string) *grant {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.grants[sha256.Sum256([]byte(tok))]
}
