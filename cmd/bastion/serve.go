package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
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
)

type serveFlags struct {
	config, listen, dataDir, metrics, logFormat, host string
	admin                                             string
	adminKeys                                         []string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the bastion",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(f.config)
			if err != nil {
				return err
			}
			cfg.applyEnv(os.Getenv)
			fl := cmd.Flags()
			override := func(name string, dst *string, v string) {
				if fl.Changed(name) {
					*dst = v
				}
			}
			override("listen", &cfg.Listen, f.listen)
			override("data", &cfg.DataDir, f.dataDir)
			override("metrics-listen", &cfg.MetricsListen, f.metrics)
			override("log-format", &cfg.Log.Format, f.logFormat)
			override("host", &cfg.Host, f.host)
			if err := cfg.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return serve(ctx, cfg, f.admin, f.adminKeys)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "YAML configuration file")
	fl.StringVar(&f.listen, "listen", "", "SSH listen address (default :2222; env BASTION_LISTEN)")
	fl.StringVar(&f.dataDir, "data", "", "data directory of the embedded store (env BASTION_DATA_DIR)")
	fl.StringVar(&f.metrics, "metrics-listen", "", "address of /metrics and /healthz; empty string disables (env BASTION_METRICS_LISTEN)")
	fl.StringVar(&f.logFormat, "log-format", "", "text or json (env BASTION_LOG_FORMAT)")
	fl.StringVar(&f.host, "host", "", "how users reach the bastion, for printed examples (env BASTION_HOST)")
	fl.StringVar(&f.admin, "admin", "", "bootstrap admin user to create or update at start")
	fl.StringSliceVar(&f.adminKeys, "admin-key", nil, "public key file(s) to register to --admin (repeatable)")
	return cmd
}

