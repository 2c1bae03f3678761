package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Close reasons, as they appear in the audit log.
const (
	ReasonClientClosed = "client closed"
	ReasonTargetClosed = "target closed"
	ReasonTTL          = "ttl expired"
	ReasonIdle         = "idle timeout"
	ReasonRevoked      = "revoked"
	ReasonPolicy       = "policy change"
	ReasonShutdown     = "shutdown"
	// ReasonReplicaLost: the replica that held the session died (its
	// lease expired); a surviving replica ended the record.
	ReasonReplicaLost = "replica lost"
	// ReasonStoreLost ends the sessions of a replica that could not reach
	// its store for longer than store.lost_grace.
	ReasonStoreLost = "store lost"
	// ReasonCertExpired: the certificate the user logged in with expired
	// (the server core ends the connection's sessions with it).
	ReasonCertExpired = "certificate expired"
	// ReasonStepUpExpired: the session outlived the strong login its
	// step-up requirement accepted, and no newer one satisfies it (see
	// subsystems/stepup). Newer reasons are their stable code.
	ReasonStepUpExpired = "step_up_expired"
)

// Checker is the policy question a live session keeps asking.
type Checker interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
}

// Auditor records audit events.
type Auditor interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
}

// Config holds session lifetimes, and what ties this process to the other
// replicas sharing its store.
type Config struct {
	TTL         time.Duration // default 30 m
	MaxTTL      time.Duration // cap, default 4 h
	IdleTimeout time.Duration // default 15 m
	// SweepInterval is how often live sessions are re-checked (default
	// 250 ms, so that cut-offs land well within a second). The sweep is
	// what ends sessions whose grant expired: an expiry writes nothing,
	// so no change announces it.
	SweepInterval time.Duration

	// ReplicaID names this process in the records of the sessions it
	// holds (store.Session.Replica); NewReplicaID() if empty.
	ReplicaID string
	// Feed, when set, is the store's change feed: a tuple, model or reset
	// change re-checks every live session at once, and a session record
	// that another replica ended (sessions kill, replica lost) cuts the
	// session here. Without it, only local writes (PolicyChanged, Kill)
	// and the sweep's ticks act.
	Feed store.Changes
	// Replicas, when set, is the liveness of the replicas sharing the
	// store: Run joins as ReplicaID (unless Join was called), and the
	// sessions of replicas that die are ended as ReasonReplicaLost. It
	// also lets Get, Kill and List reach sessions held by other replicas.
	Replicas Replicas
	// Metrics, if set, counts open and ended sessions (nil: nothing).
	Metrics *Metrics
}

func (c *Config) defaults() {
	if c.TTL <= 0 {
		c.TTL = 30 * time.Minute
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = 4 * time.Hour
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 15 * time.Minute
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 250 * time.Millisecond
	}
	if c.ReplicaID == "" {
		c.ReplicaID = NewReplicaID()
	}
}

// Live is one open session.
type Live struct {
	mu       sync.Mutex
	sess     store.Session
	relation string
	object   string
	closer   func(reason string)
	conn     string // the Principal's SessionID: the SSH connection
	// who is the principal the session was opened for: the sweep re-checks
	// with its facts (source address, login), so a condition that stops
	// holding (a shift that ends) cuts the session.
	who    authn.Principal
	done   chan struct{}
	reason string

	// stepUpUntil is when the session's step-up must be satisfied again
	// (zero: never); stepUpRenew answers whether it still is.
	stepUpUntil time.Time
	stepUpRenew func(ctx context.Context) (time.Time, bool)

	lastActive atomic.Int64 // unix nanos
	bytesIn    atomic.Int64 // client -> target
	bytesOut   atomic.Int64 // target -> client
}

// ID returns the session id.
func (l *Live) ID() string { return l.sess.ID }

// Done is closed when the session ended.
func (l *Live) Done() <-chan struct{} { return l.done }

