package subsystems

import (
	"context"
	"errors"
	"fmt"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Certificates checks OpenSSH user certificates (authn.Certificates).
type Certificates interface {
	Check(ctx context.Context, cert *gossh.Certificate, login, remoteAddr string) (authn.Principal, error)
}

// certAcceptable checks a certificate in the query phase, so that a
// refused one is never signed with, and audits the refusal with its reason.
func (s *Server) certAcceptable(ctx ssh.Context, st *connState, cert *gossh.Certificate) bool {
	var err error
	if s.cfg.Certificates == nil {
		err = errors.New("certificates are not accepted here")
	} else {
		_, err = s.cfg.Certificates.Check(ctx, cert, ctx.User(), ctx.RemoteAddr().String())
	}
	if err == nil {
		return true
	}
	why := err.Error() // Check's errors name the certificate (serial, key id)
	if st != nil {
		fp := gossh.FingerprintSHA256(cert)
		st.mu.Lock()
		st.keyFailure = why
		again := st.certRefused[fp]
		if st.certRefused == nil {
			st.certRefused = map[string]bool{}
		}
		st.certRefused[fp] = true
		st.mu.Unlock()
		if again {
			// OpenSSH offers a certificate more than once (query, then
			// with a signature); its refusal is on record already.
			return false
		}
	}
	s.recordRefusal(ctx, store.Event{Actor: ctx.User(), Action: "auth.cert.refuse", Decision: "deny", Reason: why,
		Details: map[string]string{"serial": fmt.Sprint(cert.Serial), "key_id": cert.KeyId, "source": ctx.RemoteAddr().String(), "conn": connID(st)}})
	return false
}
