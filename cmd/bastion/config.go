package main

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/kube"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// Config is the YAML configuration of `bastion serve`.
type Config struct {
	Listen  string `yaml:"listen"`
	DataDir string `yaml:"data_dir"`
	// ReplicaID names this replica in session records (default: hostname
	// plus a random suffix); two live replicas may not share one.
	ReplicaID string `yaml:"replica_id"`
	// Store chooses the backend (badger in data_dir, or etcd).
	Store         StoreConfig `yaml:"store"`
	MetricsListen string      `yaml:"metrics_listen"`
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
		// HandshakeTimeout bounds accept to the end of the key exchange;
		// idle connections give their pre-auth slot back after it.
		HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
		// MaxStartupsStart and MaxStartupsRate: OpenSSH's start:rate of
		// MaxStartups, counted over connections past the key exchange (0
		// start: half of max_startups).
		MaxStartupsStart int `yaml:"max_startups_start"`
		MaxStartupsRate  int `yaml:"max_startups_rate"`
		// PerSourcePenalty is added to a source per connection cut before
		// its key exchange finished, up to PerSourcePenaltyMax (negative:
		// off); penalised sources lose their idle slots first.
		PerSourcePenalty    time.Duration `yaml:"per_source_penalty"`
		PerSourcePenaltyMax time.Duration `yaml:"per_source_penalty_max"`
		// DisconnectExpiredCert ends a certificate login's connection and
		// sessions at the certificate's expiry (default true).
		DisconnectExpiredCert bool `yaml:"disconnect_expired_cert"`
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
	// impersonated user and every impersonated group. Credentials are the
	// bastion's own apiserver identities, by name: Resources made over
	// ssh refer to one (--credentials NAME) and never name a file.
	Kube struct {
		UserPrefix  string                    `yaml:"user_prefix"`
		GroupPrefix string                    `yaml:"group_prefix"`
		Credentials map[string]KubeCredential `yaml:"credentials"`
	} `yaml:"kube"`
	// ResourcePolicy limits what Resources made over ssh may be (see
	// subsystems/commands/resources_rules.go and subsystems/netguard).
	ResourcePolicy struct {
		// Logins project admins may give ssh Resources; root is never
		// one of them (domain admins may set any login). Empty: project
		// admins set none, and users log in as themselves.
		Logins []string `yaml:"logins"`
		// AllowCIDRs re-open ranges refused by default (loopback,
		// link-local, unspecified, cloud metadata) for Resources made over
		// ssh; the bastion's own listeners stay refused.
		AllowCIDRs []string `yaml:"allow_cidrs"`
	} `yaml:"resource_policy"`
	// Requests: just-in-time access. Grants last DefaultTTL unless asked
	// otherwise, never more than MaxTTL or their project's cap.
	Requests struct {
		DefaultTTL    time.Duration            `yaml:"default_ttl"`
		MaxTTL        time.Duration            `yaml:"max_ttl"`
		ProjectMaxTTL map[string]time.Duration `yaml:"project_max_ttl"`
	} `yaml:"requests"`
	// SSHCertificates: the certificates `cert` signs with the bastion's
	// user CA, for targets reached by ProxyJump that trust that CA rather
	// than the user's key. TTL is their validity unless --ttl asks
	// otherwise, never more than MaxTTL.
	SSHCertificates struct {
		TTL    time.Duration `yaml:"ttl"`
		MaxTTL time.Duration `yaml:"max_ttl"`
	} `yaml:"ssh_certificates"`
	// OIDC: device-flow logins for people without a registered key.
	OIDC authn.OIDCConfig `yaml:"oidc"`
	// StepUp: the recent strong login that sessions need, by session
	// kind and by project (Resources add their own: step_up), and how
	// long a `step-up` counts on new connections (remember).
	StepUp stepup.Config `yaml:"step_up"`
	// UserCAKeys are the CAs (authorized_keys lines) whose OpenSSH user
	// certificates log in; principals name users.
	UserCAKeys   []string         `yaml:"user_ca_keys"`
	DrainTimeout time.Duration    `yaml:"drain_timeout"`
	Resources    []store.Resource `yaml:"resources"`

	storeEnvErr error // from BASTION_STORE, reported by validate
}

