package audit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

func memStore(t testing.TB) *badger.Store {
	t.Helper()
	s, err := badger.Open("", badger.Options{InMemory: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLog(t testing.TB, st store.AuditLog, opts audit.Options) *audit.Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	l, err := audit.New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustVerify(t *testing.T, st store.AuditLog, count uint64) {
	t.Helper()
	r, err := audit.Verify(ctx, st)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !r.OK || r.Count != count || r.LastSeq != count {
		t.Fatalf("Verify = %+v, want OK with %d events", r, count)
	}
}

func TestAppendChains(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{Clock: func() time.Time { return t0.In(time.FixedZone("X", 3600)) }})
	details := map[string]string{"port": "22"}
	e1, err := l.Append(ctx, store.Event{Actor: "user:alice", Action: "forward.open", Details: details,
		Seq: 99, PrevHash: "forged", Hash: "forged"}) // caller-set chain fields are ignored
	if err != nil {
		t.Fatal(err)
	}
	details["port"] = "23" // the stored event must not follow the caller's map
	at := t0.Add(-time.Hour)
	e2, err := l.Append(ctx, store.Event{Actor: "user:bob", Action: "auth.fail", Time: at})
	if err != nil {
		t.Fatal(err)
	}
	if e1.Seq != 1 || e1.PrevHash != audit.Genesis || e1.Hash != audit.Hash(e1) {
		t.Fatalf("first event %+v", e1)
	}
	if !e1.Time.Equal(t0) || e1.Time.Location() != time.UTC {
		t.Fatalf("zero Time not stamped from the clock in UTC: %v", e1.Time)
	}
	if e2.Seq != 2 || e2.PrevHash != e1.Hash || e2.Hash != audit.Hash(e2) || !e2.Time.Equal(at) {
		t.Fatalf("second event %+v", e2)
	}
	got, err := l.Query(ctx, store.EventFilter{Actor: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Hash != e1.Hash || got[0].Details["port"] != "22" {
		t.Fatalf("Query = %+v", got)
	}
	if _, err := l.Append(ctx, store.Event{Actor: "user:x"}); err == nil {
		t.Fatal("event without an action accepted")
	}
	mustVerify(t, st, 2)
}

func TestConcurrentAppends(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{MaxBatch: 16})
	const workers, each = 50, 20
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e, err := l.Append(ctx, store.Event{Actor: fmt.Sprintf("user:w%d", w), Action: "test", Target: fmt.Sprint(i)})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := seen[e.Seq]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("seq %d given twice (%s and w%d/%d)", e.Seq, prev, w, i)
					return
				}
				seen[e.Seq] = fmt.Sprintf("w%d/%d", w, i)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= workers*each; seq++ {
		if _, ok := seen[seq]; !ok {
			t.Fatalf("seq %d was never acknowledged", seq)
		}
	}
	mustVerify(t, st, workers*each)
}

// flaky wraps an AuditLog and fails AppendEvents on demand, either before
// writing (fail) or after writing (failAfter: the data is stored but the
// caller is told otherwise, like an fsync error).
type flaky struct {
	store.AuditLog
	fail, failAfter atomic.Bool
	calls           atomic.Int64
}

var errDisk = errors.New("disk on fire")

func (f *flaky) AppendEvents(ctx context.Context, evs []store.Event) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errDisk
	}
	if err := f.AuditLog.AppendEvents(ctx, evs); err != nil {
		return err
	}
	if f.failAfter.Load() {
		return errDisk
	}
	return nil
}

func TestFailedBatchIsNotAcknowledged(t *testing.T) {
	st := memStore(t)
	f := &flaky{AuditLog: st}
	l := newLog(t, f, audit.Options{})
	if _, err := l.Append(ctx, store.Event{Actor: "a", Action: "ok.1"}); err != nil {
		t.Fatal(err)
	}
	f.fail.Store(true)
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Append(ctx, store.Event{Actor: "a", Action: "lost"})
			if err == nil {
				acked.Add(1)
			} else if !errors.Is(err, errDisk) {
				t.Errorf("failed append returned %v, want the store's error", err)
			}
		}()
	}
	wg.Wait()
	if n := acked.Load(); n != 0 {
		t.Fatalf("%d appends acknowledged while the store failed", n)
	}
	f.fail.Store(false)
	e, err := l.Append(ctx, store.Event{Actor: "a", Action: "ok.2"})
	if err != nil {
		t.Fatal(err)
	}
	// The failed batches did not advance the chain: seq 2 follows seq 1.
	if e.Seq != 2 {
		t.Fatalf("after failed batches the next seq is %d, want 2", e.Seq)
	}
	mustVerify(t, st, 2)
}

