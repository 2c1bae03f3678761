package kube

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// grant is what one kubeconfig token stands for: a user, a Resource and
// the session whose lifetime (TTL, idle, revocation) is the token's.
//
// A local grant's session is live here (live is set) and ends it through
// the session's Closer. A remote grant (remote.go) stands for a token
// issued through another replica, found in the store: its session is held
// there, and it ends when the session's record ends, which the feed says.
type grant struct {
	p       authn.Principal
	r       store.Resource
	live    *sessions.Live // nil for a remote grant
	hash    string         // store.TokenHash of the token
	session string         // the session's id

	mu     sync.Mutex
	ended  time.Time
	reason string
	conns  map[*tunnelConn]struct{}

	// Remote grants only: the session's idle timeout, and when this
	// replica last told the holder that the token is in use.
	idle    time.Duration
	touched time.Time
}

// end is the session's Closer: the token stops working and every tunnel
// connection that used it is closed.
func (g *grant) end(reason string) {
	g.mu.Lock()
	if g.ended.IsZero() {
		g.ended, g.reason = time.Now(), reason
	}
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

// tokens holds the grants by their token's SHA-256 (store.TokenHash): the
// tokens themselves are never kept, so a memory dump or log line cannot
// replay them. Remote grants are indexed by session too, so that a change
// of a session's record finds them.
type tokens struct {
	mu        sync.Mutex
	grants    map[string]*grant
	bySession map[string][]*grant // remote grants only
}

const tokenPrefix = "sbk_"

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// add keeps a local grant under tok's hash (g.hash, set if empty).
func (t *tokens) add(tok string, g *grant) {
	if g.hash == "" {
		g.hash = store.TokenHash(tok)
	}
	t.put(g)
}

// put keeps g under g.hash and returns the grant kept: for a remote one,
// a live remote grant of the same hash already kept wins, so that
// concurrent first uses share one.
func (t *tokens) put(g *grant) *grant {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.grants == nil {
		t.grants, t.bySession = map[string]*grant{}, map[string][]*grant{}
	}
	// Forget grants that ended a day ago; until then they answer with
	// why they ended rather than "unknown token".
	for k, old := range t.grants {
		if e, _ := old.state(); !e.IsZero() && time.Since(e) > 24*time.Hour {
			t.dropLocked(k)
		}
	}
	if old := t.grants[g.hash]; old != nil && old.live == nil && g.live == nil {
		if e, _ := old.state(); e.IsZero() {
			return old
		}
		t.dropLocked(g.hash)
	}
	t.grants[g.hash] = g
	if g.live == nil {
		t.bySession[g.session] = append(t.bySession[g.session], g)
	}
	return g
}

func (t *tokens) get(tok string) *grant { return t.byHash(store.TokenHash(tok)) }

func (t *tokens) byHash(h string) *grant {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.grants[h]
}

// drop forgets the grant of hash h.
func (t *tokens) drop(h string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(h)
}

func (t *tokens) dropLocked(h string) {
	g := t.grants[h]
	if g == nil {
		return
	}
	delete(t.grants, h)
	if g.live == nil {
		gs := t.bySession[g.session]
		for i, x := range gs {
			if x == g {
				gs = append(gs[:i], gs[i+1:]...)
				break
			}
		}
		if len(gs) == 0 {
			delete(t.bySession, g.session)
		} else {
			t.bySession[g.session] = gs
		}
	}
}

// remote returns the remote grants of session id ("" for all of them).
func (t *tokens) remote(id string) []*grant {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id != "" {
		return append([]*grant(nil), t.bySession[id]...)
	}
	var out []*grant
	for _, gs := range t.bySession {
		out = append(out, gs...)
	}
	return out
}
