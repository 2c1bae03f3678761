package stepup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Keys is where step-ups are kept: on the key record of the connection's
// key, so that every replica sees them.
type Keys interface {
	KeyByFingerprint(ctx context.Context, fingerprint string) (store.Key, error)
	UpdateKey(ctx context.Context, fingerprint string, fn func(*store.Key) error) error
}

// Login is one login as the step-up rules see it.
type Login struct {
	// Method is how the person logged in: sk, oidc, publickey, cert, or
	// step-up (an IdP login through `ssh bastion step-up`).
	Method string    `json:"method"`
	At     time.Time `json:"auth_time"`
	ACR    string    `json:"acr,omitempty"`
	AMR    []string  `json:"amr,omitempty"`
	MFA    bool      `json:"mfa"`
	Strong bool      `json:"strong"`
	// Until bounds a remembered step-up (step_up.remember); zero for the
	// connection's own login.
	Until time.Time `json:"until,omitzero"`
}

// lookupTimeout bounds the store read of one check.
const lookupTimeout = 5 * time.Second

// Service checks requirements and keeps step-ups.
type Service struct {
	cfg  Config
	keys Keys
	host string // how users reach the bastion, for messages
	now  func() time.Time

	// conns keeps the step-ups of connections whose key has no record
	// (certificate logins, device logins without a key): they hold for
	// that connection only, on this replica.
	mu    sync.Mutex
	conns map[string]Login
}

