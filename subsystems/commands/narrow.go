package commands

import (
	"errors"

	"github.com/sshbastion/bastion/store"
)

// requireResourceAdmin refuses the caller unless they are admin of the
// Resource name's project (domain admins are everywhere). It guards what
// reaches into other people's use of a Resource (reading their
// recordings, ending their sessions), and its refusal names that
// narrowest relation rather than domain admin, which would grant far
// more. As for `resources rm`, the Resource's record decides its project,
// never tuples; a Resource that no longer exists leaves only domain
// admins. doing says what the caller tried, for the refusal.
func (e *env) requireResourceAdmin(what, name, doing string) error {
	r, err := e.deps.Resources.GetResource(e.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return e.requireAdmin(what)
	} else if err != nil {
		return err
	}
	return e.requireProjectAdmin(what, projectOf(r), doing+" on "+name+", which is in project "+projectOf(r)+",")
}
