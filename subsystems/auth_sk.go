package subsystems

import (
	"github.com/charmbracelet/ssh"

	"github.com/sshbastion/bastion/authn"
)

// noTouch sets or clears the no-touch-required waiver in the Permissions
// that charmbracelet/ssh hands x/crypto for the key just offered.
func noTouch(ctx ssh.Context, on bool) {
	perms := ctx.Permissions()
	if perms == nil || perms.Permissions == nil {
		return
	}
	if !on {
		delete(perms.Extensions, authn.NoTouchExtension)
		return
	}
	if perms.Extensions == nil {
		perms.Extensions = map[string]string{}
	}
	perms.Extensions[authn.NoTouchExtension] = ""
}
