package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/sshbastion/bastion/store"
)

// Replicas is the liveness of the bastion processes sharing one store
// (package etcd's Replicas on a shared store, package badger's in one
// process).
type Replicas interface {
	// Join makes id live until ctx ends, failing if a live replica holds
	// id already. lost delivers the id of every other replica that dies
	// (or leaves) from then on, and closes when ctx ends.
	Join(ctx context.Context, id string) (lost <-chan string, err error)
	// Live returns the ids of the live replicas.
	Live(ctx context.Context) ([]string, error)
	// Lock takes the reap lock of a dead replica's id: one survivor at a
	// time ends its sessions.
	Lock(ctx context.Context, id string) (unlock func(), err error)
}

// NewReplicaID returns a replica id: the host name and a random suffix, so
// that two processes on one host, or a restart, never share one.
func NewReplicaID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return -1
	}, host)
	if host == "" {
		host = "bastion"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Join makes this process a live replica (Config.Replicas, as ReplicaID)
// until Run ends. Call it before serving, so that an id already live
// stops the start; Run joins by itself otherwise. Without Replicas it
// does nothing.
func (m *Manager) Join(ctx context.Context) error {
	if m.cfg.Replicas == nil {
		return nil
	}
	m.joinMu.Lock()
	defer m.joinMu.Unlock()
	if m.leave != nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The membership outlives ctx: Run leaves once its sessions ended.
	jctx, cancel := context.WithCancel(context.Background())
	lost, err := m.cfg.Replicas.Join(jctx, m.cfg.ReplicaID)
	if err != nil {
		cancel()
		return fmt.Errorf("joining as replica %s: %w", m.cfg.ReplicaID, err)
	}
	m.lost, m.leave = lost, cancel
	m.log.Info("joined the replicas", "replica", m.cfg.ReplicaID)
	return nil
}

func (m *Manager) lostReplicas() <-chan string {
	m.joinMu.Lock()
	defer m.joinMu.Unlock()
	return m.lost
}

func (m *Manager) leaveReplicas() {
	m.joinMu.Lock()
	defer m.joinMu.Unlock()
	if m.leave != nil {
		m.leave()
	}
}

// watchReplicas ends the sessions of replicas that died before this one
// joined, then of each one reported lost, until ctx ends.
func (m *Manager) watchReplicas(ctx context.Context, lost <-chan string) {
	m.reapAbsent(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case id, ok := <-lost:
			if !ok {
				return
			}
			m.reap(ctx, id)
		}
	}
}

// reapAbsent ends the open sessions of every replica that is not live: it
// died while no replica watched, or is this host's previous process.
func (m *Manager) reapAbsent(ctx context.Context) {
	all, err := m.store.ListSessions(ctx)
	if err != nil {
		m.log.Warn("sessions: cannot list sessions to end those of dead replicas", "err", err)
		return
	}
	var holders []string
	for _, s := range all {
		if s.State == "open" && s.Replica != m.cfg.ReplicaID && !slices.Contains(holders, s.Replica) {
			holders = append(holders, s.Replica)
		}
	}
	if len(holders) == 0 {
		return
	}
	live, err := m.cfg.Replicas.Live(ctx)
	if err != nil {
		m.log.Warn("sessions: cannot list live replicas", "err", err)
		return
	}
	for _, id := range holders {
		if !slices.Contains(live, id) {
			m.reap(ctx, id)
		}
	}
}

// reap ends, under the dead replica's reap lock, the sessions its records
// say it held open, as ReasonReplicaLost, each audited as session.lost.
// The lock makes one survivor do it at a time; the ones after it find
// nothing left open.
func (m *Manager) reap(ctx context.Context, dead string) {
	if dead == m.cfg.ReplicaID {
		return
	}
	unlock, err := m.cfg.Replicas.Lock(ctx, dead)
	if err != nil {
		m.log.Warn("sessions: cannot take the reap lock of a lost replica", "replica", dead, "err", err)
		return
	}
	defer unlock()
	live, err := m.cfg.Replicas.Live(ctx)
	if err != nil {
		m.log.Warn("sessions: cannot list live replicas", "err", err)
		return
	}
	if slices.Contains(live, dead) {
		return // it came back (its lease was renewed): its sessions are its own
	}
	all, err := m.store.ListSessions(ctx)
	if err != nil {
		m.log.Warn("sessions: cannot list the sessions of a lost replica", "replica", dead, "err", err)
		return
	}
	n := 0
	for _, s := range all {
		if s.State != "open" || s.Replica != dead {
			continue
		}
		s.State, s.Closed, s.Reason = "closed", m.now().UTC(), ReasonReplicaLost
		if err := m.store.PutSession(ctx, s); err != nil {
			m.log.Warn("sessions: cannot end a session of a lost replica", "session", s.ID, "replica", dead, "err", err)
			continue
		}
		m.cfg.Metrics.ended(s.Kind, ReasonReplicaLost, false)
		n++
		if m.audit == nil {
			continue
		}
		e := store.Event{Actor: "bastion", Action: "session.lost", Target: s.Resource, Decision: "allow", Reason: ReasonReplicaLost,
			Details: map[string]string{"session": s.ID, "user": s.User, "kind": s.Kind, "replica": dead, "ended_by": m.cfg.ReplicaID}}
		if _, err := m.audit.Append(ctx, e); err != nil {
			m.log.Error("audit session.lost", "session", s.ID, "err", err)
		}
	}
	if n > 0 {
		m.log.Warn("ended the sessions of a lost replica", "replica", dead, "sessions", n)
	}
}
