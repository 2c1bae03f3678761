package subsystems

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) tick() { c.t = c.t.Add(time.Millisecond) }

func testStartups(lim startupLimits) (*startups, *fakeClock) {
	s := newStartups(lim)
	c := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.now = c.now
	s.roll = func() int { return 99 } // never drop at random unless p is 100
	return s, c
}

// conn admits one connection from source and returns its slot, the victim
// it evicted (nil if none) and the refusal.
func conn(t *testing.T, s *startups, c *fakeClock, source string) (*slot, *slot, string) {
	t.Helper()
	c.tick()
	sl := newSlot(source, func() {})
	victim, ok, why := s.admit(sl)
	if !ok {
		return nil, nil, why
	}
	return sl, victim, ""
}

func mustAdmit(t *testing.T, s *startups, c *fakeClock, source string) (*slot, *slot) {
	t.Helper()
	sl, victim, why := conn(t, s, c, source)
	if sl == nil {
		t.Fatalf("%s refused: %s", source, why)
	}
	return sl, victim
}

// A full table of idle connections from ten sources: a newcomer evicts the
// oldest of the source holding the most slots.
func TestStartupsEvictIdleFromBiggestSource(t *testing.T) {
	s, c := testStartups(startupLimits{Max: 200, PerSource: 20})
	first := map[string]*slot{}
	for i := 0; i < 20; i++ {
		for src := 2; src <= 11; src++ {
			sl, v := mustAdmit(t, s, c, fmt.Sprintf("127.0.0.%d:%d", src, 1000+i))
			if v != nil {
				t.Fatalf("eviction before the table was full")
			}
			if i == 0 {
				first[sl.source] = sl
			}
		}
	}
	// Every source holds 20: the tie goes to the oldest slot.
	user, victim := mustAdmit(t, s, c, "127.0.0.1:5000")
	if victim == nil || victim != first["127.0.0.2"] {
		t.Fatalf("victim %+v, want the oldest slot (127.0.0.2's first)", victim)
	}
	if len(s.slots) != 200 || s.preKex != 200 {
		t.Fatalf("counts after an eviction: %d slots, %d before kex", len(s.slots), s.preKex)
	}
	// The user finishes the key exchange: never evicted afterwards.
	s.handshaken(user)
	for i := 0; i < 400; i++ {
		_, v := mustAdmit(t, s, c, fmt.Sprintf("127.0.1.%d:1", i%250))
		if v == user {
			t.Fatal("a connection past the key exchange was evicted")
		}
	}
	if _, ok := s.slots[user]; !ok {
		t.Fatal("the user's slot is gone")
	}
}

// Many sources with one connection each: the oldest idle one goes, and a
// source that was evicted is penalised and loses its slots first.
func TestStartupsDistinctSourcesAndPenalties(t *testing.T) {
	s, c := testStartups(startupLimits{Max: 5, PerSource: 5, Penalty: time.Minute, PenaltyMax: 10 * time.Minute})
	var slots []*slot
	for i := 0; i < 5; i++ {
		sl, _ := mustAdmit(t, s, c, fmt.Sprintf("127.0.9.%d:1", i))
		slots = append(slots, sl)
	}
	_, v := mustAdmit(t, s, c, "127.0.8.1:1")
	if v != slots[0] {
		t.Fatalf("victim %v, want the oldest", v)
	}
	if !s.penalisedLocked("127.0.9.0", c.now()) {
		t.Fatal("the evicted source is not penalised")
	}
	// The penalised source comes back: it may evict only penalised
	// connections, and there are none, so it is refused.
	if sl, _, why := conn(t, s, c, "127.0.9.0:2"); sl != nil || !strings.Contains(why, "too many unauthenticated") {
		t.Fatalf("penalised newcomer: admitted=%v %q", sl != nil, why)
	}
	// A penalised source's idle connection is evicted before older ones.
	s.penalise("127.0.9.3:1")
	if _, v := mustAdmit(t, s, c, "127.0.8.2:1"); v != slots[3] {
		t.Fatalf("victim %v, want the penalised source's", v)
	}
	// A user whose own address is penalised still gets in by evicting
	// another penalised connection.
	s.penalise("127.0.9.4:1")
	s.penalise("127.0.0.1:1")
	if _, v := mustAdmit(t, s, c, "127.0.0.1:2"); v != slots[4] {
		t.Fatalf("penalised user: victim %v, want the penalised flood's slot", v)
	}
}

