package kube

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/k8s"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// Resources finds Resources.
type Resources interface {
	GetResource(ctx context.Context, name string) (store.Resource, error)
	ListResources(ctx context.Context) ([]store.Resource, error)
}

// Checker is the policy gate.
type Checker interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
}

// Auditor records audit events (audit.Log). AppendAll appends events in
// order with as few syncs as possible: the kube.request writer uses it.
type Auditor interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
	AppendAll(ctx context.Context, events []store.Event) error
}

// Config of the kube module.
type Config struct {
	// Host is how users reach the bastion ("ssh -p 2222 localhost"), for
	// the commands the bastion prints.
	Host string
	// UserPrefix and GroupPrefix are put before the impersonated user and
	// every impersonated group, so that bastion identities cannot collide
	// with the cluster's own (e.g. "bastion:").
	UserPrefix  string
	GroupPrefix string
	// Credentials are the named apiserver identities Resources may refer
	// to (KubeSpec.Credentials), from the config's kube.credentials.
	Credentials map[string]Credential
	// Dialer connects to the apiservers of Resources made over ssh (nil:
	// client-go's own dialer); see dialFor.
	Dialer Dialer
	// Tokens, when set with Feed, keeps every token's hash in the shared
	// store, so that a kubeconfig issued through one replica works through
	// a tunnel on any other (see remote.go). Without them tokens live in
	// this process only; either way a token dies with its session, which
	// the session manager ends wherever it was killed.
	Tokens TokenStore
	// Feed is the store's change feed, which remote tokens follow.
	Feed store.Changes
	// Secrets, when set, keeps the tunnel's TLS certificate in the store,
	// shared by every replica (kubeconfigs pin it).
	Secrets SecretCreator
	// Metrics, if set, counts requests and tunnels (nil: nothing).
	Metrics *Metrics
	// StepUp, if set, checks the step-up requirements of kube sessions
	// when a kubeconfig is issued; the session (and with it the token
	// and its tunnels) ends as step_up_expired when it outlives them.
	StepUp StepUp
}

// StepUp checks step-up requirements (stepup.Service).
type StepUp interface {
	Open(ctx context.Context, p authn.Principal, kind string, r store.Resource, what string) stepup.Verdict
}

// Module serves the kubeconfig command and kube tunnels.
type Module struct {
	cfg       Config
	resources Resources
	policy    Checker
	sessions  *sessions.Manager
	audit     Auditor
	log       *slog.Logger

	tokens  tokens
	caPEM   []byte
	ln      *listener
	srv     *http.Server
	events  chan store.Event
	flushed chan struct{}

	mu        sync.Mutex
	upstreams map[string]upstream
	egress    egresses // live ssh -R egresses (egress.go)

	// following is set while the feed is followed (remote tokens need
	// it); stopFollow ends it, and followed is closed once it ended.
	following  atomic.Bool
	stopFollow context.CancelFunc
	followed   chan struct{}
}

type upstream struct {
	key string // the spec it was built from
	up  *k8s.Upstream
}

