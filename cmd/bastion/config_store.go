package main

import (
	"fmt"
	"strings"
	"time"
)

// StoreConfig chooses where the bastion keeps its state: the embedded
// badger store (the default, one process) or etcd (several replicas).
type StoreConfig struct {
	// Backend is "badger" (default; data_dir holds it) or "etcd".
	Backend string     `yaml:"backend"`
	Etcd    EtcdConfig `yaml:"etcd"`
	// LostGrace is how long a replica that cannot reach the store keeps
	// live sessions before cutting them (10 s); LostMode "best_effort"
	// keeps them. A replica that cannot see revocations must not keep
	// doors open, hence the default.
	LostGrace time.Duration `yaml:"lost_grace"`
	LostMode  string        `yaml:"lost_mode"`
}

// EtcdConfig is how to reach the etcd cluster.
type EtcdConfig struct {
	Endpoints   []string      `yaml:"endpoints"`
	Prefix      string        `yaml:"prefix"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
	TLS         struct {
		CA   string `yaml:"ca"`
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Sequencer is where this replica takes the other replicas' audit
	// batches while it sequences the chain (store/etcd, seqforward.go).
	// Listen defaults to 127.0.0.1:0, enough for replicas on one host;
	// replicas on several hosts listen on an address they can reach and
	// advertise it (BASTION_SEQUENCER_ADVERTISE). "-" turns it off:
	// batches then go through etcd, at about half the rate.
	Sequencer struct {
		Listen    string `yaml:"listen"`
		Advertise string `yaml:"advertise"`
	} `yaml:"sequencer"`
}

func defaultStoreConfig() StoreConfig {
	return StoreConfig{Backend: "badger", LostGrace: 10 * time.Second, LostMode: "fail_closed",
		Etcd: EtcdConfig{Prefix: "/bastion/", DialTimeout: 5 * time.Second}}
}

// applyStoreEnv reads BASTION_STORE: "etcd://HOST:PORT[,HOST:PORT...]"
// or "badger:DIR".
func (c *Config) applyStoreEnv(v string) error {
	switch {
	case v == "":
		return nil
	case strings.HasPrefix(v, "etcd://"):
		c.Store.Backend = "etcd"
		c.Store.Etcd.Endpoints = nil
		for _, h := range strings.Split(strings.TrimPrefix(v, "etcd://"), ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.Store.Etcd.Endpoints = append(c.Store.Etcd.Endpoints, "http://"+h)
			}
		}
		return nil
	case strings.HasPrefix(v, "badger:"):
		c.Store.Backend = "badger"
		if dir := strings.TrimPrefix(v, "badger:"); dir != "" {
			c.DataDir = dir
		}
		return nil
	}
	return fmt.Errorf("BASTION_STORE=%q: want etcd://HOST:PORT[,HOST:PORT...] or badger:DIR", v)
}

func (s StoreConfig) validate() error {
	switch s.Backend {
	case "badger":
	case "etcd":
		if len(s.Etcd.Endpoints) == 0 {
			return fmt.Errorf("store.etcd.endpoints: at least one endpoint is needed for the etcd backend")
		}
		if s.Etcd.Prefix == "" || !strings.HasSuffix(s.Etcd.Prefix, "/") {
			return fmt.Errorf("store.etcd.prefix %q: must be non-empty and end in /", s.Etcd.Prefix)
		}
		t := s.Etcd.TLS
		if (t.Cert == "") != (t.Key == "") {
			return fmt.Errorf("store.etcd.tls: cert and key go together")
		}
	default:
		return fmt.Errorf("store.backend %q: want badger or etcd", s.Backend)
	}
	switch s.LostMode {
	case "fail_closed", "best_effort":
	default:
		return fmt.Errorf("store.lost_mode %q: want fail_closed or best_effort", s.LostMode)
	}
	if s.LostGrace <= 0 {
		return fmt.Errorf("store.lost_grace: must be positive")
	}
	return nil
}
