package sessions

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sshbastion/bastion/store"
)

// TestMetricsFollowOpenAndEnd: the open gauge follows Open and End by
// kind, each end is counted once under its reason's label, and free-text
// reasons fall into "other".
func TestMetricsFollowOpenAndEnd(t *testing.T) {
	m, _, _ := setup(t)
	met := NewMetrics()
	m.cfg.Metrics = met
	reasons := make(chan string, 10)
	a := open(t, m, store.Resource{Name: "web-1"}, reasons)
	b := open(t, m, store.Resource{Name: "web-1"}, reasons)
	if got := testutil.ToFloat64(met.open.WithLabelValues("forward")); got != 2 {
		t.Fatalf("open forwards %v, want 2", got)
	}
	m.End(a, ReasonStoreLost)
	m.End(a, ReasonClientClosed) // a second End changes nothing
	m.End(b, "something a module made up")
	if got := testutil.ToFloat64(met.open.WithLabelValues("forward")); got != 0 {
		t.Errorf("open forwards %v after both ended, want 0", got)
	}
	for reason, want := range map[string]float64{"store_lost": 1, "client_closed": 0, "other": 1} {
		if got := testutil.ToFloat64(met.closed.WithLabelValues("forward", reason)); got != want {
			t.Errorf("closed{forward,%s} = %v, want %v", reason, got, want)
		}
	}
	// Without metrics the manager works as before.
	m.cfg.Metrics = nil
	c := open(t, m, store.Resource{Name: "web-1"}, reasons)
	m.End(c, ReasonTTL)
}
