package sessions

import (
	"context"
	"errors"
	"time"

	"github.com/sshbastion/bastion/store"
)

// settle is when a policy change is re-checked a second time: the tuple
// cache and the model follow the same feed on watches of their own, whose
// deliveries may come a moment after this one's.
const settle = 50 * time.Millisecond

// follow applies the feed until ctx ends, watching again whenever the
// channel closes under it. Whenever a watch opens, every live session is
// re-checked, since changes may have been missed while none was open.
func (m *Manager) follow(ctx context.Context) {
	store.Follow(ctx, m.cfg.Feed, store.Follower{
		Opened: func(ctx context.Context) {
			m.policyChangedElsewhere()
			m.recheckRecords(ctx)
		},
		Change: m.apply,
		Closed: func() { m.log.Warn("sessions: the change feed ended; watching again") },
		Failed: func(err error) { m.log.Warn("sessions: cannot follow the store's changes", "err", err) },
	})
}

// apply acts on one change.
func (m *Manager) apply(ctx context.Context, c store.Change) {
	switch c.Kind {
	case store.KindTuple, store.KindModel:
		m.policyChangedElsewhere()
	case store.KindReset:
		m.policyChangedElsewhere()
		m.recheckRecords(ctx)
	case store.KindSession:
		m.recordChanged(ctx, c.Key)
	}
}

// policyChangedElsewhere re-checks every live session now, and once more
// a moment later (see settle).
func (m *Manager) policyChangedElsewhere() {
	m.PolicyChanged()
	if m.settled.CompareAndSwap(false, true) {
		time.AfterFunc(settle, func() {
			m.settled.Store(false)
			m.PolicyChanged()
		})
	}
}

// recordChanged cuts a session live here whose record says it ended: a
// kill or a reap written by another replica. Writes of this process's
// own are no-ops: End forgets a session before it writes its record.
func (m *Manager) recordChanged(ctx context.Context, id string) {
	m.mu.Lock()
	l := m.live[id]
	m.mu.Unlock()
	if l == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	s, err := m.store.GetSession(rctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Nobody may hold open what has no record.
		m.End(l, ReasonRevoked)
	case err != nil:
		if ctx.Err() == nil {
			m.log.Warn("sessions: cannot read a changed session record", "session", id, "err", err)
		}
	case s.State != "open":
		reason := s.Reason
		if reason == "" {
			reason = ReasonRevoked
		}
		m.log.Info("ending a session: its record was ended elsewhere", "session", id, "state", s.State, "reason", reason)
		m.End(l, reason)
	}
}

// recheckRecords re-reads the record of every live session.
func (m *Manager) recheckRecords(ctx context.Context) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.live))
	for id := range m.live {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		m.recordChanged(ctx, id)
	}
}
