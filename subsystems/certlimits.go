package subsystems

import (
	"context"
	"fmt"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// ReasonCertExpired is why sessions end when their certificate expires.
const ReasonCertExpired = "certificate expired"

// certRefusal says why a session request is refused because the
// certificate the user logged in with withholds it, or "" if it does not.
// It exists because a CA restricts a certificate by leaving extensions
// out, and sshd honours every one of them: so must the bastion, or a
// certificate made for a kiosk (no-pty) or a CI job would get more here
// than anywhere else. Logins without a certificate are not affected.
func certRefusal(p authn.Principal, typ string) (what, ext string) {
	if p.Method != authn.MethodCert {
		return "", ""
	}
	switch {
	case typ == "pty-req" && p.NoPTY:
		return "a terminal (pty)", authn.ExtPTY
	case typ == "x11-req" && p.NoX11Forwarding:
		return "X11 forwarding", authn.ExtX11Forwarding
	case typ == "auth-agent-req@openssh.com" && p.NoAgentForwarding:
		return "agent forwarding", authn.ExtAgentForwarding
	}
	return "", ""
}

// certRefusalMessage is the notice shown on the user's stderr.
func certRefusalMessage(p authn.Principal, what, ext string) string {
	return fmt.Sprintf("bastion: %s refused: your certificate (serial %d) does not permit it (it lacks %s)", what, p.CertSerial, ext)
}

// flushed returns once the client has processed everything sent before
// (a keepalive round trip, bounded by 5 s). OpenSSH writes a channel's
// stderr out only on its next loop turn: a refusal that arrives in the
// same read as the message would close the session first and the
// message would be lost.
func flushed(conn *gossh.ServerConn) {
	if conn == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		_, _, _ = conn.SendRequest("keepalive@openssh.com", true, nil)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// watchCertExpiry arranges for a connection that logged in with a
// certificate to end when the certificate does: the CA chose that
// instant, and a session that outlives its credential would turn a
// short-lived certificate into standing access (Teleport's
// disconnect_expired_cert). Sessions end first with ReasonCertExpired,
// then the connection closes.
func (s *Server) watchCertExpiry(st *connState, p authn.Principal) {
	if s.cfg.KeepExpiredCertSessions || st == nil || p.Method != authn.MethodCert || p.CertValidBefore.IsZero() {
		return
	}
	// The timer never reads ctx: charmbracelet/ssh mutates it from the
	// connection's goroutine without a lock.
	t := time.AfterFunc(time.Until(p.CertValidBefore), func() { s.certExpired(st, p) })
	st.mu.Lock()
	st.certTimer = t
	closed := st.closed
	st.mu.Unlock()
	if closed {
		t.Stop()
	}
}

func (s *Server) certExpired(st *connState, p authn.Principal) {
	st.mu.Lock()
	closed := st.closed
	st.mu.Unlock()
	if closed {
		return // the connection ended already
	}
	at := p.CertValidBefore.UTC().Format(time.RFC3339)
	st.notice(fmt.Sprintf("bastion: your certificate (serial %d) expired at %s; this connection ends", p.CertSerial, at))
	// The cut happens whatever becomes of its event; a lost one is counted.
	s.recordRefusal(context.Background(), store.Event{Actor: p.User, Action: "auth.cert.expired", Decision: "deny", Reason: ReasonCertExpired,
		Details: map[string]string{"serial": fmt.Sprint(p.CertSerial), "key_id": p.CertKeyID, "valid_before": at, "conn": st.id}})
	if s.cfg.EndSessions != nil {
		s.cfg.EndSessions(st.id, ReasonCertExpired)
	}
	s.log.Info("closing connection: its certificate expired", "user", p.User, "serial", p.CertSerial, "conn", st.id)
	_ = st.conn.Close()
}
