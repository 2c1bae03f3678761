package kube

import (
	"context"
	"errors"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// Tokens across replicas: with Config.Tokens, every token's hash is kept
// in the store with its user, groups, Resource and session, so that a
// tunnel on any replica accepts a kubeconfig issued through another. The
// replica that issued it holds the session; the others serve the token
// as a remote grant, which ends when the session's record ends (the feed
// says so: a kill, the TTL, a lost grant, the holder lost), and tell the
// holder that the token is in use (KubeToken.Used), which it counts
// against the session's idle timeout.

// TokenStore keeps kube tokens and reads session records.
type TokenStore interface {
	store.KubeTokens
	GetSession(ctx context.Context, id string) (store.Session, error)
}

const (
	// touchEvery bounds how often a remote grant's use is written (at
	// most a third of the session's idle timeout).
	touchEvery   = 30 * time.Second
	storeTimeout = 5 * time.Second
	// reasonFeedLost ends remote grants when the feed ends: without it a
	// revocation would go unseen. Their tokens are checked again in the
	// store at the next request once the feed is back.
	reasonFeedLost = "this replica lost the store's change feed"
)

// storeToken keeps a local grant's token in the store.
func (m *Module) storeToken(ctx context.Context, g *grant, expires time.Time) error {
	if m.cfg.Tokens == nil {
		return nil
	}
	return m.cfg.Tokens.PutKubeToken(ctx, store.KubeToken{Hash: g.hash, User: g.p.User, Groups: g.p.Groups,
		Resource: g.r.Name, Session: g.session, Created: time.Now().UTC(), Expires: expires.UTC()})
}

// closer is the Closer of a local grant's session: the grant ends, and its
// stored token goes (off the caller's goroutine: End must not wait on the
// store).
func (m *Module) closer(g *grant) func(string) {
	return func(reason string) {
		g.end(reason)
		if m.cfg.Tokens == nil {
			return
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			defer cancel()
			if err := m.cfg.Tokens.DeleteKubeToken(ctx, g.hash); err != nil {
				m.log.Warn("kube: cannot remove an ended token from the store", "err", err)
			}
		}()
	}
}

// remoteGrant finds tok in the store. It returns nil and no message when
// the store does not know it, and a message when it cannot be checked now.
func (m *Module) remoteGrant(ctx context.Context, tok string) (*grant, string) {
	if m.cfg.Tokens == nil {
		return nil, ""
	}
	if !m.following.Load() {
		return nil, "bastion: this replica does not follow the store's changes right now, so it cannot accept a kubeconfig issued through another replica; try again shortly"
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	h := store.TokenHash(tok)
	kt, err := m.cfg.Tokens.KubeToken(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ""
	} else if err != nil {
		return nil, "bastion: the store cannot be reached to check this token (" + err.Error() + "); try again"
	}
	s, err := m.cfg.Tokens.GetSession(ctx, kt.Session)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ""
	} else if err != nil {
		return nil, "bastion: the store cannot be reached to check this token (" + err.Error() + "); try again"
	}
	g := &grant{p: authn.Principal{User: kt.User, Groups: kt.Groups}, r: store.Resource{Name: kt.Resource},
		hash: h, session: kt.Session, idle: s.IdleTimeout}
	g = m.tokens.put(g)
	// Once kept, the feed ends it; a change that came between the read
	// and now is caught by reading again.
	m.recheck(ctx, g)
	return g, ""
}

// recheck ends a remote grant whose session's record no longer is open.
func (m *Module) recheck(ctx context.Context, g *grant) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	s, err := m.cfg.Tokens.GetSession(ctx, g.session)
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.end(sessions.ReasonRevoked)
	case err != nil:
		m.log.Warn("kube: cannot read the session of a token", "session", g.session, "err", err)
	case s.State != "open":
		reason := s.Reason
		if reason == "" {
			reason = sessions.ReasonRevoked
		}
		g.end(reason)
	case !time.Now().Before(s.Expires):
		g.end(sessions.ReasonTTL)
	}
}

// touch tells the session's holder that a remote grant is in use, now and
// then.
func (m *Module) touch(g *grant) {
	every := touchEvery
	if g.idle > 0 && g.idle/3 < every {
		every = g.idle / 3
	}
	g.mu.Lock()
	if !g.ended.IsZero() || time.Since(g.touched) < every {
		g.mu.Unlock()
		return
	}
	g.touched = time.Now()
	g.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		kt, err := m.cfg.Tokens.KubeToken(ctx, g.hash)
		if err != nil {
			return // gone: its session ended
		}
		kt.Used = time.Now().UTC()
		if err := m.cfg.Tokens.PutKubeToken(ctx, kt); err != nil {
			m.log.Warn("kube: cannot record a token's use", "session", g.session, "err", err)
		}
	}()
}

// follow applies the feed until ctx ends, watching again whenever it
// closes. While no watch is open, remote tokens are refused.
func (m *Module) follow(ctx context.Context) {
	defer close(m.followed)
	unfollow := func() {
		m.following.Store(false)
		for _, g := range m.tokens.remote("") {
			g.end(reasonFeedLost)
			m.tokens.drop(g.hash)
		}
	}
	store.Follow(ctx, m.cfg.Feed, store.Follower{
		Opened: func(ctx context.Context) {
			m.following.Store(true)
			for _, g := range m.tokens.remote("") {
				m.recheck(ctx, g)
			}
		},
		Change: m.apply,
		Closed: func() {
			unfollow()
			m.log.Warn("kube: the change feed ended; tokens of other replicas are refused until it is back")
		},
		Failed: func(err error) { m.log.Warn("kube: cannot follow the store's changes", "err", err) },
	})
	unfollow()
}

func (m *Module) apply(ctx context.Context, c store.Change) {
	switch c.Kind {
	case store.KindSession:
		for _, g := range m.tokens.remote(c.Key) {
			m.recheck(ctx, g)
		}
	case store.KindKubeToken:
		g := m.tokens.byHash(c.Key)
		switch {
		case g == nil:
		case g.live == nil && c.Deleted:
			g.end(sessions.ReasonRevoked)
		case g.live != nil && !c.Deleted:
			// Another replica served the token: activity of the session.
			g.live.CountIn(0)
		}
	case store.KindReset:
		for _, g := range m.tokens.remote("") {
			m.recheck(ctx, g)
		}
	}
}
