package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/netguard"
)

// newRegistry is the metrics registry, with the Go and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// newAudit opens the hash-chained log over st; its appends, failures,
// commits and the events that could not be made durable for actions that
// already happened (bastion_audit_lost_events_total) are counted in reg.
func newAudit(st store.AuditLog, reg prometheus.Registerer, log *slog.Logger) (*audit.Log, error) {
	if err := checkAuditTail(st); err != nil {
		return nil, err
	}
	m := audit.NewMetrics()
	reg.MustRegister(m.Collectors()...)
	alog, err := audit.New(st, audit.Options{Logger: log, Metrics: m})
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	return alog, nil
}

// checkAuditTail refuses to start on a log whose newest events do not
// verify, or whose stored head names events that are gone: a damaged
// store file must not let the bastion start quietly with a block of its
// history missing, and chain new events onto it. It reads the last
// audit.DefaultTailEvents events; `audit verify` stays the full check.
func checkAuditTail(st store.AuditLog) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := audit.VerifyTail(ctx, st, audit.DefaultTailEvents)
	if err != nil {
		return fmt.Errorf("checking the audit log's newest events: %w", err)
	}
	if !rep.OK {
		return fmt.Errorf("the audit log is BROKEN at seq %d: %s. The bastion does not append to a broken chain: "+
			"restore the store from a backup (or move it aside to start a new log) and start again", rep.BrokenSeq, rep.Reason)
	}
	return nil
}

// newGuard is the address guard: Resources made over ssh never reach the
// bastion's own listeners, loopback, link-local or cloud metadata (unless
// resource_policy.allow_cidrs says so), checked at add and at every dial.
func newGuard(cfg Config, sshAddr string) (*netguard.Guard, error) {
	guard, err := netguard.New(netguard.Config{AllowCIDRs: cfg.ResourcePolicy.AllowCIDRs})
	if err != nil {
		return nil, err
	}
	if err := guard.AddListener("ssh", sshAddr); err != nil {
		return nil, err
	}
	return guard, nil
}

// newServer builds the SSH core over the modules' table.
func newServer(cfg Config, mods *modules, st store.Store, alog *audit.Log, hostKey gossh.Signer, host string, log *slog.Logger, reg prometheus.Registerer) (*subsystems.Server, error) {
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
	scfg.EndSessions = mods.sessions.EndConn
	if cfg.OIDC.Enabled() && mods.device != nil {
		// One device flow for logins and `step-up`.
		scfg.DeviceLogin = mods.device
	}
	scfg.StepUpRemember = cfg.StepUp.Remember
	if mods.steps != nil {
		scfg.StrongLogins = mods.steps
	}
	if len(cfg.UserCAKeys) > 0 {
		certs := &authn.Certificates{Store: st}
		for i, line := range cfg.UserCAKeys {
			k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("user_ca_keys[%d]: %v", i, err)
			}
			// The bastion's own CA signs the certificates `cert` hands out,
			// whose principals are target logins (root, shared accounts):
			// trusted here, one would log in as the bastion user of that
			// name.
			if mods.userCA != nil && bytes.Equal(k.Marshal(), mods.userCA.Marshal()) {
				return nil, fmt.Errorf("user_ca_keys[%d] is the bastion's own user CA (`ca`), which signs target logins, not bastion users; remove it", i)
			}
			certs.CAs = append(certs.CAs, k)
		}
		scfg.Certificates = certs
	}
	return subsystems.New(scfg, mods.table, &authn.PublicKeys{Store: st}, alog, log, reg)
}

// newMetrics starts /metrics and /healthz, and keeps Resources off its
// port. metrics_listen "" turns it off.
func newMetrics(cfg Config, reg *prometheus.Registry, guard *netguard.Guard, st store.Changes, log *slog.Logger) (*http.Server, string, error) {
	if cfg.MetricsListen == "" {
		return nil, "off", nil
	}
	health := func(ctx context.Context) error { _, err := st.Rev(ctx); return err }
	httpSrv, addr, err := startHTTP(cfg.MetricsListen, reg, health, log)
	if err != nil {
		return nil, "", err
	}
	if err := guard.AddListener("metrics", addr); err != nil {
		return nil, "", err
	}
	return httpSrv, addr, nil
}