func TestWriteThatReportsFailureButLanded(t *testing.T) {
	st := memStore(t)
	f := &flaky{AuditLog: st}
	l := newLog(t, f, audit.Options{})
	f.failAfter.Store(true)
	if _, err := l.Append(ctx, store.Event{Actor: "a", Action: "x"}); err == nil {
		t.Fatal("append acknowledged although the store reported an error")
	}
	f.failAfter.Store(false)
	// The log must pick up the stored tail instead of failing every later
	// append on the gap check.
	e, err := l.Append(ctx, store.Event{Actor: "a", Action: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 2 {
		t.Fatalf("seq %d, want 2", e.Seq)
	}
	mustVerify(t, st, 2)
}

func TestNewContinuesStoredChain(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	for i := 0; i < 3; i++ {
		if _, err := l.Append(ctx, store.Event{Actor: "a", Action: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, store.Event{Actor: "a", Action: "x"}); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	l2 := newLog(t, st, audit.Options{})
	e, err := l2.Append(ctx, store.Event{Actor: "a", Action: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 4 {
		t.Fatalf("seq after restart %d, want 4", e.Seq)
	}
	mustVerify(t, st, 4)
}

func TestCloseFlushes(t *testing.T) {
	st := memStore(t)
	f := &flaky{AuditLog: st}
	l := newLog(t, f, audit.Options{MaxBatch: 4})
	var wg sync.WaitGroup
	var ok, closed atomic.Int64
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.Append(ctx, store.Event{Actor: "a", Action: "x"})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, audit.ErrClosed):
				closed.Add(1)
			default:
				t.Errorf("Append: %v", err)
			}
		}()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	calls := f.calls.Load()
	wg.Wait()
	// Close returned only after the writer stopped: no store write after it.
	if f.calls.Load() != calls {
		t.Fatal("the writer kept writing after Close returned")
	}
	// Every acknowledged event is stored and nothing else is.
	last, _, err := st.LastEvent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(last.Seq) != ok.Load() || ok.Load()+closed.Load() != 40 {
		t.Fatalf("stored %d events, acknowledged %d, refused %d", last.Seq, ok.Load(), closed.Load())
	}
	mustVerify(t, st, last.Seq)
}

// A caller whose context is already cancelled (its client disconnected)
// still gets its event written: the action it records happened.
func TestCancelledContextStillRecords(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	c, cancel := context.WithCancel(ctx)
	cancel()
	e, err := l.Append(c, store.Event{Actor: "a", Action: "auth.device"})
	if err != nil || e.Seq != 1 {
		t.Fatalf("Append with a cancelled context: seq %d, %v", e.Seq, err)
	}
	if err := l.AppendAll(c, []store.Event{{Action: "kube.request"}, {Action: "kube.request"}}); err != nil {
		t.Fatalf("AppendAll with a cancelled context: %v", err)
	}
	mustVerify(t, st, 3)
}

func TestUnstorableEventsAreRefusedAlone(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	bad := []store.Event{
		{Actor: "a", Action: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Actor: "a"}, // no action
	}
	// Too long is not unstorable: it is bounded and stored.
	big, err := l.Append(ctx, store.Event{Actor: "a", Action: "x", Details: map[string]string{"blob": strings.Repeat("z", audit.MaxEventSize)}})
	if err != nil || !strings.Contains(big.Details["blob"], "…[truncated: 65536 bytes, sha256:") {
		t.Fatalf("oversized event: %.200v, %v", big, err)
	}
	var wg sync.WaitGroup
	var good atomic.Int64
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Good events racing with the bad ones must not share their fate.
			if _, err := l.Append(ctx, store.Event{Actor: "a", Action: "ok"}); err != nil {
				t.Errorf("good event failed: %v", err)
				return
			}
			good.Add(1)
		}()
	}
	for _, e := range bad {
		if _, err := l.Append(ctx, e); err == nil {
			t.Errorf("unstorable event accepted: %.60v", e)
		}
	}
	wg.Wait()
	mustVerify(t, st, uint64(good.Load())+1)
	if good.Load() != 20 {
		t.Fatalf("%d good events stored, want 20", good.Load())
	}
}

// AppendAll keeps the order it was given, chains like Append, and fails
// an invalid event alone: the others of the call are still stored.
func TestAppendAllKeepsOrder(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	var evs []store.Event
	for i := 0; i < 50; i++ {
		evs = append(evs, store.Event{Actor: "alice", Action: "kube.request", Details: map[string]string{"i": fmt.Sprint(i)}})
	}
	if err := l.AppendAll(ctx, evs); err != nil {
		t.Fatal(err)
	}
	err := l.AppendAll(ctx, []store.Event{{Action: "ok"}, {Actor: "no action"}, {Action: "ok"}})
	var be *audit.BatchError
	if !errors.As(err, &be) || be.Failed() != 1 || be.Errs[0] != nil || be.Errs[1] == nil || be.Errs[2] != nil {
		t.Fatalf("AppendAll with one invalid event: %v", err)
	}
	got, err := l.Query(ctx, store.EventFilter{Action: "kube.request"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("%d events stored, want 50", len(got))
	}
	for i, e := range got {
		if e.Details["i"] != fmt.Sprint(i) {
			t.Fatalf("event %d holds i=%s: order lost", i, e.Details["i"])
		}
	}
	mustVerify(t, st, 52)
}
