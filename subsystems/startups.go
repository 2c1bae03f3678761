package subsystems

import (
	"sync"

	"github.com/sshbastion/bastion/authn"
)

// startups counts connections that have not authenticated yet, in all and
// per source, like sshd's MaxStartups and PerSourceMaxStartups. It exists
// so that a flood of connections that never authenticate (slow-loris) cannot
// use up the server: beyond the limits new ones are dropped at once, and a
// flood from one source does not stop users from other sources.
type startups struct {
	max, perSource int

	mu       sync.Mutex
	total    int
	bySource map[string]int
}

// admit reserves a pre-auth slot for source, or reports why it cannot.
func (s *startups) admit(source string) (bool, string) {
	h := authn.Host(source)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && s.total >= s.max {
		return false, "too many unauthenticated connections"
	}
	if s.perSource > 0 && s.bySource[h] >= s.perSource {
		return false, "too many unauthenticated connections from " + h
	}
	if s.bySource == nil {
		s.bySource = map[string]int{}
	}
	s.total++
	s.bySource[h]++
	return true, ""
}

// release frees the slot taken by admit (on auth success or close).
func (s *startups) release(source string) {
	h := authn.Host(source)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.bySource[h]--; s.bySource[h] <= 0 {
		delete(s.bySource, h)
	}
}
