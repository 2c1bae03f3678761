package sessions

// The sweeper: re-checks of live sessions against TTL, idle timeout,
// policy and step-up deadlines.

import (
	"context"
	"time"

	"github.com/sshbastion/bastion/subsystems"
)

// sweep ends sessions past their TTL, idle too long, or whose granting
// relation no longer holds. A policy error also ends the session: fail
// closed rather than keep access nobody can confirm.
func (m *Manager) sweep(ctx context.Context) {
	now := m.now()
	for _, l := range m.lives() {
		s := l.Snapshot()
		switch {
		case !now.Before(s.Expires):
			m.End(l, ReasonTTL)
			continue
		case s.IdleTimeout > 0 && now.Sub(time.Unix(0, l.lastActive.Load())) >= s.IdleTimeout:
			m.End(l, ReasonIdle)
			continue
		case m.stepUpLapsed(ctx, l, now):
			m.End(l, ReasonStepUpExpired)
			continue
		}
		dctx := subsystems.DecisionContextFor(ctx, l.who, sessionKind(s.Kind), now)
		ok, err := m.policy.Check(dctx, "user:"+s.User, l.relation, l.object)
		if err != nil && ctx.Err() != nil {
			return
		}
		if err != nil || !ok {
			if err != nil {
				m.log.Warn("ending session: policy check failed", "session", s.ID, "err", err)
			}
			m.End(l, ReasonPolicy)
		}
	}
}

// stepUpLapsed reports whether l outlived its step-up: its deadline came
// and no newer strong login satisfies its requirement. The store is read
// only when a deadline comes, not at every sweep.
func (m *Manager) stepUpLapsed(ctx context.Context, l *Live, now time.Time) bool {
	l.mu.Lock()
	until, renew := l.stepUpUntil, l.stepUpRenew
	l.mu.Unlock()
	if until.IsZero() || now.Before(until) {
		return false
	}
	if renew == nil {
		return true
	}
	next, ok := renew(ctx)
	if !ok || (!next.IsZero() && !now.Before(next)) {
		return true
	}
	l.mu.Lock()
	l.stepUpUntil = next
	l.mu.Unlock()
	return false
}

// sessionKind is the request context's session_kind of a session of
// kind k (Request.Kind).
func sessionKind(k string) string {
	switch k {
	case "forward":
		return subsystems.KindTCP
	case "shell":
		return subsystems.KindSSH
	}
	return k // "kube", "sftp"
}