// New returns the service. keys may be nil (then step-ups are kept per
// connection only).
func New(cfg Config, keys Keys, host string, now func() time.Time) *Service {
	if cfg.Remember <= 0 {
		cfg.Remember = DefaultRemember
	}
	if now == nil {
		now = time.Now
	}
	if host == "" {
		host = "ssh bastion"
	}
	return &Service{cfg: cfg, keys: keys, host: host, now: now, conns: map[string]Login{}}
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Own is the connection's own login.
func Own(p authn.Principal) Login {
	return Login{Method: p.Method, At: p.AuthTime, ACR: p.ACR, AMR: p.AMR, MFA: p.MFA, Strong: p.Strong()}
}

// candidates are the strong logins that may satisfy a requirement for p,
// and p's own login (first).
func (s *Service) candidates(ctx context.Context, p authn.Principal) ([]Login, error) {
	own := Own(p)
	out := []Login{own}
	now := s.now()
	s.mu.Lock()
	if l, ok := s.conns[p.SessionID]; ok && p.SessionID != "" && now.Before(l.Until) {
		out = append(out, l)
	}
	s.mu.Unlock()
	if s.keys == nil || p.KeyFingerprint == "" {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	k, err := s.keys.KeyByFingerprint(ctx, p.KeyFingerprint)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return out, nil
	case err != nil:
		return out, fmt.Errorf("the store cannot say when you last stepped up: %v", err)
	}
	// Only the key's own user's step-ups count: a record that changed
	// hands says nothing about this person.
	if k.User == p.User && !k.StrongAuthTime.IsZero() && now.Before(k.StrongUntil) && !k.Expired(now) {
		out = append(out, Login{Method: k.StrongMethod, At: k.StrongAuthTime, ACR: k.StrongACR, AMR: k.StrongAMR,
			MFA: authn.AMRIsMFA(k.StrongAMR), Strong: true, Until: k.StrongUntil})
	}
	return out, nil
}

// deadline is when l stops satisfying need (zero time: never), and
// whether it satisfies it at all.
func deadline(l Login, need Requirement) (time.Time, bool) {
	if !l.Strong || need.Impossible {
		return time.Time{}, false
	}
	if len(need.ACR) > 0 && !slices.Contains(need.ACR, l.ACR) {
		return time.Time{}, false
	}
	var until time.Time
	if need.MaxAge > 0 {
		until = l.At.Add(need.MaxAge)
	}
	if !l.Until.IsZero() && (until.IsZero() || l.Until.Before(until)) {
		until = l.Until
	}
	return until, true
}

// Decision is the answer for one session.
type Decision struct {
	Need Requirement
	// OK: the session may open. Until is when it must be satisfied again
	// (zero: never, or nothing was required).
	OK    bool
	Until time.Time
	// Have is the login that satisfied it, or else the best the caller
	// has: the latest strong login, or their own.
	Have Login
	// Err is set when the facts could not be read (refused: fail closed).
	Err error
}

// Check decides whether p may open a session of kind to r now.
func (s *Service) Check(ctx context.Context, p authn.Principal, kind string, r store.Resource) Decision {
	need, err := s.cfg.For(kind, r.Name, r.Project, r.StepUp)
	if err != nil {
		return Decision{Err: err, Have: Own(p)}
	}
	return s.CheckNeed(ctx, p, need)
}

// CheckNeed decides need for p now.
func (s *Service) CheckNeed(ctx context.Context, p authn.Principal, need Requirement) Decision {
	if need.IsZero() {
		return Decision{OK: true, Have: Own(p)}
	}
	cands, err := s.candidates(ctx, p)
	d := Decision{Need: need, Have: cands[0], Err: err}
	if err != nil {
		return d
	}
	now := s.now()
	best := -1
	var bestUntil time.Time
	for i, l := range cands {
		until, ok := deadline(l, need)
		if !ok || (!until.IsZero() && !now.Before(until)) {
			continue
		}
		if best < 0 || until.IsZero() || (!bestUntil.IsZero() && until.After(bestUntil)) {
			best, bestUntil = i, until
		}
	}
	if best >= 0 {
		d.OK, d.Until, d.Have = true, bestUntil, cands[best]
		return d
	}
	// Refused: report the latest strong login, else the plain one.
	for _, l := range cands {
		if l.Strong && (!d.Have.Strong || l.At.After(d.Have.At)) {
			d.Have = l
		}
	}
	return d
}

// Last is the caller's latest strong login (or their own login when they
// have none), for whoami.
func (s *Service) Last(ctx context.Context, p authn.Principal) (Login, error) {
	cands, err := s.candidates(ctx, p)
	best := cands[0]
	for _, l := range cands[1:] {
		if l.Strong && (!best.Strong || l.At.After(best.At)) {
			best = l
		}
	}
	return best, err
}

// Renew is the re-check of a live session whose step-up deadline came:
// the new deadline, or false if nothing satisfies need any more.
func (s *Service) Renew(ctx context.Context, p authn.Principal, need Requirement) (time.Time, bool) {
	d := s.CheckNeed(ctx, p, need)
	return d.Until, d.OK && d.Err == nil
}

// Remember keeps a step-up l (an IdP login through `step-up`) for p's key,
// until now + step_up.remember. It is kept on the key record when the key
// has one (every replica and every new connection with the key see it),
// else for this connection only; perConn says which.
func (s *Service) Remember(ctx context.Context, p authn.Principal, l Login) (until time.Time, perConn bool, err error) {
	until = s.now().Add(s.cfg.Remember).UTC()
	l.Until, l.Strong = until, true
	if s.keys != nil && p.KeyFingerprint != "" {
		// Written in place (UpdateKey): a key removed meanwhile by
		// `keys rm` stays removed, and a key that now belongs to
		// another user is not touched.
		errOther := errors.New("the key belongs to another user")
		err := s.keys.UpdateKey(ctx, p.KeyFingerprint, func(k *store.Key) error {
			if k.User != p.User {
				return errOther
			}
			k.StrongAuthTime, k.StrongMethod, k.StrongACR, k.StrongAMR, k.StrongUntil = l.At.UTC(), l.Method, l.ACR, l.AMR, until
			return nil
		})
		switch {
		case err == nil:
			return until, false, nil
		case errors.Is(err, store.ErrNotFound), errors.Is(err, errOther):
			// No key record of this user (a certificate login): the
			// step-up is kept for this connection only, below.
		default:
			return time.Time{}, false, fmt.Errorf("the store cannot keep the step-up: %v", err)
		}
	}
	if p.SessionID == "" {
		return time.Time{}, false, errors.New("this connection has no id to keep the step-up for")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, c := range s.conns {
		if !now.Before(c.Until) {
			delete(s.conns, id)
		}
	}
	s.conns[p.SessionID] = l
	return until, true, nil
}
