package main

import (
	"context"
	"fmt"
	"log/slog"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/tuplecache"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/commands"
	"github.com/sshbastion/bastion/subsystems/forward"
	"github.com/sshbastion/bastion/subsystems/hostshell"
	"github.com/sshbastion/bastion/subsystems/kube"
	"github.com/sshbastion/bastion/subsystems/netguard"
	"github.com/sshbastion/bastion/subsystems/requests"
	"github.com/sshbastion/bastion/subsystems/sessions"
	sftpsub "github.com/sshbastion/bastion/subsystems/sftp"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// moduleDeps is what the modules are built from.
type moduleDeps struct {
	cfg    Config
	host   string
	st     store.Store
	cache  *tuplecache.Cache
	engine *policy.Engine
	alog   *audit.Log
	guard  *netguard.Guard
	log    *slog.Logger
	// metrics are the modules' series (nil: none are counted).
	metrics *metricSet
}

// modules are the registered features and the loops they run.
type modules struct {
	table    *subsystems.Table
	sessions *sessions.Manager
	kubes    *kube.Module
	// userCA is the bastion's own user CA, which user_ca_keys may not
	// list (see newServer).
	userCA gossh.PublicKey
	// device runs OIDC device logins and step-ups (nil: no oidc).
	device *authn.DeviceFlow
	// steps checks step-up requirements, and says what a caller's last
	// strong login is (for the request context of policy conditions).
	steps *stepup.Service
	stops []func()
}

// stop ends the background loops, last started first.
func (m *modules) stop() {
	for i := len(m.stops) - 1; i >= 0; i-- {
		m.stops[i]()
	}
}

// background runs fn until stop.
func (m *modules) background(fn func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fn(ctx); close(done) }()
	m.stops = append(m.stops, func() { cancel(); <-done })
}

