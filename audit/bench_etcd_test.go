package audit_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// The etcd store chains replicas' events through its sequencer.
var _ audit.Sequencer = (*etcd.Store)(nil)

// p8Replicas Logs on etcd, p8Writers appenders each; the badger peer gets
// the same total number of appenders on its one Log. BASTION_P8_REPLICAS
// (1-3) changes it for a look at one chain's ceiling; the goal is about 3.
var p8Replicas = 3

// p8Writers is the number of appenders per replica (BASTION_P8_WRITERS,
// 64: 192 in all, half again as many as P5's 128 on one bastion).
func p8Writers(b *testing.B) int { return envInt(b, "BASTION_P8_WRITERS", 64, 1, 1024) }

// p8Duration is how long each side appends (BASTION_P8_SECONDS, 10 s).
func p8Duration(b *testing.B) time.Duration {
	return time.Duration(envInt(b, "BASTION_P8_SECONDS", 10, 1, 600)) * time.Second
}

// envInt reads a whole number from the environment, def if unset.
func envInt(b *testing.B, name string, def, lo, hi int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		b.Fatalf("%s=%q: want a whole number in %d-%d", name, s, lo, hi)
	}
	return n
}

// ackedEvent is one acknowledged append: its seq, the hash it had, how
// long its Append took and which Log (replica) took it.
type ackedEvent struct {
	seq     uint64
	hash    string
	took    time.Duration
	replica int
}

// appendPct is the nearest-rank percentile p (0-100) of the appends'
// latencies, in ms.
func appendPct(acked []ackedEvent, p float64) float64 {
	if len(acked) == 0 {
		return 0
	}
	ds := make([]time.Duration, len(acked))
	for i, a := range acked {
		ds[i] = a.took
	}
	slices.Sort(ds)
	i := max(0, min(int(float64(len(ds))*p/100+0.999999)-1, len(ds)-1))
	return float64(ds[i].Microseconds()) / 1000
}

