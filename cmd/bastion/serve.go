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
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/tuplecache"
	"github.com/sshbastion/bastion/subsystems"
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
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := newRegistry()
	metrics := newMetricSet(reg)
	alog, err := newAudit(st, reg, log)
	if err != nil {
		return err
	}
	defer closeAudit(alog, log)
	hostKey, err := hostKeyOf(ctx, st, log)
	if err != nil {
		return err
	}
	if err := bootstrap(ctx, st, alog, &cfg, admin, adminKeys, log); err != nil {
		return err
	}
	// The tuple cache follows the store's change feed: a grant removed on
	// any replica is forgotten here at once, and a local write forgets
	// what it touched.
	cache := tuplecache.New(st, tuplecache.Options{Feed: st, Logger: log})
	defer cache.Close()
	engine, err := newPolicy(ctx, st, cache, log, policy.WithMetrics(metrics.policy))
	if err != nil {
		return err
	}
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
	guard, err := newGuard(cfg, ln.Addr().String())
	if err != nil {
		return err
	}
	mods, err := newModules(ctx, moduleDeps{cfg: cfg, host: host, st: st, cache: cache, engine: engine, alog: alog, guard: guard, log: log, metrics: metrics})
	if err != nil {
		return err
	}
	defer mods.stop()
	srv, err := newServer(cfg, mods, st, alog, hostKey, host, log, reg)
	if err != nil {
		return err
	}
	httpSrv, metricsAddr, err := newMetrics(cfg, reg, guard, st, log)
	if err != nil {
		return err
	}
	log.Info("bastion listening", "addr", ln.Addr().String(), "metrics", metricsAddr, "store", cfg.Store.Backend,
		"data", cfg.DataDir, "host_key", fingerprint(hostKey))
	// No service without its record: a bastion that cannot audit its own
	// start would not audit what follows either.
	if _, err := alog.Append(ctx, store.Event{Actor: "bastion", Action: "server.start", Decision: "allow",
		Details: map[string]string{"addr": ln.Addr().String(), "host_key": fingerprint(hostKey), "store": cfg.Store.Backend}}); err != nil {
		return fmt.Errorf("audit log: cannot record server.start: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return shutdown(cfg, srv, mods, httpSrv, alog, log)
}

// shutdown drains the server, then writes what is still queued (kube
// events, close events) before the audit log and the store close.
func shutdown(cfg Config, srv *subsystems.Server, mods *modules, httpSrv *http.Server, alog *audit.Log, log *slog.Logger) error {
	log.Info("shutting down: no new connections, draining live sessions", "drain_timeout", cfg.DrainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if err := mods.kubes.Close(); err != nil { // writes the kube.request events still queued
		log.Warn("closing the kube module", "err", err)
	}
	if httpSrv != nil {
		_ = httpSrv.Shutdown(sctx)
	}
	// Bounded: with the store gone, stopping must not wait for it forever.
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopCancel()
	if _, err := alog.Append(stopCtx, store.Event{Actor: "bastion", Action: "server.stop", Decision: "allow"}); err != nil {
		return fmt.Errorf("audit log: cannot record server.stop: %w", err)
	}
	return nil
}

// closeAudit writes what the log still holds, but gives up after a bound
// when the store does not answer, so that a replica without its store
// still stops (what was not written is logged as lost).
func closeAudit(alog *audit.Log, log *slog.Logger) {
	done := make(chan struct{})
	go func() { _ = alog.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		log.Error("audit: the store did not take the last events within 15 s; stopping without them")
	}
}

// hostKeyOf loads (or, on the first start, creates) the host key.
func hostKeyOf(ctx context.Context, st store.Secrets, log *slog.Logger) (gossh.Signer, error) {
	hostKey, created, err := loadOrCreateHostKey(ctx, st)
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created a new ed25519 host key", "fingerprint", fingerprint(hostKey))
	}
	return hostKey, nil
}

// bootstrap applies --admin and the config's admins and Resources.
func bootstrap(ctx context.Context, st store.Store, alog *audit.Log, cfg *Config, admin string, adminKeys []string, log *slog.Logger) error {
	if admin != "" {
		if err := bootstrapAdmin(ctx, st, alog, admin, adminKeys, log); err != nil {
			return err
		}
		cfg.Admins = appendIfMissing(cfg.Admins, admin)
	}
	return bootstrapPolicy(ctx, st, alog, *cfg)
}

func startHTTP(addr string, reg *prometheus.Registry, health func(context.Context) error, log *slog.Logger) (*http.Server, string, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if os.Getenv("BASTION_PPROF") == "1" {
		// Profiling only on request: it exposes internals, and the metrics
		// listener is loopback-only by default anyway.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	// /healthz answers for the store too: a replica that cannot reach it
	// refuses new work, so a load balancer must stop sending it any.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := health(ctx); err != nil {
			http.Error(w, "unhealthy: the store cannot be reached: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
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