func newLogger(cfg Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func serve(ctx context.Context, cfg Config, admin string, adminKeys []string) error {
	log := newLogger(cfg)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	// Fail closed: without a writable store there is no audit log and no
	// session record, so the bastion must not serve at all.
	if err := checkWritable(cfg.DataDir); err != nil {
		return err
	}
	st, err := badger.Open(cfg.DataDir, badger.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("opening the store in %s: %w", cfg.DataDir, err)
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	lostEvents := prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_audit_lost_events_total",
		Help: "Audit events that could not be made durable for actions that had already happened."})
	reg.MustRegister(lostEvents)
	alog, err := audit.New(st, audit.Options{Logger: log, LostEvents: lostEvents})
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	defer alog.Close()

	hostKey, created, err := loadOrCreateHostKey(ctx, st)
	if err != nil {
		return err
	}
	if created {
		log.Info("created a new ed25519 host key", "fingerprint", fingerprint(hostKey))
	}
	if admin != "" {
		if err := bootstrapAdmin(ctx, st, alog, admin, adminKeys, log); err != nil {
			return err
		}
		cfg.Admins = appendIfMissing(cfg.Admins, admin)
	}
	if err := bootstrapPolicy(ctx, st, alog, cfg); err != nil {
		return err
	}
	// Every tuple write goes through the cache (which clears itself), so
	// policy reads never see stale grants.
	cache := tuplecache.New(st, tuplecache.Options{})
	engine, err := newPolicy(ctx, st, cache, log)
	if err != nil {
		return err
	}

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Listen first, so that the messages name the port actually bound
	// (listen: 127.0.0.1:0 picks one).
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	host := cfg.Host
	if host == "" {
		host = defaultHost(ln.Addr().String())
	}
	// The address guard: Resources made over ssh never reach the
	// bastion's own listeners, loopback, link-local or cloud metadata
	// (unless resource_policy.allow_cidrs says so), checked at add and at
	// every dial.
	guard, err := netguard.New(netguard.Config{AllowCIDRs: cfg.ResourcePolicy.AllowCIDRs})
	if err != nil {
		return err
	}
	if err := guard.AddListener("ssh", ln.Addr().String()); err != nil {
		return err
	}
	kubeCreds, kubeCredNames := kubeCredentials(cfg)
	sm := sessions.New(sessions.Config{TTL: cfg.Sessions.TTL, MaxTTL: cfg.Sessions.MaxTTL, IdleTimeout: cfg.Sessions.IdleTimeout},
		st, engine, alog, log)
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() { sm.Run(sweepCtx); close(sweepDone) }()
	defer func() { stopSweep(); <-sweepDone }()
	// Every tuple write re-checks live sessions at once, so that a removed
	// grant cuts its sessions without waiting for the next sweep tick.
	tuples := notifyingTuples{Tuples: cache, changed: sm.PolicyChanged}

	ca, err := hostshell.LoadOrCreateCA(ctx, st)
	if err != nil {
		return fmt.Errorf("user CA: %w", err)
	}
	table := subsystems.NewTable()
	shells := hostshell.New(hostshell.Config{Host: host, DialTimeout: cfg.Forward.DialTimeout, Dialer: guard}, st, engine, sm, alog, ca, st, st, log)
	kubes, err := kube.New(kube.Config{Host: host, UserPrefix: cfg.Kube.UserPrefix, GroupPrefix: cfg.Kube.GroupPrefix,
		Credentials: kubeCreds, Dialer: guard}, st, engine, sm, alog, log)
	if err != nil {
		return err
	}
	reqs := requests.New(requests.Config{Host: host, DefaultTTL: cfg.Requests.DefaultTTL, MaxTTL: cfg.Requests.MaxTTL,
		ProjectMaxTTL: cfg.Requests.ProjectMaxTTL}, st, engine, tuples, alog, log)
	reqCtx, stopReqs := context.WithCancel(context.Background())
	reqDone := make(chan struct{})
	go func() { reqs.Run(reqCtx); close(reqDone) }()
	shells.SetRequests(reqs)
	defer func() { stopReqs(); <-reqDone }()
	mods := []subsystems.Module{
		forward.New(forward.Config{DialTimeout: cfg.Forward.DialTimeout, Host: host, Kube: kubes, Dialer: guard}, st, engine, sm, alog, log),
		kubes,
		shells,
		sftpsub.New(sftpsub.Config{Host: host}, st, engine, sm, alog, shells, log),
		commands.New(commands.Deps{
			Accounts:        st,
			Audit:           auditService{alog, st},
			Policy:          engine,
			Sessions:        sm,
			Tuples:          tuples,
			Resources:       st,
			Models:          modelStore{st},
			Domain:          cfg.Domain,
			CAPublicKey:     ca.PublicKey(),
			Records:         st,
			SessionRecords:  st,
			CertRevocations: st,
			Requests:        reqs,
			Host:            host,
			ResourceRules: commands.ResourceRules{Addresses: guard, Logins: cfg.ResourcePolicy.Logins,
				KubeCredentials: kubeCredNames},
		}),
	}
	for _, m := range mods {
		if err := m.Register(table); err != nil {
			return err
		}
	}
	scfg := subsystems.Config{
		HostSigners:          []gossh.Signer{hostKey},
		PreAuthTimeout:       cfg.Auth.PreAuthTimeout,
		MaxAuthTries:         cfg.Auth.MaxAuthTries,
		FailedConnsPerSource: cfg.Auth.FailedConnsPerSource,
		FailWindow:           cfg.Auth.FailWindow,
		MaxStartups:          cfg.Auth.MaxStartups,
		MaxStartupsPerSource: cfg.Auth.MaxStartupsPerSource,
		HandshakeTimeout:     cfg.Auth.HandshakeTimeout,
		MaxStartupsStart:     cfg.Auth.MaxStartupsStart,
		MaxStartupsRate:      cfg.Auth.MaxStartupsRate,
		PerSourcePenalty:     cfg.Auth.PerSourcePenalty,
		PerSourcePenaltyMax:  cfg.Auth.PerSourcePenaltyMax,
		KeepaliveInterval:    cfg.Keepalive.Interval,
		KeepaliveCountMax:    cfg.Keepalive.CountMax,
		DrainTimeout:         cfg.DrainTimeout,
		Host:                 host,
		Accounts:             st,
	}
	// A certificate login ends with its certificate; its sessions first,
	// so that they are recorded as "certificate expired".
	scfg.KeepExpiredCertSessions = !cfg.Auth.DisconnectExpiredCert
	scfg.EndSessions = sm.EndConn
	if cfg.OIDC.Enabled() {
		scfg.DeviceLogin = authn.NewDeviceFlow(cfg.OIDC)
	}
	if len(cfg.UserCAKeys) > 0 {
		certs := &authn.Certificates{Store: st}
		for i, line := range cfg.UserCAKeys {
			k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return fmt.Errorf("user_ca_keys[%d]: %v", i, err)
			}
			certs.CAs = append(certs.CAs, k)
		}
		scfg.Certificates = certs
	}
	srv, err := subsystems.New(scfg, table, &authn.PublicKeys{Store: st}, alog, log, reg)
	if err != nil {
		return err
	}

	var httpSrv *http.Server
	metricsAddr := "off"
	if cfg.MetricsListen != "" {
		httpSrv, metricsAddr, err = startHTTP(cfg.MetricsListen, reg, log)
		if err != nil {
			return err
		}
		if err := guard.AddListener("metrics", metricsAddr); err != nil {
			return err
		}
	}
	log.Info("bastion listening", "addr", ln.Addr().String(), "metrics", metricsAddr, "data", cfg.DataDir,
		"host_key", fingerprint(hostKey))
	// No service without its record: a bastion that cannot audit its own
	// start would not audit what follows either.
	if _, err := alog.Append(ctx, store.Event{Actor: "bastion", Action: "server.start", Decision: "allow",
		Details: map[string]string{"addr": ln.Addr().String(), "host_key": fingerprint(hostKey)}}); err != nil {
		return fmt.Errorf("audit log: cannot record server.start: %w", err)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections, draining live sessions", "drain_timeout", cfg.DrainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout+5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = kubes.Close() // writes the kube.request events still queued
	if httpSrv != nil {
		_ = httpSrv.Shutdown(sctx)
	}
	if _, err := alog.Append(context.Background(), store.Event{Actor: "bastion", Action: "server.stop", Decision: "allow"}); err != nil {
		return fmt.Errorf("audit log: cannot record server.stop: %w", err)
	}
	return nil
}

