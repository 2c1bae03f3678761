package main

import (
	"strings"
	"testing"
	"time"
)

// The pre-auth and certificate settings: their defaults, and that each
// can be set.
func TestAuthBoundaryConfig(t *testing.T) {
	c, err := parseConfig([]byte(""))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.HandshakeTimeout != 10*time.Second || c.Auth.MaxStartupsRate != 30 || c.Auth.PerSourcePenalty != 15*time.Second ||
		c.Auth.PerSourcePenaltyMax != 10*time.Minute || !c.Auth.DisconnectExpiredCert || c.Auth.MaxStartupsStart != 0 {
		t.Fatalf("defaults: %+v", c.Auth)
	}
	c, err = parseConfig([]byte("auth:\n  handshake_timeout: 5s\n  max_startups_start: 50\n  max_startups_rate: 10\n" +
		"  per_source_penalty: -1s\n  per_source_penalty_max: 1m\n  disconnect_expired_cert: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.HandshakeTimeout != 5*time.Second || c.Auth.MaxStartupsStart != 50 || c.Auth.MaxStartupsRate != 10 ||
		c.Auth.PerSourcePenalty != -time.Second || c.Auth.PerSourcePenaltyMax != time.Minute || c.Auth.DisconnectExpiredCert {
		t.Fatalf("set: %+v", c.Auth)
	}
	for _, bad := range []string{"auth:\n  handshake_timeout: 0s\n", "auth:\n  max_startups_rate: 101\n"} {
		if _, err := parseConfig([]byte(bad)); err == nil || !strings.Contains(err.Error(), "auth.") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
