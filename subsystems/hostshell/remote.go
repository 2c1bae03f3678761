package hostshell

import (
	"context"
	"strings"

	"github.com/charmbracelet/ssh"

	"github.com/sshbastion/bastion/authn"
)

// remoteCommand is what `ssh bastion HOST [--] CMD` runs on HOST: the
// client's exec string after the Resource name (and an optional "--"),
// byte for byte, as sshd would hand it to the login shell. Splitting it
// and joining the words again loses the quoting ('a    b' becomes a b).
// Under a certificate's force-command the forced string takes the place
// of the client's.
func remoteCommand(ctx context.Context, sess ssh.Session, args []string) string {
	raw := sess.RawCommand()
	if p, ok := authn.FromContext(ctx); ok && p.ForceCommand != "" {
		raw = p.ForceCommand
	}
	if rest, ok := afterName(raw, args[0]); ok {
		return rest
	}
	// The name was typed in some other form (quoted, say): quote each
	// remaining word for the target's shell instead.
	words := args[1:]
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return strings.Join(quoted, " ")
}

// afterName returns raw after its first word, which must be name, and an
// optional "--" word; the separating blanks go, nothing else does.
func afterName(raw, name string) (string, bool) {
	s := strings.TrimLeft(raw, " \t")
	if !strings.HasPrefix(s, name) {
		return "", false
	}
	s = s[len(name):]
	if s == "" {
		return "", true
	}
	if s[0] != ' ' && s[0] != '\t' {
		return "", false
	}
	s = strings.TrimLeft(s, " \t")
	if s == "--" {
		return "", true
	}
	if strings.HasPrefix(s, "--") && len(s) > 2 && (s[2] == ' ' || s[2] == '\t') {
		s = strings.TrimLeft(s[2:], " \t")
	}
	return s, true
}

// shellQuote quotes w for a POSIX shell.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@%+,") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
