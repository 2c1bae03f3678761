package commands

import (
	"errors"
	"fmt"

	"github.com/sshbastion/bastion/store"
)

// requireResourceAdmin refuses the caller unless they are admin on the
// Resource name: domain admins, and admins of its project. It guards what
// reaches into other people's use of a Resource (reading their
// recordings, ending their sessions), and its refusal names that narrowest
// relation rather than domain admin, which would grant far more. The
// Resource's record decides its project, never tuples; a Resource that no
// longer exists leaves only domain admins. It fails closed.
func (e *env) requireResourceAdmin(what, name string) error {
	if e.isAdmin() {
		return nil
	}
	r, err := e.deps.Resources.GetResource(e.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return e.deny(what, fmt.Sprintf("the Resource %s no longer exists, so it needs the relation admin on %s, which %s lacks", name, e.domainObject(), e.p.Subject()),
			"Ask a domain admin")
	} else if err != nil {
		return err
	}
	project := projectOf(r)
	ok, err := e.deps.Policy.Check(e.ctx, e.p.Subject(), "admin", "resource:"+name)
	if err != nil {
		return e.deny(what, fmt.Sprintf("cannot evaluate admin on resource:%s: %v", name, err), "Try again, or ask a domain admin")
	}
	if !ok {
		return e.deny(what, fmt.Sprintf("it needs the relation admin on resource:%s, which admins of its project %s hold and %s lacks", name, project, e.p.Subject()),
			fmt.Sprintf("Ask a domain admin or an admin of project %s (%s tuples add project:%s#admin@%s)", project, e.deps.Host, project, e.p.Subject()))
	}
	return nil
}
