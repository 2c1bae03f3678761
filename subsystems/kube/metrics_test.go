package kube

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsRequestsByVerbAndCode: requests are counted by verb and
// code, unknown verbs as "other"; watches and upgrades are counted but
// not timed.
func TestMetricsRequestsByVerbAndCode(t *testing.T) {
	m := NewMetrics()
	m.request("list", 200, 3*time.Millisecond)
	m.request("list", 403, time.Millisecond)
	m.request("watch", 200, time.Minute)
	m.request("create", 101, time.Hour) // exec
	m.request("BREW", 405, time.Millisecond)
	for _, c := range []struct {
		verb, code string
		want       float64
	}{{"list", "200", 1}, {"list", "403", 1}, {"watch", "200", 1}, {"create", "101", 1}, {"other", "405", 1}, {"BREW", "405", 0}} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.verb, c.code)); got != c.want {
			t.Errorf("requests{%s,%s} = %v, want %v", c.verb, c.code, got, c.want)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	timed := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "bastion_kube_request_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			timed[s.GetLabel()[0].GetValue()] = s.GetHistogram().GetSampleCount()
		}
	}
	if timed["list"] != 2 || timed["watch"] != 0 || timed["create"] != 0 || timed["other"] != 1 {
		t.Errorf("timed requests by verb: %v", timed)
	}
	done := m.tunnel()
	if testutil.ToFloat64(m.tunnels) != 1 {
		t.Error("tunnel not counted")
	}
	done()
	var none *Metrics
	none.request("get", 200, time.Second)
	none.tunnel()()
}
