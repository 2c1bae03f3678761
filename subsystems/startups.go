package subsystems

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sshbastion/bastion/authn"
)

// startupLimits are the pre-auth admission limits, after OpenSSH's
// MaxStartups start:rate:full, PerSourceMaxStartups and PerSourcePenalties.
type startupLimits struct {
	Max       int // full: no more unauthenticated connections than this
	PerSource int // per source address
	// Start and Rate: once Start connections are past the key exchange but
	// not yet authenticated, new ones are dropped with probability Rate%,
	// rising linearly to 100% at Max (0: no early drop).
	Start, Rate int
	// Penalty is added to a source each time one of its connections is cut
	// before finishing the key exchange, up to PenaltyMax.
	Penalty, PenaltyMax time.Duration
}

// maxPenalties bounds the penalty table (OpenSSH's max_sources4), so that
// a flood from many addresses cannot grow it without end. When it is full
// of live penalties new ones are not recorded: eviction still protects.
const maxPenalties = 65536

// startups counts connections that have not authenticated yet, in all and
// per source. It exists so that connections which never authenticate
// (slow-loris, scanners) cannot lock everybody else out before login.
//
// A connection that has not finished the key exchange has done nothing
// costly and proves nothing, so its slot is soft: when the limits are
// reached, a new connection evicts one of them instead of being refused.
// The victim is taken from penalised sources first, then from the source
// holding the most slots, oldest first. Because a legitimate client
// finishes the key exchange in milliseconds, an idle flood, from however
// many addresses, cannot keep a user out; it only churns its own slots.
// Connections past the key exchange (hard slots) are never evicted; they
// are bounded by the pre-auth deadline and by random early drop.
//
// Penalties do not refuse anyone, because on shared addresses (NAT,
// loopback) that would lock out the very users the limits protect. A
// penalised source's idle connections are evicted before anyone else's,
// and its new connections may only evict other penalised ones.
type startups struct {
	lim  startupLimits
	now  func() time.Time
	roll func() int // uniform in [0, 100)
	// refused, if set, is told the reason label of each refusal
	// ("full", "per_source", "early_drop"); it is called with mu held.
	refused func(reason string)

	mu        sync.Mutex
	slots     map[*slot]struct{}
	preKex    int
	bySource  map[string]int
	penalties map[string]time.Time // source -> penalised until
}

// slot is one unauthenticated connection's reservation.
type slot struct {
	source   string // host, without the port
	opened   time.Time
	kexDone  bool
	released bool
	evict    func() // closes the connection; called without s.mu held
}

func newStartups(lim startupLimits) *startups {
	return &startups{lim: lim, now: time.Now, roll: func() int { return rand.IntN(100) },
		slots: map[*slot]struct{}{}, bySource: map[string]int{}, penalties: map[string]time.Time{}}
}

// newSlot prepares the reservation of a connection from source (ip:port);
// evict closes that connection.
func newSlot(source string, evict func()) *slot {
	return &slot{source: authn.Host(source), evict: evict}
}

