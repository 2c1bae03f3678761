package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Config is the YAML configuration of `bastion serve`.
type Config struct {
	Listen        string `yaml:"listen"`
	DataDir       string `yaml:"data_dir"`
	MetricsListen string `yaml:"metrics_listen"`
	// Host is how users reach the bastion, used in the examples the
	// bastion prints ("ssh -p 2222 localhost").
	Host string `yaml:"host"`
	Log  struct {
		Format string `yaml:"format"` // text or json
		Level  string `yaml:"level"`
	} `yaml:"log"`
	// Domain is the tenancy root (default "default").
	Domain string `yaml:"domain"`
	// Admins is the bootstrap admin list: each becomes
	// domain:<Domain>#admin@user:<name> at start.
	Admins []string `yaml:"admins"`
	Auth   struct {
		PreAuthTimeout       time.Duration `yaml:"pre_auth_timeout"`
		MaxAuthTries         int           `yaml:"max_auth_tries"`
		FailedConnsPerSource int           `yaml:"failed_conns_per_source"`
		FailWindow           time.Duration `yaml:"fail_window"`
		MaxStartups          int           `yaml:"max_startups"`
		MaxStartupsPerSource int           `yaml:"max_startups_per_source"`
	} `yaml:"auth"`
	Keepalive struct {
		Interval time.Duration `yaml:"interval"`
		CountMax int           `yaml:"count_max"`
	} `yaml:"keepalive"`
	Sessions struct {
		TTL         time.Duration `yaml:"ttl"`
		MaxTTL      time.Duration `yaml:"max_ttl"`
		IdleTimeout time.Duration `yaml:"idle_timeout"`
	} `yaml:"sessions"`
	Forward struct {
		DialTimeout time.Duration `yaml:"dial_timeout"`
	} `yaml:"forward"`
	// Kube: how users appear to apiservers. The prefixes go before the
	// impersonated user and every impersonated group.
	Kube struct {
		UserPrefix  string `yaml:"user_prefix"`
		GroupPrefix string `yaml:"group_prefix"`
	} `yaml:"kube"`
	// Requests: just-in-time access. Grants last DefaultTTL unless asked
	// otherwise, never more than MaxTTL or their project's cap.
	Requests struct {
		DefaultTTL    time.Duration            `yaml:"default_ttl"`
		MaxTTL        time.Duration            `yaml:"max_ttl"`
		ProjectMaxTTL map[string]time.Duration `yaml:"project_max_ttl"`
	} `yaml:"requests"`
	// OIDC: device-flow logins for people without a registered key.
	OIDC authn.OIDCConfig `yaml:"oidc"`
	// UserCAKeys are the CAs (authorized_keys lines) whose OpenSSH user
	// certificates log in; principals name users.
	UserCAKeys   []string         `yaml:"user_ca_keys"`
	DrainTimeout time.Duration    `yaml:"drain_timeout"`
	Resources    []store.Resource `yaml:"resources"`
}

func defaultConfig() Config {
	var c Config
	c.Listen = ":2222"
	c.DataDir = "data"
	c.Domain = "default"
	c.MetricsListen = "127.0.0.1:9222"
	c.Log.Format = "text"
	c.Log.Level = "info"
	c.Auth.PreAuthTimeout = 30 * time.Second
	c.Auth.MaxAuthTries = 6
	c.Auth.FailedConnsPerSource = 20
	c.Auth.FailWindow = time.Minute
	c.Auth.MaxStartups = 200
	c.Auth.MaxStartupsPerSource = 20
	c.Keepalive.Interval = 15 * time.Second
	c.Keepalive.CountMax = 3
	c.DrainTimeout = 10 * time.Second
	c.Sessions.TTL = 30 * time.Minute
	c.Sessions.MaxTTL = 4 * time.Hour
	c.Sessions.IdleTimeout = 15 * time.Minute
	c.Forward.DialTimeout = 10 * time.Second
	return c
}

// parseConfig reads YAML over the defaults. Unknown fields are errors, so
// that a typo in a security setting is not silently ignored.
func parseConfig(data []byte) (Config, error) {
	c := defaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
		return c, err
	}
	return c, c.validate()
}

func loadConfig(path string) (Config, error) {
	if path == "" {
		c := defaultConfig()
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := parseConfig(data)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// applyEnv lets BASTION_* environment variables override the file.
func (c *Config) applyEnv(getenv func(string) string) {
	set := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set("BASTION_LISTEN", &c.Listen)
	set("BASTION_DATA_DIR", &c.DataDir)
	set("BASTION_METRICS_LISTEN", &c.MetricsListen)
	set("BASTION_HOST", &c.Host)
	set("BASTION_LOG_FORMAT", &c.Log.Format)
	set("BASTION_LOG_LEVEL", &c.Log.Level)
	if v := getenv("BASTION_ADMINS"); v != "" {
		c.Admins = strings.Split(v, ",")
	}
}

func (c *Config) validate() error {
	if c.Listen == "" {
		return fmt.Errorf("listen: must not be empty")
	}
	if c.DataDir == "" {
		return fmt.Errorf("data_dir: must not be empty")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format: %q is neither text nor json", c.Log.Format)
	}
	if c.Auth.PreAuthTimeout <= 0 {
		return fmt.Errorf("auth.pre_auth_timeout: must be positive")
	}
	if c.Auth.MaxAuthTries <= 0 {
		return fmt.Errorf("auth.max_auth_tries: must be positive")
	}
	if c.Sessions.TTL <= 0 || c.Sessions.MaxTTL <= 0 || c.Sessions.IdleTimeout <= 0 {
		return fmt.Errorf("sessions: ttl, max_ttl and idle_timeout must be positive")
	}
	if c.Sessions.TTL > c.Sessions.MaxTTL {
		return fmt.Errorf("sessions.ttl %s is above sessions.max_ttl %s", c.Sessions.TTL, c.Sessions.MaxTTL)
	}
	for i, r := range c.Resources {
		if r.Name == "" || r.Kind == "" {
			return fmt.Errorf("resources[%d]: name and kind are required", i)
		}
		switch r.Kind {
		case "ssh", "tcp", "kube":
		default:
			return fmt.Errorf("resources[%d] (%s): kind %q is not ssh, tcp or kube", i, r.Name, r.Kind)
		}
	}
	return nil
}