func defaultConfig() Config {
	var c Config
	c.Listen = ":2222"
	c.DataDir = "data"
	c.Store = defaultStoreConfig()
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
	c.Auth.HandshakeTimeout = 10 * time.Second
	c.Auth.MaxStartupsRate = 30
	c.Auth.PerSourcePenalty = 15 * time.Second
	c.Auth.PerSourcePenaltyMax = 10 * time.Minute
	c.Auth.DisconnectExpiredCert = true
	c.Keepalive.Interval = 15 * time.Second
	c.Keepalive.CountMax = 3
	c.DrainTimeout = 10 * time.Second
	c.Sessions.TTL = 30 * time.Minute
	c.Sessions.MaxTTL = 4 * time.Hour
	c.Sessions.IdleTimeout = 15 * time.Minute
	c.Forward.DialTimeout = 10 * time.Second
	c.SSHCertificates.TTL = 10 * time.Minute
	c.SSHCertificates.MaxTTL = time.Hour
	c.StepUp.Remember = stepup.DefaultRemember
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
	set("BASTION_SEQUENCER_LISTEN", &c.Store.Etcd.Sequencer.Listen)
	set("BASTION_SEQUENCER_ADVERTISE", &c.Store.Etcd.Sequencer.Advertise)
	if v := getenv("BASTION_ADMINS"); v != "" {
		c.Admins = strings.Split(v, ",")
	}
	// A malformed BASTION_STORE is reported by validate, which runs after.
	c.storeEnvErr = c.applyStoreEnv(getenv("BASTION_STORE"))
}

func (c *Config) validate() error {
	if c.storeEnvErr != nil {
		return c.storeEnvErr
	}
	if err := c.Store.validate(); err != nil {
		return err
	}
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
	if c.Auth.HandshakeTimeout <= 0 {
		return fmt.Errorf("auth.handshake_timeout: must be positive")
	}
	if c.Auth.MaxStartupsRate < 0 || c.Auth.MaxStartupsRate > 100 {
		return fmt.Errorf("auth.max_startups_rate: must be a percentage (0-100)")
	}
	if c.Sessions.TTL <= 0 || c.Sessions.MaxTTL <= 0 || c.Sessions.IdleTimeout <= 0 {
		return fmt.Errorf("sessions: ttl, max_ttl and idle_timeout must be positive")
	}
	if c.Sessions.TTL > c.Sessions.MaxTTL {
		return fmt.Errorf("sessions.ttl %s is above sessions.max_ttl %s", c.Sessions.TTL, c.Sessions.MaxTTL)
	}
	if err := c.validateSSHCertificates(); err != nil {
		return err
	}
	if err := c.validateResourcePolicy(); err != nil {
		return err
	}
	if err := c.StepUp.Validate(); err != nil {
		return err
	}
	names := map[string]string{} // every name and alias -> the Resource answering to it
	for i, r := range c.Resources {
		if r.Name == "" || r.Kind == "" {
			return fmt.Errorf("resources[%d]: name and kind are required", i)
		}
		switch r.Kind {
		case "ssh", "tcp", "kube":
		default:
			return fmt.Errorf("resources[%d] (%s): kind %q is not ssh, tcp or kube", i, r.Name, r.Kind)
		}
		if _, err := stepup.Parse(r.StepUp); err != nil {
			return fmt.Errorf("resources[%d] (%s): step_up: %v", i, r.Name, err)
		}
		for _, n := range append([]string{r.Name}, r.Aliases...) {
			if o, dup := names[n]; dup {
				return fmt.Errorf("resources[%d] (%s): the name or alias %q is also %s's: forwards would reach only one of them", i, r.Name, n, o)
			}
			names[n] = r.Name
		}
		if k := r.Kube; k != nil && k.Credentials != "" {
			if _, ok := c.Kube.Credentials[k.Credentials]; !ok {
				return fmt.Errorf("resources[%d] (%s): kube.credentials %q is not defined under kube.credentials", i, r.Name, k.Credentials)
			}
			if k.Kubeconfig != "" || k.Context != "" || k.InCluster {
				return fmt.Errorf("resources[%d] (%s): kube: give credentials or kubeconfig/context/in_cluster, not both", i, r.Name)
			}
		}
	}
	return nil
}

