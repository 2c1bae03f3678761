package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestDevConfigLoads(t *testing.T) {
	c, err := loadConfig("../../examples/dev/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:2222" || c.Auth.MaxAuthTries != 6 || c.Sessions.MaxTTL != 4*time.Hour || len(c.Resources) == 0 {
		t.Fatalf("dev config = %+v", c)
	}
}

func TestConfigRejectsMistakes(t *testing.T) {
	for src, want := range map[string]string{
		"listen: :2222\nauht:\n  max_auth_tries: 3\n": "auht",
		"log:\n  format: xml\n":                       "log.format",
		"resources:\n  - name: x\n    kind: ftp\n":    "kind",
		"sessions:\n  ttl: 5h\n  max_ttl: 4h\n":       "max_ttl",
		"auth:\n  pre_auth_timeout: -1s\n":            "pre_auth_timeout",
		"listen: [\n":                                 "yaml",
		"ssh_certificates:\n  ttl: 2h\n":              "ssh_certificates.ttl",
		"ssh_certificates:\n  max_ttl: 48h\n":         "ssh_certificates.max_ttl",
		"ssh_certificates:\n  ttl: 0s\n":              "ssh_certificates",
	} {
		_, err := parseConfig([]byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseConfig(%q) = %v, want an error naming %q", src, err, want)
		}
	}
}

func TestEnvOverridesFile(t *testing.T) {
	c := defaultConfig()
	env := map[string]string{"BASTION_LISTEN": "127.0.0.1:2300", "BASTION_ADMINS": "a,b"}
	c.applyEnv(func(k string) string { return env[k] })
	if c.Listen != "127.0.0.1:2300" || len(c.Admins) != 2 {
		t.Fatalf("env not applied: %+v", c)
	}
}

// FuzzParseConfig: any input gives a config or an error, never a panic,
// and an accepted config is valid.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("../../examples/dev/config.yaml"); err == nil {
		f.Add(string(b))
	}
	f.Add("listen: :1\n")
	f.Add("resources:\n  - {name: a, kind: tcp, ports: [1, 2]}\n")
	f.Fuzz(func(t *testing.T, src string) {
		c, err := parseConfig([]byte(src))
		if err == nil {
			if verr := c.validate(); verr != nil {
				t.Fatalf("accepted an invalid config: %v", verr)
			}
		}
	})
}
