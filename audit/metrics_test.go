package audit_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
)

// histCount gathers reg and returns the sample count of histogram name.
func histCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}

// TestMetricsCountAppendsFailuresAndLosses: stored events, failed ones,
// commits (with their batch sizes) and lost events are counted.
func TestMetricsCountAppendsFailuresAndLosses(t *testing.T) {
	m := audit.NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	mem := memStore(t)
	st := &stalled{AuditLog: mem, release: make(chan struct{})}
	close(st.release)
	l := newLog(t, st, audit.Options{Metrics: m})
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, store.Event{Actor: "a", Action: "test.ok"}); err != nil {
			t.Fatal(err)
		}
	}
	st.fail.Store(true)
	if _, err := l.Append(ctx, store.Event{Actor: "a", Action: "test.fail"}); !errors.Is(err, errDisk) {
		t.Fatalf("append on a failing store: %v", err)
	}
	l.Lost("test", store.Event{Action: "test.lost"})

	if got := testutil.ToFloat64(m.Collectors()[0]); got != 3 {
		t.Errorf("bastion_audit_events_appended_total = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.Collectors()[1]); got != 1 {
		t.Errorf("bastion_audit_append_failures_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.LostEvents()); got != 1 {
		t.Errorf("bastion_audit_lost_events_total = %v, want 1", got)
	}
	// Each Append waited for its own commit: 4 commits of one event.
	if got := histCount(t, reg, "bastion_audit_commit_duration_seconds"); got != 4 {
		t.Errorf("commits observed: %d, want 4", got)
	}
	if got := histCount(t, reg, "bastion_audit_batch_size_events"); got != 4 {
		t.Errorf("batch sizes observed: %d, want 4", got)
	}
}

// TestNilMetrics: a Log without metrics counts nothing and still works.
func TestNilMetrics(t *testing.T) {
	var m *audit.Metrics
	if m.Collectors() != nil || m.LostEvents() != nil {
		t.Fatal("a nil *Metrics has collectors")
	}
	l := newLog(t, memStore(t), audit.Options{Metrics: m})
	if _, err := l.Append(ctx, store.Event{Action: "test.ok"}); err != nil {
		t.Fatal(err)
	}
	l.Lost("test", store.Event{Action: "test.lost"})
}
