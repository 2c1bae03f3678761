package sftp

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsOpsAndBytes: ops are counted by op and result, unknown ops as
// "other"; bytes by direction. A nil *Metrics counts nothing.
func TestMetricsOpsAndBytes(t *testing.T) {
	m := NewMetrics()
	m.op("write", nil)
	m.op("write", errors.New("disk full"))
	m.op("chown-everything", nil)
	m.uploaded(100)
	m.downloaded(7)
	m.downloaded(0)
	m.refused()
	for _, c := range []struct {
		op, result string
		want       float64
	}{{"write", "ok", 1}, {"write", "error", 1}, {"other", "ok", 1}, {"chown-everything", "ok", 0}} {
		if got := testutil.ToFloat64(m.ops.WithLabelValues(c.op, c.result)); got != c.want {
			t.Errorf("ops{%s,%s} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
	if up, down := testutil.ToFloat64(m.up), testutil.ToFloat64(m.down); up != 100 || down != 7 {
		t.Errorf("bytes up %v down %v, want 100 and 7", up, down)
	}
	if testutil.ToFloat64(m.refusals) != 1 {
		t.Error("refusal not counted")
	}
	var none *Metrics
	none.op("read", nil)
	none.uploaded(1)
	none.downloaded(1)
	none.refused()
}