// Penalties accumulate up to the cap and lapse.
func TestStartupsPenaltyAccumulatesAndLapses(t *testing.T) {
	s, c := testStartups(startupLimits{Max: 5, Penalty: time.Minute, PenaltyMax: 3 * time.Minute})
	for i := 0; i < 10; i++ {
		s.penalise("10.0.0.1:1")
	}
	if until := s.penalties["10.0.0.1"]; !until.Equal(c.now().Add(3 * time.Minute)) {
		t.Fatalf("penalty until %s, want the cap", until)
	}
	c.t = c.t.Add(3*time.Minute + time.Second)
	if s.penalisedLocked("10.0.0.1", c.now()) {
		t.Fatal("the penalty did not lapse")
	}
	off, _ := testStartups(startupLimits{Max: 5, Penalty: -1})
	off.penalise("10.0.0.1:1")
	if len(off.penalties) != 0 {
		t.Fatal("a negative penalty still penalised")
	}
}

// At the per-source cap a newcomer evicts its own source's oldest idle
// connection, so that a user sharing an address with a flood gets in; if
// all are past the key exchange, it is refused.
func TestStartupsPerSource(t *testing.T) {
	s, c := testStartups(startupLimits{Max: 100, PerSource: 3})
	a, _ := mustAdmit(t, s, c, "10.0.0.1:1")
	b, _ := mustAdmit(t, s, c, "10.0.0.1:2")
	other, _ := mustAdmit(t, s, c, "10.0.0.2:1")
	d, _ := mustAdmit(t, s, c, "10.0.0.1:3")
	if _, v := mustAdmit(t, s, c, "10.0.0.1:4"); v != a {
		t.Fatalf("victim %v, want the source's oldest", v)
	}
	for _, sl := range []*slot{b, d} {
		s.handshaken(sl)
	}
	f, v := mustAdmit(t, s, c, "10.0.0.1:5")
	if v == other || v == nil {
		t.Fatalf("victim %v: must be 10.0.0.1's last idle one", v)
	}
	s.handshaken(f)
	if sl, _, why := conn(t, s, c, "10.0.0.1:6"); sl != nil || !strings.Contains(why, "from 10.0.0.1") {
		t.Fatalf("over the cap with no idle slot: admitted=%v %q", sl != nil, why)
	}
}

// Random early drop counts only connections past the key exchange.
func TestStartupsRandomEarlyDrop(t *testing.T) {
	s, c := testStartups(startupLimits{Max: 10, Start: 4, Rate: 50})
	var roll int
	s.roll = func() int { return roll }
	for i := 0; i < 8; i++ {
		mustAdmit(t, s, c, fmt.Sprintf("10.0.0.%d:1", i)) // idle: no drop
	}
	for sl := range s.slots {
		if s.preKex > 4 {
			s.handshaken(sl)
		}
	}
	// 4 hard slots: p = 50%.
	roll = 49
	if sl, _, why := conn(t, s, c, "10.1.0.1:1"); sl != nil || !strings.Contains(why, "random early drop") {
		t.Fatalf("roll 49 at p=50: admitted=%v %q", sl != nil, why)
	}
	roll = 50
	mustAdmit(t, s, c, "10.1.0.2:1")
}

// release is idempotent, also for a slot that was evicted or refused.
func TestStartupsReleaseOnce(t *testing.T) {
	s, c := testStartups(startupLimits{Max: 1})
	a, _ := mustAdmit(t, s, c, "10.0.0.1:1")
	_, v := mustAdmit(t, s, c, "10.0.0.2:1")
	if v != a {
		t.Fatal("no eviction")
	}
	s.release(a)
	s.release(a)
	s.handshaken(a)
	if len(s.slots) != 1 || s.preKex != 1 || s.bySource["10.0.0.2"] != 1 || len(s.bySource) != 1 {
		t.Fatalf("counts: %d slots, %d pre-kex, %v", len(s.slots), s.preKex, s.bySource)
	}
}
