package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

func TestStoreEnvChoosesTheBackend(t *testing.T) {
	c := defaultConfig()
	c.applyEnv(func(k string) string {
		if k == "BASTION_STORE" {
			return "etcd://127.0.0.1:2379,127.0.0.2:2379"
		}
		return ""
	})
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Store.Backend != "etcd" || strings.Join(c.Store.Etcd.Endpoints, " ") != "http://127.0.0.1:2379 http://127.0.0.2:2379" {
		t.Fatalf("BASTION_STORE=etcd://...: %+v", c.Store)
	}
	c = defaultConfig()
	c.applyEnv(func(k string) string {
		if k == "BASTION_STORE" {
			return "badger:/tmp/x"
		}
		return ""
	})
	if c.Store.Backend != "badger" || c.DataDir != "/tmp/x" {
		t.Fatalf("BASTION_STORE=badger:DIR: %+v %s", c.Store, c.DataDir)
	}
	c = defaultConfig()
	c.applyEnv(func(k string) string {
		if k == "BASTION_STORE" {
			return "postgres://x"
		}
		return ""
	})
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "BASTION_STORE") {
		t.Fatalf("a malformed BASTION_STORE must be refused, got %v", err)
	}
	c = defaultConfig()
	c.Store.Backend = "etcd"
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "endpoints") {
		t.Fatalf("etcd without endpoints must be refused, got %v", err)
	}
}

// openStore opens either backend, and both keep what is written.
func TestOpenStoreBothBackends(t *testing.T) {
	ctx := context.Background()
	e := etcdtest.Start(t)
	for _, c := range []Config{
		func() Config { c := defaultConfig(); c.DataDir = t.TempDir(); return c }(),
		func() Config {
			c := defaultConfig()
			c.Store.Backend, c.Store.Etcd.Endpoints, c.Store.Etcd.Prefix = "etcd", []string{e.ClientURL}, "/wire-test/"
			return c
		}(),
	} {
		st, err := openStore(ctx, c, slog.Default())
		if err != nil {
			t.Fatalf("%s: %v", c.Store.Backend, err)
		}
		if err := st.PutUser(ctx, store.User{Name: "u"}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.GetUser(ctx, "u"); err != nil {
			t.Fatalf("%s: %v", c.Store.Backend, err)
		}
		alog, err := newAudit(st, prometheus.NewRegistry(), slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alog.Append(ctx, store.Event{Actor: "t", Action: "test"}); err != nil {
			t.Fatalf("%s: append: %v", c.Store.Backend, err)
		}
		_ = alog.Close()
		_ = st.Close()
	}
}

func TestOpenStoreRefusesAnUnreachableEtcd(t *testing.T) {
	c := defaultConfig()
	c.Store.Backend, c.Store.Etcd.Endpoints = "etcd", []string{"http://127.0.0.1:" + etcdtest.FreePort(t)}
	c.Store.Etcd.DialTimeout = 500_000_000
	if _, err := openStore(context.Background(), c, slog.Default()); err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Fatalf("an unreachable etcd must fail the start with its address, got %v", err)
	}
}
