package requests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// States of a request.
const (
	Pending  = "pending"
	Approved = "approved"
	Denied   = "denied"
	Expired  = "expired"
	Dropped  = "dropped"
)

// Store keeps requests.
type Store interface {
	store.AccessRequests
	GetResource(ctx context.Context, name string) (store.Resource, error)
	ListResources(ctx context.Context) ([]store.Resource, error)
}

// Checker is the policy gate.
type Checker interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
	ListObjects(ctx context.Context, subject, relation, objectType string) ([]string, error)
}

// TupleWriter writes grants. The session manager must learn of its writes
// so that a dropped grant cuts its sessions at once: through the store's
// change feed (sessions.Config.Feed), or a wrapper that tells it.
type TupleWriter interface {
	WriteTuples(ctx context.Context, add, del []store.Tuple) error
}

// Auditor records audit events.
type Auditor interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
}

// Config of the service.
type Config struct {
	Host       string        // "ssh -p 2222 localhost", for messages
	DefaultTTL time.Duration // default 1h
	MaxTTL     time.Duration // cap for every grant (default 4h)
	// ProjectMaxTTL caps grants on a project's Resources further.
	ProjectMaxTTL map[string]time.Duration
	// Feed, when set, is the store's change feed, which Run follows: a
	// decision made on any replica wakes Wait at once, and Changes
	// reports every request change. Without it, Wait also re-reads every
	// 5 s to notice decisions made elsewhere, and Changes is nil.
	Feed store.Changes
	// Metrics, if set, counts requests by outcome (nil: nothing).
	Metrics *Metrics
}

// Service runs access requests.
type Service struct {
	cfg    Config
	st     Store
	policy Checker
	tuples TupleWriter
	audit  Auditor
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	waiters map[string][]chan struct{}
	// following is set while Run follows the feed: Wait needs no timer.
	following atomic.Bool
}

// New returns the service; Run must run for grants to be marked expired.
func New(cfg Config, st Store, p Checker, t TupleWriter, a Auditor, log *slog.Logger) *Service {
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = time.Hour
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 4 * time.Hour
	}
	if cfg.Host == "" {
		cfg.Host = "ssh bastion"
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, st: st, policy: p, tuples: t, audit: a, log: log, now: time.Now, waiters: map[string][]chan struct{}{}}
}

func newID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	// Base-36 milliseconds keep ids sortable by creation (8 digits last
	// until 2059) and short enough to type.
	return "r-" + strconv.FormatInt(now.UnixMilli(), 36) + hex.EncodeToString(b[:])
}

func (s *Service) event(ctx context.Context, actor, action string, r store.AccessRequest, reason string, extra map[string]string) {
	s.cfg.Metrics.event(action)
	d := map[string]string{"request": r.ID, "user": r.User, "resources": strings.Join(r.Resources, ","), "state": r.State}
	if r.TTL > 0 {
		d["ttl"] = r.TTL.String()
	}
	for k, v := range extra {
		d[k] = v
	}
	dec := "allow"
	if action == "access_request.denied" {
		dec = "deny"
	}
	if _, err := s.audit.Append(ctx, store.Event{Actor: actor, Action: action, Target: strings.Join(r.Resources, ","), Decision: dec, Reason: reason, Details: d}); err != nil {
		s.log.Error("audit "+action, "err", err)
	}
}