// admit reserves sl. On success it may return a victim, already removed
// from the counts, whose evict the caller must call (without s.mu). On
// refusal ok is false, why says why, and sl is marked released.
func (s *startups) admit(sl *slot) (victim *slot, ok bool, why string) {
	h := sl.source
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	refuse := func(label, why string) (*slot, bool, string) {
		sl.released = true
		if s.refused != nil {
			s.refused(label)
		}
		return nil, false, why
	}
	penalised := s.penalisedLocked(h, now)
	// Random early drop counts only hard slots: soft ones make room by
	// eviction below, so they must not cause a random refusal.
	if hard := len(s.slots) - s.preKex; s.lim.Start > 0 && s.lim.Max > s.lim.Start && hard >= s.lim.Start {
		p := s.lim.Rate + (100-s.lim.Rate)*(hard-s.lim.Start)/(s.lim.Max-s.lim.Start)
		if s.roll() < p {
			return refuse("early_drop", "too many connections in authentication (random early drop)")
		}
	}
	if s.lim.PerSource > 0 && s.bySource[h] >= s.lim.PerSource {
		// The source's own oldest idle connection makes room: a user who
		// shares an address with a flood still gets in.
		victim = s.pickLocked(now, func(v *slot) bool { return v.source == h })
		if victim == nil {
			return refuse("per_source", "too many unauthenticated connections from "+h)
		}
		s.removeLocked(victim)
	}
	if victim == nil && s.lim.Max > 0 && len(s.slots) >= s.lim.Max {
		victim = s.pickLocked(now, func(v *slot) bool { return !penalised || s.penalisedLocked(v.source, now) })
		if victim == nil {
			return refuse("full", "too many unauthenticated connections")
		}
		s.removeLocked(victim)
	}
	if victim != nil {
		// Holding a slot without finishing the key exchange until someone
		// needs it is what a slow-loris does: the source is penalised.
		s.penaliseLocked(victim.source, now)
	}
	sl.opened = now
	s.slots[sl] = struct{}{}
	s.preKex++
	s.bySource[h]++
	return victim, true, ""
}

// pickLocked chooses the eviction victim among slots that have not
// finished the key exchange and that eligible allows: penalised sources
// first, then the source holding the most slots, then the oldest.
func (s *startups) pickLocked(now time.Time, eligible func(*slot) bool) *slot {
	var best *slot
	var bestPen bool
	var bestCount int
	for v := range s.slots {
		if v.kexDone || !eligible(v) {
			continue
		}
		pen, count := s.penalisedLocked(v.source, now), s.bySource[v.source]
		if best == nil || worse(pen, count, v.opened, bestPen, bestCount, best.opened) {
			best, bestPen, bestCount = v, pen, count
		}
	}
	return best
}

// worse reports whether slot a is a better eviction victim than slot b.
func worse(aPen bool, aCount int, aOpened time.Time, bPen bool, bCount int, bOpened time.Time) bool {
	if aPen != bPen {
		return aPen
	}
	if aCount != bCount {
		return aCount > bCount
	}
	return aOpened.Before(bOpened)
}

func (s *startups) removeLocked(v *slot) {
	if v.released {
		return
	}
	v.released = true
	delete(s.slots, v)
	if !v.kexDone {
		s.preKex--
	}
	if s.bySource[v.source]--; s.bySource[v.source] <= 0 {
		delete(s.bySource, v.source)
	}
}

// handshaken marks the key exchange of sl as finished: from now on its
// slot is hard and is never evicted.
func (s *startups) handshaken(sl *slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.released || sl.kexDone {
		return
	}
	sl.kexDone = true
	s.preKex--
}

// inUse is how many slots are held.
func (s *startups) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.slots)
}

// release frees sl (on auth success or close); it is idempotent.
func (s *startups) release(sl *slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(sl)
}

// penalise records that a connection from source (ip:port or host) was
// cut before it finished the key exchange.
func (s *startups) penalise(source string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.penaliseLocked(authn.Host(source), s.now())
}

func (s *startups) penaliseLocked(h string, now time.Time) {
	if s.lim.Penalty <= 0 {
		return
	}
	if _, ok := s.penalties[h]; !ok && len(s.penalties) >= maxPenalties {
		for k, until := range s.penalties {
			if !now.Before(until) {
				delete(s.penalties, k)
			}
		}
		if len(s.penalties) >= maxPenalties {
			return
		}
	}
	until := s.penalties[h]
	if until.Before(now) {
		until = now
	}
	until = until.Add(s.lim.Penalty)
	if limit := now.Add(s.lim.PenaltyMax); s.lim.PenaltyMax > 0 && until.After(limit) {
		until = limit
	}
	s.penalties[h] = until
}

func (s *startups) penalisedLocked(h string, now time.Time) bool {
	until, ok := s.penalties[h]
	return ok && now.Before(until)
}