// CountIn records n bytes from the client; it also marks activity.
func (l *Live) CountIn(n int) {
	l.bytesIn.Add(int64(n))
	l.lastActive.Store(time.Now().UnixNano())
}

// CountOut records n bytes to the client; it also marks activity.
func (l *Live) CountOut(n int) {
	l.bytesOut.Add(int64(n))
	l.lastActive.Store(time.Now().UnixNano())
}

// Snapshot returns the session record with live counters.
func (l *Live) Snapshot() store.Session {
	l.mu.Lock()
	s := l.sess
	l.mu.Unlock()
	s.BytesIn, s.BytesOut = l.bytesIn.Load(), l.bytesOut.Load()
	return s
}

// Manager opens sessions, keeps the live ones, and ends them on TTL, idle,
// revocation or loss of the granting relation.
type Manager struct {
	cfg    Config
	store  store.Sessions
	policy Checker
	audit  Auditor
	log    *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	live  map[string]*Live
	kick  chan struct{}
	start sync.Once

	// lost reports dead replicas once joined; leave ends the membership.
	joinMu  sync.Mutex
	lost    <-chan string
	leave   context.CancelFunc
	settled atomic.Bool // a follow-up re-check is scheduled
}

// New returns a manager; Run must be started for sweeping.
func New(cfg Config, st store.Sessions, p Checker, a Auditor, log *slog.Logger) *Manager {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Manager{cfg: cfg, store: st, policy: p, audit: a, log: log, now: time.Now,
		live: map[string]*Live{}, kick: make(chan struct{}, 1)}
}

// Request describes a session to open.
type Request struct {
	Principal authn.Principal
	Resource  store.Resource
	Kind      string // "forward", "shell", "kube", "sftp"
	Target    string
	// Relation on "resource:NAME" that must keep holding (default "act").
	Relation string
	// Closer ends the session's channels; it is called once, with the
	// reason, from any goroutine.
	Closer func(reason string)
	// Recorded marks sessions whose terminal is recorded; the recording's
	// id is the session id.
	Recorded bool
	// StepUpUntil, when set, is when the step-up the session opened on
	// stops satisfying its requirement; the sweep then asks StepUpRenew
	// for a newer deadline, and ends the session as ReasonStepUpExpired
	// if there is none.
	StepUpUntil time.Time
	StepUpRenew func(ctx context.Context) (time.Time, bool)
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "s-" + hex.EncodeToString(b[:])
}

// Open records and registers a session. The TTL is the Resource's override
// or the default, never above the cap.
func (m *Manager) Open(ctx context.Context, r Request) (*Live, error) {
	ttl, idle := m.cfg.TTL, m.cfg.IdleTimeout
	if r.Resource.TTL > 0 {
		ttl = r.Resource.TTL
	}
	if r.Resource.IdleTimeout > 0 {
		idle = r.Resource.IdleTimeout
	}
	// The cap exists so that no configuration mistake yields a standing
	// access: every session ends within MaxTTL.
	if ttl > m.cfg.MaxTTL {
		ttl = m.cfg.MaxTTL
	}
	if r.Relation == "" {
		r.Relation = "act"
	}
	now := m.now().UTC()
	l := &Live{
		sess: store.Session{ID: newID(), User: r.Principal.User, Resource: r.Resource.Name, Kind: r.Kind,
			Target: r.Target, Source: r.Principal.SourceAddr, Opened: now, Expires: now.Add(ttl),
			IdleTimeout: idle, State: "open", Replica: m.cfg.ReplicaID},
		relation: r.Relation, object: "resource:" + r.Resource.Name, closer: r.Closer, conn: r.Principal.SessionID, done: make(chan struct{}),
		stepUpUntil: r.StepUpUntil, stepUpRenew: r.StepUpRenew, who: r.Principal,
	}
	if r.Recorded {
		l.sess.Recording = l.sess.ID
	}
	l.lastActive.Store(now.UnixNano())
	if err := m.store.PutSession(ctx, l.sess); err != nil {
		return nil, fmt.Errorf("recording the session: %w", err)
	}
	m.mu.Lock()
	m.live[l.sess.ID] = l
	m.mu.Unlock()
	m.cfg.Metrics.opened(r.Kind)
	return l, nil
}

