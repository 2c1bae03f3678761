package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

// Clock is a controllable clock for tests. Its Now method is a store.Clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Epoch is where the suite's clocks start. It has sub-second digits so a
// backend that drops nanoseconds fails.
var Epoch = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

// Run runs the whole suite against the backend that open returns.
func Run(t *testing.T, open func(t *testing.T, clock store.Clock) store.Store) {
	cases := []struct {
		name string
		fn   func(*testing.T, store.Store, *Clock)
	}{
		{"Users", testUsers},
		{"Keys", testKeys},
		{"DeleteUserCascade", testDeleteUserCascade},
		{"Resources", testResources},
		{"Sessions", testSessions},
		{"Secrets", testSecrets},
		{"CreateSecret", testCreateSecret},
		{"TupleIndexes", testTupleIndexes},
		{"TupleExpiry", testTupleExpiry},
		{"TupleWriteAtomic", testTupleWriteAtomic},
		{"TupleBulk", testTupleBulk},
		{"TupleConditions", testTupleConditions},
		{"EventsAppend", testEventsAppend},
		{"EventsGapRejected", testEventsGapRejected},
		{"EventsScan", testEventsScan},
		{"EventsQuery", testEventsQuery},
		{"EventsLargeBatch", testEventsLargeBatch},
		{"EventsConflict", testEventsConflict},
		{"Checkpoint", testCheckpoint},
		{"CheckpointImport", testCheckpointImport},
		{"DeleteWhileAppending", testDeleteWhileAppending},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Recordings", testRecordings},
		{"CertRevocations", testCertRevocations},
		{"AccessRequests", testAccessRequests},
		{"KubeTokens", testKubeTokens},
		{"Models", testModels},
		{"Changes", testChanges},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := NewClock(Epoch)
			s := open(t, clock.Now)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, s, clock)
		})
	}
}

// --- helpers ---------------------------------------------------------------

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: got error %v, want store.ErrNotFound", what, err)
	}
}

func wantErr(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want an error", what)
	}
}

// equal compares after normalize, which each caller uses to put times in
// UTC (stores may hand back another location for the same instant).
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func utc(tm time.Time) time.Time {
	if tm.IsZero() {
		return time.Time{}
	}
	return tm.UTC()
}

func normTuples(ts []store.Tuple) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, tupleString(t))
	}
	sort.Strings(out)
	return out
}

func tupleStrings(ts ...store.Tuple) []string { return normTuples(ts) }

// tupleString renders all a backend keeps of a tuple: its key, expiry,
// condition and context (as JSON, whose keys are sorted).
func tupleString(t store.Tuple) string {
	s := t.String()
	if !t.Expires.IsZero() {
		s += " until " + t.Expires.UTC().Format(time.RFC3339Nano)
	}
	if t.Condition != "" {
		s += " with " + t.Condition
	}
	if t.Context != nil {
		b, err := json.Marshal(t.Context)
		if err != nil {
			panic(err)
		}
		s += " " + string(b)
	}
	return s
}

func normEvent(e store.Event) store.Event {
	e.Time = utc(e.Time)
	if len(e.Details) == 0 {
		e.Details = nil
	}
	return e
}

func normEvents(es []store.Event) []store.Event {
	out := make([]store.Event, len(es))
	for i, e := range es {
		out[i] = normEvent(e)
	}
	return out
}

func seqs(es []store.Event) []uint64 {
	out := make([]uint64, 0, len(es))
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// mkEvents returns events from..to with distinct content; event i is one
// minute after Epoch+i minutes.
func mkEvents(from, to uint64) []store.Event {
	var out []store.Event
	actions := []string{"forward.open", "forward.close", "auth.fail", "kube.request", "forwarding.x"}
	for i := from; i <= to; i++ {
		e := store.Event{
			Seq:      i,
			Time:     Epoch.Add(time.Duration(i) * time.Minute),
			Actor:    fmt.Sprintf("user:u%d", i%3),
			Action:   actions[i%uint64(len(actions))],
			Target:   fmt.Sprintf("resource:r%d", i),
			Decision: "allow",
			Reason:   "test",
			PrevHash: fmt.Sprintf("prev-%d", i),
			Hash:     fmt.Sprintf("hash-%d", i),
		}
		if i%2 == 0 {
			e.Details = map[string]string{"port": "22", "b": fmt.Sprint(i)}
		}
		out = append(out, e)
	}
	return out
}

var bg = context.Background()
