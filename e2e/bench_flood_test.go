package e2e

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// BenchmarkLoginUnderFlood (P11): how long the real ssh client takes to log
// in (handshake, publickey, audited whoami) while idle sockets that never
// send a byte hold every pre-auth slot (max_startups 200) and reconnect
// when dropped: 20 each from 10 loopback sources, then one each from 260.
// The goal is a login within 5 s. The same logins without a flood are the
// baseline. Run it with -benchtime=1x.
func BenchmarkLoginUnderFlood(b *testing.B) {
	dir := b.TempDir()
	alice := harness.NewKey(b, dir, "alice")
	bastion := harness.Start(b, harness.Options{Admin: "alice", AdminKeys: []harness.Key{alice}, LogLevel: "info", Env: benchEnv()})
	const n = 20
	logins := func(what string) []time.Duration {
		var ds []time.Duration
		for i := 0; i < n; i++ {
			start := time.Now()
			r := bastion.SSHRun(harness.Run{Key: &alice, Args: []string{"whoami"}, Timeout: 60 * time.Second})
			d := time.Since(start)
			if r.Code != 0 || !strings.Contains(r.Stdout, "alice") {
				b.Fatalf("login %d %s failed after %s: exit %d %s", i, what, d, r.Code, r.Stderr)
			}
			ds = append(ds, d)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds
	}
	underFlood := func(sources []string) []time.Duration {
		f := startIdleFlood(b, bastion.Addr, sources)
		defer f.Stop()
		waitSlotsFull(b, bastion, 200)
		return logins("under the flood")
	}
	logins("warm-up")
	for it := 0; it < b.N; it++ {
		base := logins("without a flood")
		few := underFlood(floodSources(10, 20, 0))
		many := underFlood(floodSources(260, 1, 1))
		b.Logf("%d logins each, p50 / max ms: no flood %.0f / %.0f; 10 sources x 20 %.0f / %.0f; 260 sources x 1 %.0f / %.0f",
			n, pct(base, 50), pct(base, 100), pct(few, 50), pct(few, 100), pct(many, 50), pct(many, 100))
		b.ReportMetric(pct(base, 50), "baseline_p50_ms")
		b.ReportMetric(pct(few, 50), "flood10x20_p50_ms")
		b.ReportMetric(pct(few, 100), "flood10x20_max_ms")
		b.ReportMetric(pct(many, 50), "flood260x1_p50_ms")
		b.ReportMetric(pct(many, 100), "flood260x1_max_ms")
	}
}
