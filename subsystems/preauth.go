package subsystems

import (
	"errors"
	"fmt"
	"net"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
)

// maxLoginBytes is the longest login name accepted. OpenSSH refuses longer
// ones before authentication too: no account has such a name, and the
// name ends up in logs, audit events and messages.
const maxLoginBytes = 256

// checkLogin says why a login name (the SSH user name) is refused before
// authentication, or "" if it is acceptable. The reason names the length,
// never the bytes, so that it is safe to log and to audit.
func checkLogin(login string) string {
	switch {
	case len(login) > maxLoginBytes:
		return fmt.Sprintf("login name of %d bytes is longer than %d bytes", len(login), maxLoginBytes)
	case !utf8.ValidString(login):
		return fmt.Sprintf("login name of %d bytes is not valid UTF-8", len(login))
	}
	for _, r := range login {
		// Control characters (C0, DEL, C1) could forge lines or escape
		// sequences in logs and terminals that show the name.
		if unicode.IsControl(r) {
			return fmt.Sprintf("login name of %d bytes contains control characters", len(login))
		}
	}
	return ""
}

// loginOK checks the login name of an auth request; a bad one closes the
// connection before any credential is looked at. Every auth callback
// calls it, because SSH lets the client change the name between requests.
func (s *Server) loginOK(st *connState, login string) bool {
	why := checkLogin(login)
	if why == "" {
		return true
	}
	if st == nil {
		return false
	}
	st.mu.Lock()
	first := !st.badLogin
	st.badLogin = true
	st.loginBytes = len(login)
	st.login = "" // never kept, so never audited or logged
	st.failure = "refused before authentication: " + why
	st.mu.Unlock()
	if first {
		s.log.Warn("refusing a login name before authentication", "source", st.source, "reason", why, "conn", st.id)
		// The close audits auth.fail with the reason and login_bytes.
		_ = st.conn.Close()
	}
	return false
}

// onConnect runs for each accepted TCP connection, before the SSH
// handshake.
func (s *Server) onConnect(ctx ssh.Context, c net.Conn) net.Conn {
	s.metrics.conns.Inc()
	source := c.RemoteAddr().String()
	st := &connState{id: newID(), source: source, deviceLogin: s.cfg.DeviceLogin != nil}
	wc := &trackedConn{Conn: c, s: s, st: st, br: &bulkReader{r: c}}
	st.conn = wc
	// The handshake deadline exists so that connections which do not even
	// finish the key exchange (idle sockets, slow-loris) give their slot
	// back quickly, long before the pre-auth deadline; their source is
	// penalised, so that its idle connections are the first evicted.
	st.handshake = time.AfterFunc(s.cfg.HandshakeTimeout, func() {
		if st.cutBeforeKex(fmt.Sprintf("no key exchange within the handshake timeout of %s", s.cfg.HandshakeTimeout)) {
			s.startups.penalise(source)
			_ = wc.Close()
		}
	})
	// The pre-auth deadline exists so that connections which never
	// authenticate (slow-loris, scanners, stuck clients) cannot hold
	// resources: the timer closes the socket unless auth completed.
	st.deadline = time.AfterFunc(s.cfg.PreAuthTimeout, func() {
		st.mu.Lock()
		authed, kex := st.authed, st.kexDone
		if !authed && st.failure == "" {
			st.failure = fmt.Sprintf("pre-auth deadline of %s exceeded", s.cfg.PreAuthTimeout)
		}
		st.mu.Unlock()
		if !authed {
			if !kex {
				s.startups.penalise(source)
			}
			_ = wc.Close()
		}
	})
	// Everything Close needs exists before the slot is visible to other
	// connections, which may evict it at once.
	st.slot = newSlot(source, func() {
		// Evicted to make room: not audited (a flood would otherwise
		// write to the audit log at the attacker's pace) but counted.
		st.mu.Lock()
		st.quiet = true
		st.mu.Unlock()
		_ = wc.Close()
	})
	st.release = func() { s.startups.release(st.slot) }
	if blocked, until := s.throttle.Blocked(st.source); blocked {
		st.throttled = true
		st.failure = fmt.Sprintf("too many failed logins from %s; retry after %s", authn.Host(st.source), until.UTC().Format(time.RFC3339))
	}
	s.metrics.active.Inc() // Close decrements it, even after an eviction
	victim, ok, why := s.startups.admit(st.slot)
	if !ok {
		s.metrics.active.Dec()
		st.handshake.Stop()
		st.deadline.Stop()
		s.metrics.refused.WithLabelValues("startup").Inc()
		s.log.Warn("dropping connection before the handshake", "source", source, "reason", why)
		return nil // charmbracelet/ssh closes it
	}
	if victim != nil {
		s.metrics.refused.WithLabelValues("startup_evicted").Inc()
		s.log.Debug("evicted a connection that had not finished the key exchange", "victim", victim.source, "for", source)
		victim.evict()
	}
	ctx.SetValue(stateKey{}, st)
	return wc
}

// cutBeforeKex records why a connection is cut if it has not finished the
// key exchange yet, and reports whether it had not.
func (st *connState) cutBeforeKex(why string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.kexDone || st.authed {
		return false
	}
	if st.failure == "" {
		st.failure = why
	}
	return true
}

// keyExchanged runs once the key exchange finished (x/crypto's
// PreAuthConnCallback): the slot becomes hard and the handshake deadline
// stops; the pre-auth deadline still runs.
func (s *Server) keyExchanged(st *connState) {
	if st == nil {
		return
	}
	st.mu.Lock()
	st.kexDone = true
	st.mu.Unlock()
	st.handshake.Stop()
	s.startups.handshaken(st.slot)
}

// preAuthCallbacks adds the pre-auth checks to an x/crypto configuration:
// the end of the key exchange, and the login name of the first request.
func (s *Server) preAuthCallbacks(cfg *gossh.ServerConfig, st *connState) {
	cfg.PreAuthConnCallback = func(c gossh.ServerPreAuthConn) {
		if st != nil {
			st.mu.Lock()
			st.preAuth = c
			st.mu.Unlock()
		}
		s.keyExchanged(st)
	}
	if ki := cfg.KeyboardInteractiveCallback; ki != nil {
		cfg.KeyboardInteractiveCallback = func(cm gossh.ConnMetadata, ask gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
			if !s.loginOK(st, cm.User()) {
				return nil, errors.New("login name refused")
			}
			return ki(cm, ask)
		}
	}
	banner := cfg.BannerCallback
	// x/crypto calls BannerCallback once, with the first auth request,
	// before the request's method is looked at.
	cfg.BannerCallback = func(cm gossh.ConnMetadata) string {
		if !s.loginOK(st, cm.User()) {
			return ""
		}
		if banner != nil {
			return banner(cm)
		}
		return ""
	}
}
