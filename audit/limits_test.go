package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// diskStore opens badger on disk with the options the server uses
// (cmd/bastion: badger.Options{Logger: ...}).
func diskStore(t testing.TB) *badger.Store {
	t.Helper()
	s, err := badger.Open(t.TempDir(), badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBurstOfLargeEvents: 256 goroutines x 20 appends of events with 8 KiB
// of details. Batched by count alone (1024 events, ~8 MiB) they outgrew a
// badger transaction and most appends failed with "Txn is too big"; sized
// by the store's TxnLimits, every one is stored.
func TestBurstOfLargeEvents(t *testing.T) {
	st := diskStore(t)
	l := newLog(t, st, audit.Options{})
	const workers, each = 256, 20
	body := strings.Repeat("d", 8<<10)
	var failed atomic.Int64
	var firstErr atomic.Value
	seqs := make([]atomic.Bool, workers*each+1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e, err := l.Append(ctx, store.Event{Actor: fmt.Sprintf("user:w%d", w), Action: "shell.input",
					Details: map[string]string{"data": body, "i": fmt.Sprint(i)}})
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				if e.Seq == 0 || e.Seq > workers*each || seqs[e.Seq].Swap(true) {
					t.Errorf("seq %d out of range or given twice", e.Seq)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d appends failed, first: %v", n, workers*each, firstErr.Load())
	}
	mustVerify(t, st, workers*each) // contiguous 1..5120, chained
}

// TestHugeFieldsAreStoredTruncated: 70,000-byte login name, target and
// command are stored, cut with a marker of the original, and verify.
func TestHugeFieldsAreStoredTruncated(t *testing.T) {
	st := diskStore(t)
	l := newLog(t, st, audit.Options{})
	long := strings.Repeat("A", 70000)
	marker := "…[truncated: 70000 bytes, sha256:"
	e, err := l.Append(ctx, store.Event{Actor: long, Action: "auth.fail", Target: long,
		Details: map[string]string{"command": long, "user": long}})
	if err != nil {
		t.Fatalf("Append of an event with 70 KB fields: %v", err)
	}
	got, err := l.Query(ctx, store.EventFilter{Action: "auth.fail"})
	if err != nil || len(got) != 1 {
		t.Fatalf("Query: %d events, %v", len(got), err)
	}
	for _, f := range []string{got[0].Actor, got[0].Target, got[0].Details["command"], got[0].Details["user"]} {
		if !strings.Contains(f, marker) || len(f) > audit.MaxFieldSize {
			t.Fatalf("stored field of %d bytes: %.60q…", len(f), f)
		}
	}
	if got[0].Hash != e.Hash || audit.Hash(got[0]) != e.Hash {
		t.Fatal("the stored event is not the one returned and hashed")
	}
	// In a kube.request batch, the long one no longer takes the others
	// with it.
	evs := []store.Event{{Actor: "user:a", Action: "kube.request", Target: "/api/v1/pods"},
		{Actor: "user:b", Action: "kube.request", Target: "/api/v1/" + long},
		{Actor: "user:c", Action: "kube.request", Target: "/api/v1/nodes"}}
	if err := l.AppendAll(ctx, evs); err != nil {
		t.Fatalf("AppendAll with a 70 KB path: %v", err)
	}
	mustVerify(t, st, 4)
}

// limited is a store that says how much one transaction holds, and fails
// any call beyond it with store.ErrTxnTooBig (as etcd would, with 128 ops
// and 1.5 MiB), recording the largest call it accepted.
type limited struct {
	store.AuditLog
	maxBytes, maxOps int
	mu               sync.Mutex
	calls, multi     int
	refused          int
}

func (s *limited) TxnLimits() (int, int) { return s.maxBytes, s.maxOps }

func (s *limited) AppendEvents(ctx context.Context, evs []store.Event) error {
	n := 0
	for _, e := range evs {
		b, _ := json.Marshal(e)
		n += len(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(evs) > s.maxOps || n > s.maxBytes {
		s.refused++
		return fmt.Errorf("fake: %d events, %d bytes: %w", len(evs), n, store.ErrTxnTooBig)
	}
	s.calls++
	if len(evs) > 1 {
		s.multi++
	}
	return s.AuditLog.AppendEvents(ctx, evs)
}

// TestBatchesFollowTheStoresLimits: the writer's bound comes from the
// store, by count and by encoded size (with escapes that grow JSON).
func TestBatchesFollowTheStoresLimits(t *testing.T) {
	st := &limited{AuditLog: memStore(t), maxBytes: 40 << 10, maxOps: 7}
	l := newLog(t, st, audit.Options{})
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				// Up to ~12 KB of JSON each: "<" encodes as \u003c.
				body := strings.Repeat("<", (w*i)%2000)
				if _, err := l.Append(ctx, store.Event{Action: "x", Details: map[string]string{"b": body}}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st.refused > 0 {
		t.Fatalf("the writer sent %d batches beyond the store's limits", st.refused)
	}
	if st.multi == 0 {
		t.Fatal("no batch held more than one event: group commit is gone")
	}
	mustVerify(t, st, 400)
}

// picky refuses as too big any call of more than 3 events, and any call
// holding an event with detail "poison", writing nothing.
type picky struct {
	store.AuditLog
	refused atomic.Int64
}

func (s *picky) AppendEvents(ctx context.Context, evs []store.Event) error {
	for _, e := range evs {
		if _, bad := e.Details["poison"]; bad || len(evs) > 3 {
			s.refused.Add(1)
			return fmt.Errorf("fake: %w", store.ErrTxnTooBig)
		}
	}
	return s.AuditLog.AppendEvents(ctx, evs)
}

// TestTooBigBatchesAreSplit: a store that answers "too big" (its estimate
// beats ours) gets the batch in halves; an event it cannot take at all
// fails alone, and the order of the others is kept.
func TestTooBigBatchesAreSplit(t *testing.T) {
	st := &picky{AuditLog: memStore(t)}
	l := newLog(t, st, audit.Options{})
	var evs []store.Event
	for i := range 100 {
		evs = append(evs, store.Event{Action: "kube.request", Details: map[string]string{"i": fmt.Sprint(i)}})
	}
	evs[37].Details["poison"] = "y"
	err := l.AppendAll(ctx, evs)
	var be *audit.BatchError
	if !errors.As(err, &be) || be.Failed() != 1 || be.Errs[37] == nil || !errors.Is(err, store.ErrTxnTooBig) {
		t.Fatalf("AppendAll = %v, want only event 37 to fail, too big", err)
	}
	if st.refused.Load() == 0 {
		t.Fatal("the store never refused a batch: the test tests nothing")
	}
	got, err := l.Query(ctx, store.EventFilter{})
	if err != nil || len(got) != 99 {
		t.Fatalf("%d events stored, %v; want 99", len(got), err)
	}
	for i, e := range got {
		j := i
		if i >= 37 {
			j++ // event 37 failed
		}
		if want := fmt.Sprint(j); e.Details["i"] != want {
			t.Fatalf("event at %d holds i=%s, want %s: order lost", i, e.Details["i"], want)
		}
	}
	mustVerify(t, st, 99)
}

// stalled blocks AppendEvents until release is closed, then fails it if
// fail is set.
type stalled struct {
	store.AuditLog
	release chan struct{}
	fail    atomic.Bool
}

func (s *stalled) AppendEvents(ctx context.Context, evs []store.Event) error {
	<-s.release
	if s.fail.Load() {
		return errDisk
	}
	return s.AuditLog.AppendEvents(ctx, evs)
}

// TestGraceBoundsTheWait: a caller whose context ends waits Grace longer
// for its event, no more; the event is still written after it gave up,
// and if that write fails the event is counted as lost.
func TestGraceBoundsTheWait(t *testing.T) {
	for _, fail := range []bool{false, true} {
		mem := memStore(t)
		st := &stalled{AuditLog: mem, release: make(chan struct{})}
		st.fail.Store(fail)
		m := audit.NewMetrics()
		const grace = 150 * time.Millisecond
		l := newLog(t, st, audit.Options{Grace: grace, Metrics: m})
		c, cancel := context.WithCancel(ctx)
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		_, err := l.Append(c, store.Event{Actor: "user:a", Action: "auth.device"})
		took := time.Since(start)
		if !errors.Is(err, context.Canceled) || took < grace || took > grace+2*time.Second {
			t.Fatalf("Append with a stalled store returned after %v: %v; want context.Canceled after about %v", took, err, grace)
		}
		close(st.release)
		if err := l.Close(); err != nil { // flushes: the write completes
			t.Fatal(err)
		}
		_, stored, _ := mem.LastEvent(ctx)
		if n := testutil.ToFloat64(m.LostEvents()); stored == fail || l.LostCount() != map[bool]uint64{false: 0, true: 1}[fail] || n != float64(l.LostCount()) {
			t.Fatalf("fail=%v: stored %v, lost %d (counter %v)", fail, stored, l.LostCount(), n)
		}
	}
}

// TestLost: callers report an event whose action already happened; it is
// counted and logged at Error level, clipped.
func TestLost(t *testing.T) {
	var buf bytes.Buffer
	m := audit.NewMetrics()
	l := newLog(t, memStore(t), audit.Options{Metrics: m,
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))})
	l.Lost("kube response already sent", store.Event{Actor: strings.Repeat("x", 70000), Action: "kube.request"})
	if n := testutil.ToFloat64(m.LostEvents()); l.LostCount() != 1 || n != 1 {
		t.Fatalf("LostCount %d, counter %v", l.LostCount(), n)
	}
	if out := buf.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "audit: event lost") ||
		!strings.Contains(out, "kube response already sent") || len(out) > 2000 {
		t.Fatalf("log line (%d bytes): %.300s", len(out), out)
	}
	l.Close()
	if err := l.AppendAll(ctx, []store.Event{{Action: "x"}}); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("AppendAll after Close: %v, want ErrClosed", err)
	}
}
