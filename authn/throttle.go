package authn

import (
	"net"
	"sync"
	"time"
)

// Throttle counts failed authentications per source address in a sliding
// window. It exists so that one source cannot brute-force keys or flood the
// audit log: once a source has Max failures within Window, further attempts
// from it are refused until the window moves on.
type Throttle struct {
	Max    int
	Window time.Duration
	Clock  func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

func (t *Throttle) now() time.Time {
	if t.Clock != nil {
		return t.Clock()
	}
	return time.Now()
}

// Host strips the port from addr, so that all connections of one host share
// a budget.
func Host(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// Blocked reports whether source is over its failure budget, and until when.
func (t *Throttle) Blocked(source string) (bool, time.Time) {
	if t == nil || t.Max <= 0 {
		return false, time.Time{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.prune(Host(source))
	if len(live) >= t.Max {
		return true, live[0].Add(t.Window)
	}
	return false, time.Time{}
}

// Fail records one failure from source.
func (t *Throttle) Fail(source string) {
	if t == nil || t.Max <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	h := Host(source)
	live := t.prune(h)
	if t.failures == nil {
		t.failures = map[string][]time.Time{}
	}
	t.failures[h] = append(live, t.now())
}

// prune drops failures older than the window; the map is kept bounded by
// deleting sources whose failures all aged out.
func (t *Throttle) prune(h string) []time.Time {
	cut := t.now().Add(-t.Window)
	fs := t.failures[h]
	i := 0
	for i < len(fs) && fs[i].Before(cut) {
		i++
	}
	fs = fs[i:]
	if len(fs) == 0 {
		delete(t.failures, h)
		return nil
	}
	t.failures[h] = fs
	return fs
}
