package subsystems

// The per-connection state of authentication: methods tried, deadlines,
// pre-auth slots, the verified Principal and keepalives.

import (
	"fmt"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
)

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

func (st *connState) noteMethod(login, method string, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.login = login
	st.methods = appendUnique(st.methods, method)
}

// failReason says why a connection ended unauthenticated; st.mu is held.
func (st *connState) failReason() string {
	switch {
	case st.failure != "":
		return st.failure
	case st.keyFailure != "":
		return st.keyFailure
	case st.touchKey != "":
		return "security key " + st.touchKey + " was offered, but no signature asserting user presence followed: " +
			"touch the key when ssh asks, or an admin registers it with --no-touch-required"
	}
	for _, m := range st.methods {
		if m == "keyboard-interactive" && st.deviceLogin {
			return "the device login (keyboard-interactive) was not completed"
		}
		if m != "none" && m != "publickey" {
			return "authentication method " + m + " is not accepted (publickey only)"
		}
	}
	if len(st.methods) == 1 && st.methods[0] == "none" {
		return "authentication method none is not accepted: a registered key is required"
	}
	return ""
}

// extendDeadline moves the pre-auth deadline to d from now.
func (st *connState) extendDeadline(d time.Duration) {
	st.deadline.Reset(d)
}

func (st *connState) markAuthed() {
	st.mu.Lock()
	st.authed = true
	st.failure = ""
	st.mu.Unlock()
	st.deadline.Stop()
	st.releaseSlot()
}

// releaseSlot frees the pre-auth slot once: at auth success or close.
func (st *connState) releaseSlot() {
	st.mu.Lock()
	done := st.released
	st.released = true
	st.mu.Unlock()
	if !done && st.release != nil {
		st.release()
	}
}

// principalOf returns the verified Principal of an authenticated
// connection, from the Permissions x/crypto kept for the proven key.
func principalOf(conn *gossh.ServerConn) (authn.Principal, error) {
	if conn == nil || conn.Permissions == nil {
		return authn.Principal{}, fmt.Errorf("connection has no verified identity")
	}
	raw, ok := conn.Permissions.Extensions[principalExt]
	if !ok {
		return authn.Principal{}, fmt.Errorf("connection has no verified identity")
	}
	return authn.UnmarshalPrincipal(raw)
}

// keepalive sends keepalive@openssh.com and closes connections whose peer
// stopped answering, so that dead peers do not hold sessions open.
func (s *Server) keepalive(ctx ssh.Context) {
	t := time.NewTicker(s.cfg.KeepaliveInterval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		conn, _ := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
		if conn == nil {
			continue
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case err := <-replied:
			if err != nil {
				return
			}
			missed = 0
		case <-time.After(s.cfg.KeepaliveInterval):
			missed++
			if missed >= s.cfg.KeepaliveCountMax {
				s.log.Info("closing connection: peer stopped answering keepalives", "conn", stateOf(ctx).id)
				_ = conn.Close()
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
