package subsystems

import (
	"errors"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
)

// explainKey tells the client, in a userauth banner, why the key it just
// offered is refused, once per connection: without it, OpenSSH shows only
// "Permission denied (publickey)" and the person cannot tell a typo from a
// key nobody registered. It is sent while the key is refused, because a
// client with no other key disconnects at once after that (BatchMode
// included); a client that then logs in with another key has seen one line.
//
// The client is not authenticated: the banner names only what it already
// knows (the fingerprint of the key it offered) and how to get access,
// never a user name, a Resource, or whether the key belongs to anyone.
func (s *Server) explainKey(st *connState, key gossh.PublicKey, err error) {
	expired := errors.Is(err, authn.ErrKeyExpired)
	if !expired && !errors.Is(err, authn.ErrUnknownKey) {
		return // the store is down (said elsewhere), or a certificate
	}
	st.mu.Lock()
	c, done := st.preAuth, st.explained || st.throttled
	st.explained = true
	st.mu.Unlock()
	if c == nil || done {
		return
	}
	// A failed send means the client is gone; nothing to tell.
	_ = c.SendAuthBanner(keyBanner(s.cfg.Host, gossh.FingerprintSHA256(key), expired, s.cfg.DeviceLogin != nil))
}

// keyBanner is the text of explainKey: host is how users reach the
// bastion ("ssh -p 2222 localhost").
func keyBanner(host, fp string, expired, device bool) string {
	what := "key " + fp + " is not registered here."
	if expired {
		what = "key " + fp + " was registered by an identity provider login that has expired."
	}
	how := "ask an admin to register it: " + host + " keys add YOUR_USER < KEY.pub"
	if device {
		how = "log in from a terminal through your identity provider (the login prompt registers this key), or " + how
	}
	return "bastion: " + what + " To use it, " + how + "\n"
}
