package subsystems

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Auditor records audit events; *audit.Log satisfies it.
type Auditor interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
}

// Authenticator checks public keys. *authn.PublicKeys satisfies it.
type Authenticator interface {
	Lookup(ctx context.Context, key gossh.PublicKey) (store.Key, store.User, error)
	Verified(ctx context.Context, key gossh.PublicKey, source string) (authn.Principal, error)
}

// Config holds the limits and identity of the SSH server.
type Config struct {
	HostSigners []gossh.Signer
	// PreAuthTimeout bounds the time from TCP accept to successful
	// authentication (default 30 s).
	PreAuthTimeout time.Duration
	// HandshakeTimeout bounds the time from TCP accept to the end of the
	// key exchange (default 10 s), like a short LoginGraceTime for the
	// part of the login that needs no user: a connection that does not
	// even finish the handshake in that time gives its slot back.
	HandshakeTimeout time.Duration
	// MaxAuthTries caps failed auth attempts per connection (default 6).
	MaxAuthTries int
	// FailedConnsPerSource and FailWindow throttle sources whose
	// connections keep failing authentication (defaults 20 per minute).
	FailedConnsPerSource int
	FailWindow           time.Duration
	// MaxStartups and MaxStartupsPerSource cap unauthenticated
	// connections (defaults 200 and 20). Connections that have not
	// finished the key exchange are evicted to make room (see startups).
	MaxStartups          int
	MaxStartupsPerSource int
	// MaxStartupsStart and MaxStartupsRate are OpenSSH's start:rate: past
	// Start connections in authentication, new ones are dropped with
	// probability Rate%, rising to 100% at MaxStartups (defaults
	// MaxStartups/2 and 30; Start >= MaxStartups turns it off).
	MaxStartupsStart int
	MaxStartupsRate  int
	// PerSourcePenalty is added to a source each time one of its
	// connections is cut before finishing the key exchange, up to
	// PerSourcePenaltyMax (defaults 15 s and 10 m; negative: off).
	// Penalised sources lose their idle slots first.
	PerSourcePenalty    time.Duration
	PerSourcePenaltyMax time.Duration
	// KeepExpiredCertSessions turns off what is otherwise done: a
	// connection that logged in with a certificate is closed, and its
	// sessions end as "certificate expired", at the certificate's
	// ValidBefore (Teleport's disconnect_expired_cert).
	KeepExpiredCertSessions bool
	// EndSessions, if set, ends the sessions of one connection (by
	// Principal.SessionID) with reason, before the core closes it.
	EndSessions func(conn, reason string)
	// KeepaliveInterval and KeepaliveCountMax detect dead peers (defaults
	// 15 s and 3, as OpenSSH's ClientAlive settings).
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	// DrainTimeout bounds graceful shutdown (default 10 s).
	DrainTimeout time.Duration
	Version      string
	// Host is how users reach the bastion ("ssh -p 2222 localhost"), for
	// the examples in messages.
	Host string
	// DeviceLogin, if set, lets people without a registered key log in
	// with the OIDC device flow, shown in keyboard-interactive prompts;
	// Accounts then creates their users and binds their proven keys.
	DeviceLogin DeviceLogin
	Accounts    Accounts
	// StepUpRemember is how long the login that binds a key counts as a
	// step-up on the key's next connections (step_up.remember; default
	// 15 m).
	StepUpRemember time.Duration
	// Certificates, if set, accepts OpenSSH user certificates.
	Certificates Certificates
	// StrongLogins, if set, says what a caller's last strong login is
	// (stepup.Service); the core puts it on the Principal it hands to
	// modules, for policy conditions.
	StrongLogins StrongLogins
}

// StrongLogins finds a caller's last strong login: this one, or a step-up
// remembered for the key or the connection. ok is false when there is none.
type StrongLogins interface {
	LastStrong(ctx context.Context, p authn.Principal) (l authn.StrongLogin, ok bool)
}

