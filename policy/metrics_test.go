package policy

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sshbastion/bastion/store"
)

// TestMetricsTimeChecksByResult: each Check is observed once, under its
// result; an engine without metrics still answers.
func TestMetricsTimeChecksByResult(t *testing.T) {
	model, err := LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	r := newMemReader([]store.Tuple{{Object: "resource:web-1", Relation: "act", Subject: "user:bob"}})
	m := NewMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	e := New(model, r, WithMetrics(m))
	ctx := context.Background()
	if ok, err := e.Check(ctx, "user:bob", "act", "resource:web-1"); !ok || err != nil {
		t.Fatalf("bob act web-1: %v %v", ok, err)
	}
	if ok, _ := e.Check(ctx, "user:eve", "act", "resource:web-1"); ok {
		t.Fatal("eve may act on web-1")
	}
	if _, err := e.Check(ctx, "user:eve", "nosuch", "resource:web-1"); err == nil {
		t.Fatal("a relation the model lacks answered")
	}
	for _, res := range []string{"allow", "deny", "error"} {
		h := m.check.WithLabelValues(res).(prometheus.Histogram)
		if n := sampleCount(t, h); n != 1 {
			t.Errorf("result %s observed %d times, want 1", res, n)
		}
	}
	if n := testutil.CollectAndCount(m.check); n != 3 {
		t.Errorf("%d series, want 3 (allow, deny, error)", n)
	}
	plain := New(model, r)
	if ok, err := plain.Check(ctx, "user:bob", "act", "resource:web-1"); !ok || err != nil {
		t.Fatalf("without metrics: %v %v", ok, err)
	}
}

func sampleCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs[0].GetMetric()[0].GetHistogram().GetSampleCount()
}
