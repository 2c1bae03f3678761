package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/etcd"
)

// openStore opens the configured backend: badger in data_dir (one
// process), or etcd (shared by every replica).
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Store.Backend {
	case "etcd":
		return openEtcd(ctx, cfg.Store.Etcd, log)
	default:
		return openBadger(cfg.DataDir, log)
	}
}

func openBadger(dir string, log *slog.Logger) (store.Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	// Fail closed: without a writable store there is no audit log and no
	// session record, so the bastion must not serve at all.
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	st, err := badger.Open(dir, badger.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("opening the store in %s: %w", dir, err)
	}
	return st, nil
}

func openEtcd(ctx context.Context, c EtcdConfig, log *slog.Logger) (store.Store, error) {
	opts := etcd.Options{Endpoints: c.Endpoints, Prefix: c.Prefix, DialTimeout: c.DialTimeout,
		Username: c.Username, Password: c.Password, Logger: log,
		SequencerListen: c.Sequencer.Listen, SequencerAdvertise: c.Sequencer.Advertise}
	if c.TLS.CA != "" || c.TLS.Cert != "" {
		tc, err := etcdTLS(c)
		if err != nil {
			return nil, err
		}
		opts.TLS = tc
	}
	st, err := etcd.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the etcd store at %v: %w", c.Endpoints, err)
	}
	return st, nil
}

// etcdTLS builds the client TLS config from the configured files.
func etcdTLS(c EtcdConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS.CA != "" {
		pem, err := os.ReadFile(c.TLS.CA)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store.etcd.tls.ca: no certificate in %s", c.TLS.CA)
		}
		tc.RootCAs = pool
	}
	if c.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("store.etcd.tls: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
