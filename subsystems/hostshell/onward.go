package hostshell

import (
	"context"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
)

// onwardPermissions are the extensions and critical options of the
// certificate the bastion signs to log in to a target for p. It exists
// because the target sees only that certificate: whatever the user's own
// certificate withholds must be withheld here too, or hopping through the
// bastion would lift the CA's restrictions. It grants no more than the
// user's certificate and no more than a shell needs:
//   - permit-pty, unless the user's certificate lacks it (the target then
//     refuses a pty itself, whatever the bastion asks);
//   - permit-user-rc only for a certificate that has it (logins without a
//     certificate keep the historical onward certificate: permit-pty only);
//   - never X11 or port forwarding: the bastion asks for none; agent
//     forwarding only where forward_agent allowed it (DialHost adds it,
//     see agent.go);
//   - force-command, when the user's certificate forces a command that
//     runs on the target, set to exactly that command, so that the target
//     enforces it as well.
func onwardPermissions(p authn.Principal, remote string) gossh.Permissions {
	perms := gossh.Permissions{CriticalOptions: map[string]string{}, Extensions: map[string]string{}}
	if !p.NoPTY {
		perms.Extensions[authn.ExtPTY] = ""
	}
	if p.Method == authn.MethodCert && !p.NoUserRC {
		perms.Extensions[authn.ExtUserRC] = ""
	}
	if p.ForceCommand != "" && remote != "" {
		perms.CriticalOptions[authn.OptForceCommand] = remote
	}
	return perms
}

type remoteKey struct{}

// withRemote records, for DialHost, the command a session will run on the
// target (empty for a shell).
func withRemote(ctx context.Context, remote string) context.Context {
	return context.WithValue(ctx, remoteKey{}, remote)
}

func remoteOf(ctx context.Context) string {
	r, _ := ctx.Value(remoteKey{}).(string)
	return r
}
