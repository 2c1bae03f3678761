package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/sshbastion/bastion/store"
)

// What reaches sessions held by other replicas: their records are in the
// shared store, and a kill is a write of the record, which the holder sees
// on its feed (see follow) and acts on by cutting the channels.

// ErrNoSession is returned by Kill for unknown or finished sessions.
var ErrNoSession = errors.New("no such live session")

// storeTimeout bounds the store calls of Get and Kill, which take no
// context.
const storeTimeout = 10 * time.Second

// Kill revokes a live session: here, by ending it; held by another live
// replica, by writing its record as revoked, which that replica sees on
// its feed and cuts the session within a second. The returned record is
// the one written.
func (m *Manager) Kill(id string) (store.Session, error) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		m.End(l, ReasonRevoked)
		return l.Snapshot(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	s, held, err := m.remote(ctx, id)
	if err != nil {
		return store.Session{}, fmt.Errorf("%w: %v", ErrNoSession, err)
	}
	if !held {
		return store.Session{}, ErrNoSession
	}
	s.State, s.Closed, s.Reason = "revoked", m.now().UTC(), ReasonRevoked
	if err := m.store.PutSession(ctx, s); err != nil {
		return store.Session{}, fmt.Errorf("recording the revocation: %w", err)
	}
	return s, nil
}

// Get returns a live session, held here or by another live replica.
func (m *Manager) Get(id string) (store.Session, bool) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l != nil {
		return l.Snapshot(), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	s, held, err := m.remote(ctx, id)
	if err != nil || !held {
		return store.Session{}, false
	}
	return s, true
}

// remote reads the record of a session that is not live here and reports
// whether another live replica holds it.
func (m *Manager) remote(ctx context.Context, id string) (store.Session, bool, error) {
	if m.cfg.Replicas == nil {
		return store.Session{}, false, nil
	}
	s, err := m.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return s, false, nil
	} else if err != nil {
		return s, false, err
	}
	if !m.elsewhere(s) {
		return s, false, nil
	}
	live, err := m.cfg.Replicas.Live(ctx)
	if err != nil {
		return s, false, err
	}
	return s, slices.Contains(live, s.Replica), nil
}

// elsewhere reports whether a record says another replica holds it open.
func (m *Manager) elsewhere(s store.Session) bool {
	return s.State == "open" && s.Replica != "" && s.Replica != m.cfg.ReplicaID
}

// List returns live sessions (of user, or all if user is "") and, from the
// store, recently ended ones, newest first. With Replicas, the live
// sessions of every replica are listed; an open record whose replica is
// not live (it died, or this process restarted) shows as "lost" among the
// ended ones.
func (m *Manager) List(ctx context.Context, user string, includeEnded bool) ([]store.Session, error) {
	seen := map[string]bool{}
	var out []store.Session
	m.mu.Lock()
	for _, l := range m.live {
		s := l.Snapshot()
		if user == "" || s.User == user {
			out = append(out, s)
			seen[s.ID] = true
		}
	}
	m.mu.Unlock()
	if includeEnded || m.cfg.Replicas != nil {
		all, err := m.store.ListSessions(ctx)
		if err != nil {
			return nil, err
		}
		var live []string
		if m.cfg.Replicas != nil && slices.ContainsFunc(all, m.elsewhere) {
			if live, err = m.cfg.Replicas.Live(ctx); err != nil {
				return nil, err
			}
		}
		for _, s := range all {
			if seen[s.ID] || (user != "" && s.User != user) {
				continue
			}
			if s.State == "open" && !(m.elsewhere(s) && slices.Contains(live, s.Replica)) {
				// Open in the store but held by nobody alive: the process
				// that ran it is gone (crash or restart).
				s.State = "lost"
			}
			if s.State == "open" || includeEnded {
				out = append(out, s)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Opened.After(out[j].Opened) })
	return out, nil
}