func startHTTP(addr string, reg *prometheus.Registry, log *slog.Logger) (*http.Server, string, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if os.Getenv("BASTION_PPROF") == "1" {
		// Profiling only on request: it exposes internals, and the metrics
		// listener is loopback-only by default anyway.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics listener: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return hs, ln.Addr().String(), nil
}

// auditService adds verification to the live log for the commands.
type auditService struct {
	*audit.Log
	st store.AuditLog
}

func (a auditService) Verify(ctx context.Context) (audit.Report, error) {
	return audit.Verify(ctx, a.st)
}

// notifyingTuples tells the session manager about every policy change.
type notifyingTuples struct {
	store.Tuples
	changed func()
}

func (n notifyingTuples) WriteTuples(ctx context.Context, add, del []store.Tuple) error {
	err := n.Tuples.WriteTuples(ctx, add, del)
	n.changed()
	return err
}

func appendIfMissing(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

func defaultHost(listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil || port == "22" {
		return "ssh localhost"
	}
	return "ssh -p " + port + " localhost"
}

// checkWritable proves the data directory takes writes, so that a
// read-only or full filesystem is named at start instead of surfacing as
// a store error later.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-check-")
	if err == nil {
		_, err = f.Write([]byte("ok"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		_ = os.Remove(f.Name())
	}
	if err != nil {
		return fmt.Errorf("the data directory %s is not writable (%v): the bastion refuses to start without a durable store and audit log; fix the directory or point --data elsewhere", dir, err)
	}
	return nil
}