// End ends a session once, records its final state and returns the reason
// it ended with (the first one wins).
func (m *Manager) End(l *Live, reason string) string {
	l.mu.Lock()
	if l.reason != "" {
		r := l.reason
		l.mu.Unlock()
		return r
	}
	l.reason = reason
	l.sess.State = "closed"
	if reason == ReasonRevoked {
		l.sess.State = "revoked"
	}
	l.sess.Closed = m.now().UTC()
	l.sess.Reason = reason
	l.mu.Unlock()
	m.mu.Lock()
	delete(m.live, l.sess.ID)
	m.mu.Unlock()
	m.cfg.Metrics.ended(l.sess.Kind, reason, true)
	if l.closer != nil {
		l.closer(reason)
	}
	close(l.done)
	if err := m.store.PutSession(context.Background(), l.Snapshot()); err != nil {
		m.log.Error("recording the end of a session", "session", l.sess.ID, "err", err)
	}
	return reason
}

// EndConn ends every live session of one SSH connection (the
// Principal's SessionID) with reason. The
// server core calls it before it closes a connection on purpose, so that
// the sessions carry the real reason rather than "client closed".
func (m *Manager) EndConn(conn, reason string) {
	if conn == "" {
		return
	}
	m.mu.Lock()
	var ls []*Live
	for _, l := range m.live {
		if l.conn == conn {
			ls = append(ls, l)
		}
	}
	m.mu.Unlock()
	for _, l := range ls {
		m.End(l, reason)
	}
}

// PolicyChanged asks the sweeper to re-check every live session now,
// instead of at its next tick.
func (m *Manager) PolicyChanged() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// ReplicaID returns the id this process writes into its session records.
func (m *Manager) ReplicaID() string { return m.cfg.ReplicaID }

// Run sweeps until ctx ends, then ends every live session and leaves the
// replicas. With a Feed it follows the store's changes; with Replicas it
// joins (unless Join was called) and ends the sessions of dead replicas.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if m.cfg.Replicas != nil {
		if err := m.Join(ctx); err != nil {
			m.log.Error("sessions: cannot join the replicas; sessions of dead replicas are not ended by this one", "err", err)
		}
	}
	if m.cfg.Feed != nil {
		wg.Add(1)
		go func() { defer wg.Done(); m.follow(ctx) }()
	}
	if lost := m.lostReplicas(); lost != nil {
		wg.Add(1)
		go func() { defer wg.Done(); m.watchReplicas(ctx, lost) }()
	}
	t := time.NewTicker(m.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.endAll(ReasonShutdown)
			wg.Wait()
			// Only now: the sessions are recorded as ended by shutdown, not
			// lost, when the other replicas see this one go.
			m.leaveReplicas()
			return
		case <-t.C:
		case <-m.kick:
		}
		m.sweep(ctx)
	}
}

// lives returns the live sessions held here, as they are now.
func (m *Manager) lives() []*Live {
	m.mu.Lock()
	defer m.mu.Unlock()
	ls := make([]*Live, 0, len(m.live))
	for _, l := range m.live {
		ls = append(ls, l)
	}
	return ls
}

// EndAll ends every live session of this replica with reason (a replica
// that lost its store cuts what it can no longer re-check).
func (m *Manager) EndAll(reason string) { m.endAll(reason) }

func (m *Manager) endAll(reason string) {
	for _, l := range m.lives() {
		m.End(l, reason)
	}
}

// Describe renders a session for messages.
func Describe(s store.Session) string {
	return strings.Join([]string{s.ID, s.User, s.Kind, s.Resource, s.Target}, " ")
}