// appendFor runs writers appenders on each Log until d has passed and
// returns what was acknowledged, how many appends were refused because
// their batch kept losing the chain head to other replicas (the Log gives
// up after 100 lost races: such an event is not acknowledged, and the
// action it records would be refused), and how long it took until the
// last appender returned. Any other failed append fails the benchmark.
func appendFor(b *testing.B, logs []*audit.Log, writers int, d time.Duration) ([]ackedEvent, int64, time.Duration) {
	b.Helper()
	var n, refused atomic.Int64
	var failed atomic.Bool
	var mu sync.Mutex
	var all []ackedEvent
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for r, l := range logs {
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []ackedEvent
				for !failed.Load() && time.Now().Before(deadline) {
					t0 := time.Now()
					e, err := l.Append(ctx, benchEvent(n.Add(1)))
					switch {
					case errors.Is(err, store.ErrConflict):
						refused.Add(1)
						continue
					case err != nil:
						if failed.CompareAndSwap(false, true) {
							b.Errorf("Append: %v", err)
						}
						return
					}
					mine = append(mine, ackedEvent{e.Seq, e.Hash, time.Since(t0), r})
				}
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	el := time.Since(start)
	if failed.Load() {
		b.FailNow()
	}
	return all, refused.Load(), el
}

// checkAcked fails the benchmark unless the acknowledged seqs are exactly
// 1..len(acked), each once, the chain in st verifies from genesis to
// exactly there, and every stored event has the hash it was acknowledged
// with.
func checkAcked(b *testing.B, st store.AuditLog, acked []ackedEvent) {
	b.Helper()
	n := uint64(len(acked))
	hashes := make([]string, n+1)
	for _, a := range acked {
		if a.seq == 0 || a.seq > n {
			b.Fatalf("seq %d acknowledged, beyond the %d acknowledged events: a gap", a.seq, n)
		}
		if hashes[a.seq] != "" {
			b.Fatalf("seq %d acknowledged twice: a fork", a.seq)
		}
		hashes[a.seq] = a.hash
	}
	r, err := audit.Verify(ctx, st)
	if err != nil || !r.OK || r.From != 0 || r.Count != n || r.LastSeq != n {
		b.Fatalf("Verify = %+v, %v; want OK over exactly the %d acknowledged events", r, err, n)
	}
	var seen uint64
	err = st.ScanEvents(ctx, 0, func(e store.Event) error {
		if e.Seq > n || hashes[e.Seq] != e.Hash {
			return fmt.Errorf("stored event %d has hash %.16s; acknowledged %.16s", e.Seq, e.Hash, hashes[min(e.Seq, n)])
		}
		seen++
		return nil
	})
	if err != nil || seen != n {
		b.Fatalf("stored events: %d, %v; want the %d acknowledged", seen, err, n)
	}
}

// p8Runner is one side of P8: its Logs, the store its chain is checked
// in, and what its rounds acknowledged and took.
type p8Runner struct {
	logs    []*audit.Log
	check   store.AuditLog
	acked   []ackedEvent
	refused int64
	el      time.Duration
}

// round appends from writers appenders on each of the side's Logs for d.
func (r *p8Runner) round(b *testing.B, writers int, d time.Duration) {
	a, ref, el := appendFor(b, r.logs, writers, d)
	r.acked, r.refused, r.el = append(r.acked, a...), r.refused+ref, r.el+el
}

// result checks the side's chain against what it acknowledged and
// returns its figures.
func (r *p8Runner) result(b *testing.B) p8Side {
	checkAcked(b, r.check, r.acked)
	return side(r.acked, r.refused, r.el)
}

// p8Etcd opens p8Replicas Logs, each on its own etcd client talking to
// its own member of c, under one prefix; closed when the benchmark ends.
func p8Etcd(b *testing.B, c *etcdtest.Cluster, prefix string) (*p8Runner, []*etcd.Store) {
	b.Helper()
	r := &p8Runner{}
	var stores []*etcd.Store
	for i := range p8Replicas {
		m := c.Members[i%len(c.Members)]
		st, err := etcd.Open(ctx, etcd.Options{Endpoints: []string{m.ClientURL}, Prefix: prefix, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		l, err := audit.New(st, audit.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		stores, r.logs = append(stores, st), append(r.logs, l)
	}
	// Verified through a client of the last member, not one that wrote
	// most of it.
	r.check = stores[len(stores)-1]
	return r, stores
}

// etcdLeader returns which store's member leads the etcd cluster, -1 if
// none says so.
func etcdLeader(c *etcdtest.Cluster, stores []*etcd.Store) int {
	for i, st := range stores {
		m := c.Members[i%len(c.Members)]
		if r, err := st.Client().Status(ctx, m.ClientURL); err == nil && r.Leader == r.Header.MemberId {
			return i
		}
	}
	return -1
}

// p8Side is what one side of P8 measured: acknowledged events/s, Append
// latency percentiles in ms, refused appends, the acknowledged events of
// each replica, and which replica's member led the etcd cluster (-1: not
// known).
type p8Side struct {
	rate, p50, p99, max float64
	refused             int64
	perReplica          []int
	leader              int
}

func side(acked []ackedEvent, refused int64, el time.Duration) p8Side {
	s := p8Side{rate: float64(len(acked)) / el.Seconds(), p50: appendPct(acked, 50), p99: appendPct(acked, 99),
		max: appendPct(acked, 100), refused: refused, leader: -1}
	for _, a := range acked {
		for len(s.perReplica) <= a.replica {
			s.perReplica = append(s.perReplica, 0)
		}
		s.perReplica[a.replica]++
	}
	return s
}

// p8Badger opens one Log on badger, on disk, SyncWrites: what one
// replica does today.
func p8Badger(b *testing.B) *p8Runner {
	b.Helper()
	st := openDisk(b, b.TempDir())
	b.Cleanup(func() { st.Close() })
	l, err := audit.New(st, audit.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return &p8Runner{logs: []*audit.Log{l}, check: st}
}

// BenchmarkAuditReplicasEtcd (P8): durable, hash-chained audit appends/s
// from three replicas, three Logs on three etcd clients (one per member
// of a 3-member cluster on loopback) sharing one prefix, p8Writers
// concurrent appenders each, against one Log on badger with as many
// appenders, in the same run. Each side appends for p8Duration in all,
// in BASTION_P8_ROUNDS turns (1) taken in alternation; only
// acknowledged events count, and each side's chain must verify over
// exactly them (a gap, a fork, a stored event that was not acknowledged
// or one with another hash fails the benchmark), and so does any refused
// append: a refused event is an action refused for want of its record.
// Run it with -benchtime=1x.
func BenchmarkAuditReplicasEtcd(b *testing.B) {
	c := etcdtest.StartCluster(b, 3)
	d, w := p8Duration(b), p8Writers(b)
	p8Replicas = envInt(b, "BASTION_P8_REPLICAS", 3, 1, 3)
	rounds := envInt(b, "BASTION_P8_ROUNDS", 1, 1, 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		etcdSide, stores := p8Etcd(b, c, fmt.Sprintf("/p8-%d/", i))
		badgerSide := p8Badger(b)
		// The sides take turns, the first of each pair alternating, to
		// spread this machine's drift over both. One turn each by
		// default, etcd first: badger's compactions go on after its
		// turn and slowed the etcd turns after them (4 turns: 0.21x,
		// where one turn each measured 0.22-0.26x on the same code).
		for k := range rounds {
			first, second := etcdSide, badgerSide
			if k%2 == 1 {
				first, second = badgerSide, etcdSide
			}
			// Both sides get p8Replicas*w appenders in all.
			for _, r := range []*p8Runner{first, second} {
				r.round(b, p8Replicas*w/len(r.logs), d/time.Duration(rounds))
			}
		}
		var conflicts uint64
		for _, l := range etcdSide.logs {
			conflicts += l.Conflicts()
		}
		for i, st := range stores {
			fw, in := st.SequencerStats()
			b.Logf("replica %d: %d batches forwarded to the sequencer, %d through the inbox", i, fw, in)
		}
		ours, peer := etcdSide.result(b), badgerSide.result(b)
		ours.leader = etcdLeader(c, stores)
		b.Logf("%d s each in %d turns, %d appenders: 3 replicas on 3-member etcd %.0f events/s, Append p50 %.1f ms p99 %.1f ms max %.0f ms, %d appends refused, %d batches re-chained after losing the head, acknowledged per replica %v (replica %d talks to the etcd leader); one Log on badger %.0f events/s, p50 %.1f ms p99 %.1f ms max %.0f ms, %d refused",
			int(d.Seconds()), rounds, p8Replicas*w, ours.rate, ours.p50, ours.p99, ours.max, ours.refused, conflicts, ours.perReplica, ours.leader, peer.rate, peer.p50, peer.p99, peer.max, peer.refused)
		b.ReportMetric(ours.rate, "etcd3_events/s")
		b.ReportMetric(peer.rate, "badger_events/s")
		b.ReportMetric(ours.rate/peer.rate, "ratio")
		b.ReportMetric(ours.p99, "etcd3_p99_ms")
		b.ReportMetric(peer.p99, "badger_p99_ms")
		b.ReportMetric(ours.max, "etcd3_max_ms")
		b.ReportMetric(float64(conflicts)/d.Seconds(), "conflicts/s")
		b.ReportMetric(float64(ours.refused), "etcd3_refused")
		b.ReportMetric(float64(peer.refused), "badger_refused")
		if ours.refused+peer.refused > 0 {
			b.Fatalf("%d appends on etcd and %d on badger were refused", ours.refused, peer.refused)
		}
	}
}
