package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// chain appends n events through a Log and returns the store.
func chain(t *testing.T, n int) *badger.Store {
	t.Helper()
	st := memStore(t)
	l := newLog(t, st, audit.Options{Clock: func() time.Time { return t0 }})
	for i := 0; i < n; i++ {
		e := store.Event{Actor: "user:alice", Action: "forward.open", Target: "resource:web-1",
			Decision: "allow", Reason: "act", Details: map[string]string{"port": "22"}}
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return st
}

func verify(t *testing.T, st store.AuditLog) audit.Report {
	t.Helper()
	r, err := audit.Verify(ctx, st)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

func TestVerifyEmpty(t *testing.T) {
	r := verify(t, memStore(t))
	if !r.OK || r.Count != 0 || r.BrokenSeq != 0 {
		t.Fatalf("empty log: %+v", r)
	}
}

func TestVerifyDetectsTamperingOfEachField(t *testing.T) {
	muts := map[string]func(*store.Event){
		"seq":               func(e *store.Event) { e.Seq = 99 },
		"time":              func(e *store.Event) { e.Time = e.Time.Add(time.Second) },
		"actor":             func(e *store.Event) { e.Actor = "user:mallory" },
		"action":            func(e *store.Event) { e.Action = "forward.close" },
		"target":            func(e *store.Event) { e.Target = "resource:db" },
		"decision":          func(e *store.Event) { e.Decision = "deny" },
		"reason":            func(e *store.Event) { e.Reason = "" },
		"details changed":   func(e *store.Event) { e.Details["port"] = "2222" },
		"details added":     func(e *store.Event) { e.Details["extra"] = "1" },
		"details removed":   func(e *store.Event) { e.Details = nil },
		"prev_hash":         func(e *store.Event) { e.PrevHash = strings.Repeat("a", 64) },
		"hash":              func(e *store.Event) { e.Hash = strings.Repeat("b", 64) },
		"hash recomputed":   func(e *store.Event) { e.Actor = "user:mallory"; e.Hash = audit.Hash(*e) },
		"prev and hash fit": func(e *store.Event) { e.PrevHash = audit.Genesis; e.Hash = audit.Hash(*e) },
	}
	for name, mut := range muts {
		t.Run(name, func(t *testing.T) {
			st := chain(t, 10)
			if err := st.TamperEventForTest(5, mut); err != nil {
				t.Fatal(err)
			}
			r := verify(t, st)
			// An attacker who recomputes the tampered event's own hash
			// still breaks the link from its successor.
			want := uint64(5)
			if name == "hash recomputed" {
				want = 6
			}
			if r.OK || r.BrokenSeq != want || r.Count != want-1 || r.LastSeq != want-1 || r.Reason == "" {
				t.Fatalf("after tampering %s at 5: %+v, want broken at %d", name, r, want)
			}
		})
	}
}

func TestVerifyFirstAndLast(t *testing.T) {
	for _, seq := range []uint64{1, 10} {
		st := chain(t, 10)
		if err := st.TamperEventForTest(seq, func(e *store.Event) { e.Reason = "edited" }); err != nil {
			t.Fatal(err)
		}
		if r := verify(t, st); r.OK || r.BrokenSeq != seq {
			t.Fatalf("tampering seq %d: %+v", seq, r)
		}
	}
	// Several edits: the first one is reported.
	st := chain(t, 10)
	for _, seq := range []uint64{8, 3, 6} {
		if err := st.TamperEventForTest(seq, func(e *store.Event) { e.Target = "x" }); err != nil {
			t.Fatal(err)
		}
	}
	if r := verify(t, st); r.BrokenSeq != 3 {
		t.Fatalf("first broken link reported at %d, want 3", r.BrokenSeq)
	}
	mustVerify(t, chain(t, 10), 10)
}

// sliceLog serves a fixed list of events, to build logs the real store
// would refuse (gaps, duplicates).
type sliceLog struct {
	store.AuditLog
	evs     []store.Event
	scanErr error
}

func (s *sliceLog) ScanEvents(ctx context.Context, from uint64, fn func(store.Event) error) error {
	for _, e := range s.evs {
		if e.Seq < from {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return s.scanErr
}

func events(t *testing.T, n int) []store.Event {
	t.Helper()
	var out []store.Event
	err := chain(t, n).ScanEvents(ctx, 0, func(e store.Event) error { out = append(out, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyStructure(t *testing.T) {
	evs := events(t, 6)
	cases := []struct {
		name   string
		evs    []store.Event
		broken uint64
	}{
		{"intact", evs, 0},
		{"first deleted", evs[1:], 1},
		{"middle deleted", append(append([]store.Event{}, evs[:3]...), evs[4:]...), 4},
		{"duplicated", append(append([]store.Event{}, evs[:3]...), evs[2:]...), 4},
		{"swapped", []store.Event{evs[0], evs[2], evs[1], evs[3]}, 2},
	}
	for _, c := range cases {
		r := verify(t, &sliceLog{evs: c.evs})
		if r.OK != (c.broken == 0) || r.BrokenSeq != c.broken {
			t.Errorf("%s: %+v, want broken at %d", c.name, r, c.broken)
		}
	}
	boom := errors.New("read error")
	if _, err := audit.Verify(ctx, &sliceLog{evs: evs, scanErr: boom}); !errors.Is(err, boom) {
		t.Fatalf("a scan failure must be an error, got %v", err)
	}
}
