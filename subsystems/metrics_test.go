package subsystems

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// TestMetricsAuthFailuresByMethodAndReason: each failed login is counted
// once, under the method it tried and why it failed; a success under
// bastion_auth_total as before.
func TestMetricsAuthFailuresByMethodAndReason(t *testing.T) {
	alice := newSigner(t)
	fp := gossh.FingerprintSHA256(alice.PublicKey())
	mk := &memKeys{keys: map[string]store.Key{fp: {Fingerprint: fp, User: "alice"}}, users: map[string]store.User{"alice": {Name: "alice"}}}
	table := NewTable()
	_ = table.Command(Command{Name: "whoami", Run: func(context.Context, ssh.Session, []string) int { return 0 }})
	reg := prometheus.NewPedanticRegistry()
	srv, err := New(Config{HostSigners: []gossh.Signer{newSigner(t)}, PreAuthTimeout: 5 * time.Second},
		table, &authn.PublicKeys{Store: mk}, &memAudit{}, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	_, _ = run(t, addr)                                 // none only
	_, _ = run(t, addr, gossh.Password("hunter2"))      // no password offered: the client sends none again
	_, _ = run(t, addr, gossh.PublicKeys(newSigner(t))) // unregistered key
	if _, err := run(t, addr, gossh.PublicKeys(alice)); err != nil {
		t.Fatal(err)
	}
	fails := srv.metrics.authFail
	defer func() {
		if t.Failed() {
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "bastion_auth_failures_total" {
					for _, m := range mf.GetMetric() {
						t.Logf("%v %v", m.GetLabel(), m.GetCounter().GetValue())
					}
				}
			}
		}
	}()
	want := map[[2]string]float64{{"none", "no_credential"}: 2, {"publickey", "unknown_key"}: 1}
	waitUntil(t, func() bool {
		for k, v := range want {
			if testutil.ToFloat64(fails.WithLabelValues(k[0], k[1])) != v {
				return false
			}
		}
		return true
	})
	if got := testutil.ToFloat64(srv.metrics.auth.WithLabelValues("publickey", "success")); got != 1 {
		t.Errorf("bastion_auth_total{publickey,success} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(srv.metrics.auth.WithLabelValues("any", "fail")); got != 3 {
		t.Errorf("bastion_auth_total{any,fail} = %v, want 3", got)
	}
	// The registry gathers cleanly (pedantic: help strings, consistency).
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "bastion_preauth_slots_in_use", "bastion_preauth_slots_limit"); err != nil || n != 2 {
		t.Fatalf("pre-auth slot gauges: %d %v", n, err)
	}
}

// TestMetricsPreauthRefusalsAndSlots: refusals are counted by reason, and
// the slots in use follow admissions and releases.
func TestMetricsPreauthRefusalsAndSlots(t *testing.T) {
	s, c := testStartups(startupLimits{Max: 2, PerSource: 1})
	got := map[string]int{}
	s.refused = func(r string) { got[r]++ }
	a, _ := mustAdmit(t, s, c, "10.0.0.1:1")
	s.handshaken(a)
	if sl, _, _ := conn(t, s, c, "10.0.0.1:2"); sl != nil {
		t.Fatal("admitted over the per-source cap")
	}
	b, _ := mustAdmit(t, s, c, "10.0.0.2:1")
	s.handshaken(b)
	if sl, _, _ := conn(t, s, c, "10.0.0.3:1"); sl != nil {
		t.Fatal("admitted over the cap")
	}
	if got["per_source"] != 1 || got["full"] != 1 || len(got) != 2 {
		t.Fatalf("refusals %v", got)
	}
	if s.inUse() != 2 {
		t.Fatalf("slots in use %d, want 2", s.inUse())
	}
	s.release(a)
	if s.inUse() != 1 {
		t.Fatalf("slots in use %d after a release, want 1", s.inUse())
	}
}