func (c *Config) defaults() {
	if c.PreAuthTimeout <= 0 {
		c.PreAuthTimeout = 30 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxAuthTries <= 0 {
		c.MaxAuthTries = 6
	}
	if c.FailedConnsPerSource == 0 {
		c.FailedConnsPerSource = 20
	}
	if c.MaxStartups == 0 {
		c.MaxStartups = 200
	}
	if c.MaxStartupsPerSource == 0 {
		c.MaxStartupsPerSource = 20
	}
	if c.MaxStartupsStart == 0 {
		c.MaxStartupsStart = c.MaxStartups / 2
	}
	if c.MaxStartupsRate <= 0 || c.MaxStartupsRate > 100 {
		c.MaxStartupsRate = 30
	}
	if c.PerSourcePenalty == 0 {
		c.PerSourcePenalty = 15 * time.Second
	}
	if c.PerSourcePenaltyMax == 0 {
		c.PerSourcePenaltyMax = 10 * time.Minute
	}
	if c.FailWindow <= 0 {
		c.FailWindow = time.Minute
	}
	if c.KeepaliveInterval <= 0 {
		c.KeepaliveInterval = 15 * time.Second
	}
	if c.KeepaliveCountMax <= 0 {
		c.KeepaliveCountMax = 3
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Version == "" {
		c.Version = "bastion"
	}
	if c.Host == "" {
		c.Host = "ssh bastion"
	}
}

// Server is the SSH server core.
type Server struct {
	cfg      Config
	table    *Table
	auth     Authenticator
	audit    Auditor
	log      *slog.Logger
	throttle *authn.Throttle
	startups *startups
	metrics  *metrics
	srv      *ssh.Server

	mu       sync.Mutex
	sessions map[ssh.Session]struct{}
	closing  bool
	// deciding counts, per connection, the global requests a module is
	// still deciding (see waitGlobals).
	deciding map[*gossh.ServerConn]int

	// inflight counts channel handlers still running. Shutdown waits for
	// them after the connections are closed, so that every close event
	// (forward.close, shell.close, ...) is written before the audit log
	// and the store close.
	inflight sync.WaitGroup
}

// New builds the server. Modules are registered into the table before.
func New(cfg Config, table *Table, auth Authenticator, auditor Auditor, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg.defaults()
	if len(cfg.HostSigners) == 0 {
		return nil, errors.New("subsystems: no host key")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:      cfg,
		table:    table,
		auth:     auth,
		audit:    auditor,
		log:      log,
		throttle: &authn.Throttle{Max: cfg.FailedConnsPerSource, Window: cfg.FailWindow},
		startups: newStartups(startupLimits{Max: cfg.MaxStartups, PerSource: cfg.MaxStartupsPerSource,
			Start: cfg.MaxStartupsStart, Rate: cfg.MaxStartupsRate, Penalty: cfg.PerSourcePenalty, PenaltyMax: cfg.PerSourcePenaltyMax}),
		metrics:  newMetrics(reg),
		sessions: map[ssh.Session]struct{}{},
		deciding: map[*gossh.ServerConn]int{},
	}
	s.startups.refused = func(reason string) { s.metrics.preauth.WithLabelValues(reason).Inc() }
	registerStartups(reg, s.startups)
	s.srv = &ssh.Server{
		ConnectionFailedCallback: func(_ net.Conn, err error) { s.log.Debug("handshake failed", "err", err) },
		Version:                  cfg.Version,
		Handler:                  s.handleSession,
		ConnCallback:             s.onConnect,
		ServerConfigCallback:     s.serverConfig,
		// Setting a PublicKeyHandler also keeps charmbracelet/ssh from
		// silently switching to NoClientAuth, which it does when no auth
		// handler is set. The handler only answers the query phase; the
		// identity is bound in VerifiedPublicKeyCallback (see auth.go).
		PublicKeyHandler: s.publicKeyOffered,
		ChannelHandlers: map[string]ssh.ChannelHandler{
			"session": s.tracked(s.sessionChannel),
			"default": s.tracked(s.channel),
		},
		RequestHandlers: map[string]ssh.RequestHandler{
			"default": s.globalRequest,
		},
		SubsystemHandlers: map[string]ssh.SubsystemHandler{
			"default": s.subsystem,
		},
	}
	for _, k := range cfg.HostSigners {
		s.srv.AddHostKey(k)
	}
	return s, nil
}

// Serve accepts connections on l until Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, tells live sessions, and waits up to the drain
// timeout (or ctx) for them to end before closing what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	live := make([]ssh.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		live = append(live, sess)
	}
	s.mu.Unlock()
	for _, sess := range live {
		fmt.Fprintf(sess.Stderr(), "\r\nbastion: the server is shutting down; this session ends within %s\r\n", s.cfg.DrainTimeout)
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	err := s.srv.Shutdown(dctx)
	if err != nil {
		s.log.Warn("drain timeout reached, closing remaining connections", "err", err)
		err = s.srv.Close()
	}
	// The connections are gone; their handlers still write their close
	// events. Wait for them (bounded by ctx), so none is cut off by the
	// audit log closing after Shutdown returns.
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Error("shutdown: channel handlers still running; their close events may be lost", "err", ctx.Err())
	}
	return err
}

// tracked counts h in inflight while it runs.
func (s *Server) tracked(h ssh.ChannelHandler) ssh.ChannelHandler {
	return func(srv *ssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
		s.inflight.Add(1)
		defer s.inflight.Done()
		h(srv, conn, nc, ctx)
	}
}

// Close closes everything at once.
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) track(sess ssh.Session, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.sessions[sess] = struct{}{}
	} else {
		delete(s.sessions, sess)
	}
	s.metrics.sessions.Set(float64(len(s.sessions)))
}

// record appends an audit event; a failure to audit is logged loudly. The
// caller decides whether the action may go on without its audit record.
func (s *Server) record(ctx context.Context, e store.Event) error {
	if s.audit == nil {
		return nil
	}
	if _, err := s.audit.Append(ctx, e); err != nil {
		s.log.Error("audit append failed", "action", e.Action, "err", err)
		return err
	}
	return nil
}

// recordRefusal audits a refusal. The refusal stands whatever happens to
// its event (refusing is already the safe outcome), but a lost event is
// logged and counted, never dropped in silence.
func (s *Server) recordRefusal(ctx context.Context, e store.Event) {
	if err := s.record(ctx, e); err != nil {
		AuditLost(s.log, s.audit, e, err)
	}
}
