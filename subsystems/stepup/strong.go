package stepup

import (
	"context"

	"github.com/sshbastion/bastion/authn"
)

// LastStrong implements subsystems.StrongLogins: the caller's last strong
// login as Last finds it (this login, a step-up kept for the connection,
// or one remembered on the key), for the request context of policy
// conditions, so that a condition on auth_age, acr or mfa and a step_up
// requirement judge the same login. ok is false when there is none, or
// the store cannot say (the request context then describes this login
// only, which is never stronger than what it is).
func (s *Service) LastStrong(ctx context.Context, p authn.Principal) (authn.StrongLogin, bool) {
	l, err := s.Last(ctx, p)
	if err != nil || !l.Strong || l.At.IsZero() {
		return authn.StrongLogin{}, false
	}
	return authn.StrongLogin{Method: l.Method, At: l.At, ACR: l.ACR, MFA: l.MFA || l.Method == authn.MethodSK}, true
}