// New returns the module and starts its in-process HTTPS server, which
// only ever receives connections from authorized ssh channels.
func New(cfg Config, res Resources, p Checker, sm *sessions.Manager, a Auditor, log *slog.Logger) (*Module, error) {
	if cfg.Host == "" {
		cfg.Host = "ssh bastion"
	}
	if log == nil {
		log = slog.Default()
	}
	cert, caPEM, err := servingCert()
	if cfg.Secrets != nil {
		cert, caPEM, err = sharedServingCert(context.Background(), cfg.Secrets)
	}
	if err != nil {
		return nil, fmt.Errorf("kube tunnel certificate: %w", err)
	}
	m := &Module{cfg: cfg, resources: res, policy: p, sessions: sm, audit: a, log: log, caPEM: caPEM,
		ln: newListener(), events: make(chan store.Event, 4096), flushed: make(chan struct{}), upstreams: map[string]upstream{}}
	m.srv = &http.Server{
		Handler:     m,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: connContext,
		// HTTP/1.1 only: upgrades (exec, port-forward) hijack the
		// connection, and each kubectl connection is its own channel.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	go func() { _ = m.srv.Serve(tls.NewListener(m.ln, tlsCfg)) }()
	go m.writeEvents()
	if cfg.Tokens != nil && cfg.Feed != nil {
		ctx, cancel := context.WithCancel(context.Background())
		m.stopFollow, m.followed = cancel, make(chan struct{})
		go m.follow(ctx)
	} else {
		m.cfg.Tokens = nil // remote tokens need the feed
	}
	return m, nil
}

// Register implements subsystems.Module.
func (m *Module) Register(t *subsystems.Table) error {
	if err := t.Command(subsystems.Command{Name: "kubeconfig", Summary: "print a kubeconfig for a kube Resource, and the tunnel to run", Run: m.kubeconfig}); err != nil {
		return err
	}
	if err := t.Command(subsystems.Command{Name: "pods", Summary: "list the namespaces, pods and services of a kube Resource (as your Kubernetes RBAC allows)", Run: m.podsCommand}); err != nil {
		return err
	}
	// ssh -R NS/SVC:PORT:... (egress.go); every other -R stays refused.
	if err := t.Global("tcpip-forward", m.EgressRequest); err != nil {
		return err
	}
	return t.Global("cancel-tcpip-forward", m.EgressCancel)
}

// Close stops the tunnel server and writes the audit events still queued.
func (m *Module) Close() error {
	if !m.egress.wait(10 * time.Second) {
		m.log.Error("kube: egresses still ending after 10 s; their egress.close events may be lost")
	}
	if m.stopFollow != nil {
		m.stopFollow()
		<-m.followed
	}
	_ = m.ln.Close()
	err := m.srv.Close()
	close(m.events)
	<-m.flushed
	return err
}

// eventLinger is how long the writer waits for more kube.request events
// before committing what it has: kubectl sends bursts, and one durable
// commit for a burst costs far less than one per request.
const eventLinger = 20 * time.Millisecond

// writeEvents appends kube.request events off the request path, in order:
// a request's latency must not include an fsync. Nothing is dropped; a
// full queue slows requests down instead.
func (m *Module) writeEvents() {
	defer close(m.flushed)
	for e := range m.events {
		batch := []store.Event{e}
		t := time.NewTimer(eventLinger)
	collect:
		for len(batch) < 256 {
			select {
			case e2, ok := <-m.events:
				if !ok {
					break collect
				}
				batch = append(batch, e2)
			case <-t.C:
				break collect
			}
		}
		t.Stop()
		// The responses were sent already: an event that could not be
		// stored is counted and logged as lost, one by one (one bad event
		// never takes the others with it: AppendAll stores them alone).
		if err := m.audit.AppendAll(context.Background(), batch); err != nil {
			var be *audit.BatchError
			for i, e := range batch {
				why := err
				if errors.As(err, &be) {
					if why = be.Errs[i]; why == nil {
						continue
					}
				}
				subsystems.AuditLost(m.log, m.audit, e, why)
			}
		}
	}
}

// upstream returns the proxy to r's apiserver, rebuilt when the Resource's
// spec changed.
func (m *Module) upstream(r store.Resource) (*k8s.Upstream, error) {
	spec, err := m.spec(r)
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(struct {
		A, O string
		S    store.KubeSpec
	}{r.Address, r.Origin, spec})
	key := string(raw)
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.upstreams[r.Name]; ok && u.key == key {
		return u.up, nil
	}
	cfg, err := k8s.RESTConfig(spec, r.Address)
	if err != nil {
		return nil, err
	}
	cfg.Dial = m.dialFor(r)
	up, err := k8s.NewUpstream(cfg)
	if err != nil {
		return nil, err
	}
	m.upstreams[r.Name] = upstream{key: key, up: up}
	return up, nil
}
