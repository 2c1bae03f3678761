package requests

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sshbastion/bastion/authn"
)

// TestMetricsCountOutcomes: create, deny, create, approve, drop are each
// counted once under their outcome; refusals count nothing.
func TestMetricsCountOutcomes(t *testing.T) {
	s, _, _, _ := setup(t)
	m := NewMetrics()
	s.cfg.Metrics = m
	ctx := context.Background()
	alice, bob := authn.Principal{User: "alice"}, authn.Principal{User: "bob"}
	r, err := s.Create(ctx, alice, []string{"host-1"}, "INC-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(ctx, alice, r.ID, ""); err == nil {
		t.Fatal("self-approval")
	}
	if _, err := s.Deny(ctx, bob, r.ID, "no"); err != nil {
		t.Fatal(err)
	}
	r, err = s.Create(ctx, alice, []string{"host-1"}, "INC-2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(ctx, bob, r.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Drop(ctx, alice, r.ID, "done"); err != nil {
		t.Fatal(err)
	}
	for o, want := range map[string]float64{"created": 2, "denied": 1, "approved": 1, "dropped": 1, "expired": 0} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(o)); got != want {
			t.Errorf("access requests %s = %v, want %v", o, got, want)
		}
	}
}
