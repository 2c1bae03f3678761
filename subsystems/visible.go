package subsystems

import (
	"context"
	"fmt"

	"github.com/sshbastion/bastion/authn"
)

// Checker answers one relation question (the policy engine).
type Checker interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
}

// CanView reports whether p may see the Resource name (the view relation,
// which act implies). Every refusal about a Resource asks it first: for a
// Resource the user cannot view, the refusal must read exactly like the
// one for a name that does not exist, since naming it, its kind, its
// ports or its project would tell them that it exists. A policy that
// cannot answer counts as no (fail closed). why is for the audit log,
// which admins read: it says what was missing.
func CanView(ctx context.Context, pol Checker, p authn.Principal, name string) (ok bool, why string) {
	ok, err := pol.Check(ctx, p.Subject(), "view", "resource:"+name)
	switch {
	case err != nil:
		return false, "the policy could not be evaluated (" + err.Error() + ")"
	case !ok:
		return false, fmt.Sprintf("%s lacks view on resource:%s", p.Subject(), name)
	}
	return true, ""
}