// notify wakes the waiters of a request.
func (s *Service) notify(id string) {
	s.mu.Lock()
	ws := s.waiters[id]
	delete(s.waiters, id)
	s.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// Create files a pending request for act on names.
func (s *Service) Create(ctx context.Context, p authn.Principal, names []string, reason string, ttl time.Duration) (store.AccessRequest, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return store.AccessRequest{}, errors.New("--reason is required: reviewers decide on it (e.g. --reason \"INC-7: restart the API\")")
	}
	if len(reason) > 500 {
		return store.AccessRequest{}, errors.New("--reason is longer than 500 characters")
	}
	if len(names) == 0 {
		return store.AccessRequest{}, fmt.Errorf("name at least one Resource (find them with `%s request search`)", s.cfg.Host)
	}
	if ttl <= 0 {
		ttl = s.cfg.DefaultTTL
	}
	seen := map[string]bool{}
	var res []string
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		r, err := s.st.GetResource(ctx, n)
		if err != nil {
			return store.AccessRequest{}, fmt.Errorf("no Resource %q you may request (see `%s request search`)", n, s.cfg.Host)
		}
		// Only Resources the user may see or request can be asked for:
		// everything else stays invisible, even by name.
		ok, err := s.may(ctx, p, r.Name)
		if err != nil {
			return store.AccessRequest{}, err
		}
		if !ok {
			return store.AccessRequest{}, fmt.Errorf("no Resource %q you may request (see `%s request search`)", n, s.cfg.Host)
		}
		if has, err := s.policy.Check(ctx, p.Subject(), "act", "resource:"+r.Name); err != nil {
			return store.AccessRequest{}, err
		} else if has {
			return store.AccessRequest{}, fmt.Errorf("you already have act on %s: no request is needed", r.Name)
		}
		res = append(res, r.Name)
	}
	// One pending request per user and Resource: a second one would only
	// split the reviewers' attention.
	all, err := s.st.ListAccessRequests(ctx)
	if err != nil {
		return store.AccessRequest{}, err
	}
	for _, old := range all {
		if old.User != p.User || old.State != Pending {
			continue
		}
		for _, n := range old.Resources {
			if slices.Contains(res, n) {
				return store.AccessRequest{}, fmt.Errorf("you already have a pending request for %s: %s; wait for a reviewer (%s request show %s)", n, old.ID, s.cfg.Host, old.ID)
			}
		}
	}
	now := s.now().UTC()
	r := store.AccessRequest{ID: newID(now), User: p.User, Resources: res, Reason: reason, TTL: ttl, State: Pending, Created: now}
	if err := s.st.PutAccessRequest(ctx, r); err != nil {
		return r, err
	}
	s.event(ctx, p.User, "access_request.created", r, reason, nil)
	return r, nil
}

// may reports whether p may request act on a Resource: requestable or view.
func (s *Service) may(ctx context.Context, p authn.Principal, name string) (bool, error) {
	for _, rel := range []string{"requestable", "view"} {
		ok, err := s.policy.Check(ctx, p.Subject(), rel, "resource:"+name)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// Get returns a request the caller may see: their own, or one they may
// review.
func (s *Service) Get(ctx context.Context, p authn.Principal, id string) (store.AccessRequest, error) {
	r, err := s.st.GetAccessRequest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, fmt.Errorf("no request %q (see `%s request list`)", id, s.cfg.Host)
	} else if err != nil {
		return r, err
	}
	if r.User == p.User {
		return r, nil
	}
	if ok, _ := s.reviews(ctx, p, r); ok {
		return r, nil
	}
	return store.AccessRequest{}, fmt.Errorf("no request %q (see `%s request list`)", id, s.cfg.Host)
}

// reviews reports whether p is a reviewer of every Resource of r.
func (s *Service) reviews(ctx context.Context, p authn.Principal, r store.AccessRequest) (bool, string) {
	for _, name := range r.Resources {
		ok, err := s.policy.Check(ctx, p.Subject(), "reviewer", "resource:"+name)
		if err != nil || !ok {
			return false, name
		}
	}
	return true, ""
}

// List returns the caller's own requests and those they may review,
// newest first; pendingOnly keeps the pending ones.
func (s *Service) List(ctx context.Context, p authn.Principal, pendingOnly bool) ([]store.AccessRequest, error) {
	all, err := s.st.ListAccessRequests(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.AccessRequest
	for _, r := range all {
		if pendingOnly && r.State != Pending {
			continue
		}
		if r.User == p.User {
			out = append(out, r)
		} else if ok, _ := s.reviews(ctx, p, r); ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}

// Reviewable returns the pending requests of others that p may decide.
func (s *Service) Reviewable(ctx context.Context, p authn.Principal) ([]store.AccessRequest, error) {
	all, err := s.List(ctx, p, true)
	if err != nil {
		return nil, err
	}
	var out []store.AccessRequest
	for _, r := range all {
		if r.User != p.User {
			out = append(out, r)
		}
	}
	return out, nil
}

// Wait blocks until the request leaves pending (or ctx ends).
func (s *Service) Wait(ctx context.Context, id string) (store.AccessRequest, error) {
	for {
		ch := make(chan struct{})
		s.mu.Lock()
		s.waiters[id] = append(s.waiters[id], ch)
		s.mu.Unlock()
		r, err := s.st.GetAccessRequest(ctx, id)
		if err != nil || r.State != Pending {
			return r, err
		}
		// Following the feed, a decision on any replica wakes ch; else
		// re-read now and then to notice decisions made elsewhere.
		var poll <-chan time.Time
		if !s.following.Load() {
			poll = time.After(5 * time.Second)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.forget(id, ch)
			return r, ctx.Err()
		case <-poll:
			s.forget(id, ch)
		}
	}
}

// forget removes a waiter that stopped waiting.
func (s *Service) forget(id string, ch chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[id]
	for i, w := range ws {
		if w == ch {
			s.waiters[id] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(s.waiters[id]) == 0 {
		delete(s.waiters, id)
	}
}
