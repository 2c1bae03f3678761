package stepup

import (
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sshbastion/bastion/authn"
)

// A step-up counts only for the user the IdP logged in, and an auth_time
// from the future is not believed.
func TestLoginOf(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	p := authn.Principal{User: "alice", KeyFingerprint: "SHA256:k", SessionID: "c1"}
	if _, err := LoginOf(p, authn.Identity{User: "mallory", AuthTime: now}, now); err == nil {
		t.Fatal("a step-up by another account was accepted")
	}
	l, err := LoginOf(p, authn.Identity{User: "alice", AuthTime: now.Add(time.Hour), ACR: "gold", AMR: []string{"otp"}}, now)
	if err != nil || !l.At.Equal(now) || !l.MFA || !l.Strong || l.ACR != "gold" {
		t.Fatalf("LoginOf = %+v, %v; want auth_time clamped to now, mfa from amr", l, err)
	}
	d := CompleteDetails(p, l)
	if d["acr"] != "gold" || d["amr"] != "otp" || d["fingerprint"] != "SHA256:k" || d["auth_time"] != now.Format(time.RFC3339) {
		t.Fatalf("CompleteDetails = %v", d)
	}
	if got := WaitDeadline(&oauth2.DeviceAuthResponse{Expiry: now.Add(time.Hour)}, now); !got.Equal(now.Add(MaxWait)) {
		t.Fatalf("WaitDeadline of a long-lived code = %v; want capped at %v", got, MaxWait)
	}
	if got := WaitDeadline(&oauth2.DeviceAuthResponse{Expiry: now.Add(time.Minute)}, now); !got.Equal(now.Add(time.Minute)) {
		t.Fatalf("WaitDeadline of a short code = %v", got)
	}
}