// newModules builds every module and registers it in one table.
func newModules(ctx context.Context, d moduleDeps) (*modules, error) {
	cfg, st, engine, alog, log := d.cfg, d.st, d.engine, d.alog, d.log
	ms := d.metrics
	if ms == nil {
		ms = &metricSet{}
	}
	m := &modules{table: subsystems.NewTable()}
	// Sessions follow the change feed: a kill, a removed grant or a model
	// change on any replica cuts what this replica holds, and the sessions
	// of a replica whose lease expired end as "replica lost".
	m.sessions = sessions.New(sessions.Config{TTL: cfg.Sessions.TTL, MaxTTL: cfg.Sessions.MaxTTL, IdleTimeout: cfg.Sessions.IdleTimeout,
		ReplicaID: cfg.ReplicaID, Feed: st, Replicas: replicasOf(st, log), Metrics: ms.sessions}, st, engine, alog, log)
	if err := m.sessions.Join(ctx); err != nil {
		return nil, fmt.Errorf("joining the replicas: %w", err)
	}
	m.background(m.sessions.Run)
	m.background(func(ctx context.Context) { followModel(ctx, st, engine, m.sessions, log) })
	m.background(storeWatch{feed: st, grace: cfg.Store.LostGrace, cut: cfg.Store.LostMode != "best_effort",
		endAll: m.sessions.EndAll, log: log, health: ms.store}.run)
	tuples := d.cache

	ca, err := hostshell.LoadOrCreateCA(ctx, st)
	if err != nil {
		m.stop()
		return nil, fmt.Errorf("user CA: %w", err)
	}
	m.userCA = ca.Key()
	kubeCreds, kubeCredNames := kubeCredentials(cfg)
	// Step-up requirements are checked by every module that opens a
	// session; step-ups are kept on key records, so every replica sees
	// them.
	suc := cfg.StepUp
	suc.IdentityProvider = cfg.OIDC.Enabled()
	steps := stepup.New(suc, st, d.host, nil)
	m.steps = steps
	shells := hostshell.New(hostshell.Config{Host: d.host, DialTimeout: cfg.Forward.DialTimeout, Dialer: d.guard, Feed: st, StepUp: steps},
		st, engine, m.sessions, alog, ca, st, st, log)
	m.kubes, err = kube.New(kube.Config{Host: d.host, UserPrefix: cfg.Kube.UserPrefix, GroupPrefix: cfg.Kube.GroupPrefix,
		Credentials: kubeCreds, Dialer: d.guard, Tokens: st, Feed: st, Secrets: st, Metrics: ms.kube, StepUp: steps}, st, engine, m.sessions, alog, log)
	if err != nil {
		m.stop()
		return nil, err
	}
	if cfg.OIDC.Enabled() {
		m.device = authn.NewDeviceFlow(cfg.OIDC)
	}
	reqs := requests.New(requests.Config{Host: d.host, DefaultTTL: cfg.Requests.DefaultTTL, MaxTTL: cfg.Requests.MaxTTL,
		ProjectMaxTTL: cfg.Requests.ProjectMaxTTL, Feed: st, Metrics: ms.requests}, st, engine, tuples, alog, log)
	m.background(reqs.Run)
	shells.SetRequests(reqs)
	shells.SetPods(m.kubes)                      // kube workloads in the TUI
	shells.SetStepUpLogin(stepUpLogin(m.device)) // step-up from the TUI
	mods := []subsystems.Module{
		forward.New(forward.Config{DialTimeout: cfg.Forward.DialTimeout, Host: d.host, Kube: m.kubes, Dialer: d.guard, Metrics: ms.forward, StepUp: steps},
			st, engine, m.sessions, alog, log),
		m.kubes,
		shells,
		sftpsub.New(sftpsub.Config{Host: d.host, Metrics: ms.sftp, StepUp: steps, Pods: m.kubes}, st, engine, m.sessions, alog, shells, log),
		commands.New(commands.Deps{
			StepUp:          steps,
			StepUpLogin:     stepUpLogin(m.device),
			Accounts:        st,
			Audit:           auditService{alog, st},
			Policy:          engine,
			Sessions:        m.sessions,
			Tuples:          tuples,
			Resources:       st,
			Models:          modelStore{st},
			Domain:          cfg.Domain,
			CAPublicKey:     ca.PublicKey(),
			Records:         st,
			SessionRecords:  st,
			CertRevocations: st,
			Requests:        reqs,
			Certs:           commands.CertIssuing{Signer: ca, TTL: cfg.SSHCertificates.TTL, MaxTTL: cfg.SSHCertificates.MaxTTL},
			Host:            d.host,
			ResourceRules: commands.ResourceRules{Addresses: d.guard, Logins: cfg.ResourcePolicy.Logins,
				KubeCredentials: kubeCredNames},
		}),
	}
	for _, mod := range mods {
		if err := mod.Register(m.table); err != nil {
			m.stop()
			return nil, err
		}
	}
	return m, nil
}

// stepUpLogin is the device flow of `step-up`, or no interface at all
// (not a nil *DeviceFlow) without oidc.
func stepUpLogin(d *authn.DeviceFlow) commands.StepUpLogin {
	if d == nil {
		return nil
	}
	return d
}

// replicasOf is how replicas know each other: etcd leases, or the single
// process of a badger store.
func replicasOf(st store.Store, log *slog.Logger) sessions.Replicas {
	if es, ok := st.(*etcd.Store); ok {
		return etcd.NewReplicas(es, etcd.ReplicasOptions{Logger: log})
	}
	return badger.NewReplicas()
}

// followModel reloads the policy model when it changes on any replica,
// and re-checks live sessions against it.
func followModel(ctx context.Context, st store.Store, engine *policy.Engine, sm *sessions.Manager, log *slog.Logger) {
	reload := func(ctx context.Context) {
		m, err := startModel(ctx, st, log)
		if err != nil {
			log.Error("model reload", "err", err)
			return
		}
		if m.Source() != engine.Model().Source() {
			engine.SetModel(m)
			sm.PolicyChanged()
		}
	}
	store.Follow(ctx, st, store.Follower{
		Opened: reload,
		Change: func(ctx context.Context, c store.Change) {
			if c.Kind == store.KindModel || c.Kind == store.KindReset {
				reload(ctx)
			}
		},
		Failed: func(err error) { log.Warn("model: cannot follow the store's changes", "err", err) },
	})
}