// maxCertTTL bounds ssh_certificates.max_ttl: targets cannot ask the
// bastion whether a certificate was revoked, so its validity is all that
// limits a stolen one.
const maxCertTTL = 24 * time.Hour

func (c *Config) validateSSHCertificates() error {
	sc := c.SSHCertificates
	if sc.TTL <= 0 || sc.MaxTTL <= 0 {
		return fmt.Errorf("ssh_certificates: ttl and max_ttl must be positive")
	}
	if sc.TTL > sc.MaxTTL {
		return fmt.Errorf("ssh_certificates.ttl %s is above ssh_certificates.max_ttl %s", sc.TTL, sc.MaxTTL)
	}
	if sc.MaxTTL > maxCertTTL {
		return fmt.Errorf("ssh_certificates.max_ttl %s is above %s: targets cannot check revocations, so validity is all that limits a stolen certificate", sc.MaxTTL, maxCertTTL)
	}
	return nil
}

// validateResourcePolicy checks resource_policy and kube.credentials.
func (c *Config) validateResourcePolicy() error {
	for _, l := range c.ResourcePolicy.Logins {
		if l == "root" {
			return fmt.Errorf("resource_policy.logins: root may be set by domain admins only and cannot be listed")
		}
		if l == "" || strings.ContainsAny(l, " \t@:/") {
			return fmt.Errorf("resource_policy.logins: %q is not a login", l)
		}
	}
	for _, cidr := range c.ResourcePolicy.AllowCIDRs {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			return fmt.Errorf("resource_policy.allow_cidrs: %q is not a CIDR (e.g. 127.0.0.0/8)", cidr)
		}
	}
	for name, k := range c.Kube.Credentials {
		if name == "" || strings.ContainsAny(name, " \t/") {
			return fmt.Errorf("kube.credentials: %q is not a name", name)
		}
		if (k.Kubeconfig == "") == !k.InCluster {
			return fmt.Errorf("kube.credentials.%s: give exactly one of kubeconfig and in_cluster", name)
		}
		if k.Context != "" && k.Kubeconfig == "" {
			return fmt.Errorf("kube.credentials.%s: context needs a kubeconfig", name)
		}
	}
	return nil
}

// KubeCredential is one of the bastion's apiserver identities: a
// kubeconfig file (and context), or the in-cluster service account. In
// YAML, a plain string is a kubeconfig path.
type KubeCredential struct {
	Kubeconfig string `yaml:"kubeconfig"`
	Context    string `yaml:"context"`
	InCluster  bool   `yaml:"in_cluster"`
}

// UnmarshalYAML accepts "PATH" as well as {kubeconfig, context, in_cluster}.
func (k *KubeCredential) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&k.Kubeconfig)
	}
	if n.Kind == yaml.MappingNode {
		// Decode below does not inherit the strict decoder: refuse unknown
		// keys here, a typo in a credential must not pass silently.
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch key := n.Content[i].Value; key {
			case "kubeconfig", "context", "in_cluster":
			default:
				return fmt.Errorf("line %d: kube credential: unknown field %q (want kubeconfig, context, in_cluster)", n.Content[i].Line, key)
			}
		}
	}
	type plain KubeCredential
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*k = KubeCredential(p)
	return nil
}

// kubeCredentials converts the config's kube.credentials for the kube
// module, and lists their names (sorted) for `resources add`.
func kubeCredentials(cfg Config) (map[string]kube.Credential, []string) {
	out := map[string]kube.Credential{}
	names := make([]string, 0, len(cfg.Kube.Credentials))
	for name, c := range cfg.Kube.Credentials {
		out[name] = kube.Credential{Kubeconfig: c.Kubeconfig, Context: c.Context, InCluster: c.InCluster}
		names = append(names, name)
	}
	sort.Strings(names)
	return out, names
}
