package subsystems

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Permissions extension under which the verified Principal travels from
// the auth callbacks to the connection.
const principalExt = "bastion-principal"

type stateKey struct{}

// connState is what the core knows about one connection.
type connState struct {
	id     string
	source string
	conn   net.Conn

	mu         sync.Mutex
	authed     bool
	login      string
	methods    []string
	offered    []string // fingerprints of keys offered, in order
	failure    string   // why the connection failed before auth
	keyFailure string   // why the last offered key was refused
	// keyFailureKind is keyFailure's reason label (see keyFailureKind).
	keyFailureKind string
	// touchKey is the last key offered when it was a registered security
	// key that needs a touch: x/crypto ends the handshake, without a
	// callback, when its signature lacks user presence, so a login that
	// fails after offering it is explained by it.
	touchKey string
	// certRefused holds the certificates refused (and audited as
	// auth.cert.refuse) on this connection: one event per attempt.
	certRefused map[string]bool
	throttled   bool
	release     func() // frees the pre-auth slot; called once
	released    bool
	slot        *slot
	kexDone     bool        // the key exchange finished
	quiet       bool        // evicted before the key exchange: not audited
	badLogin    bool        // the login name was refused (see loginOK)
	loginBytes  int         // its length, audited instead of the name
	handshake   *time.Timer // the handshake deadline
	certTimer   *time.Timer // closes the connection when its certificate expires
	closed      bool        // Close ran
	refusals    []string
	stderr      []func(string)
	deadline    *time.Timer
	// proven is the first unregistered key whose signature verified; a
	// device login binds it (and nothing else).
	proven        gossh.PublicKey
	deviceFailure string
	// preAuth sends banners during authentication; explained says the
	// refusal of an unregistered key was told once (auth_banner.go).
	preAuth     gossh.ServerPreAuthConn
	explained   bool
	deviceLogin bool // device logins are configured
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func stateOf(ctx ssh.Context) *connState {
	st, _ := ctx.Value(stateKey{}).(*connState)
	return st
}

// trackedConn reports the end of a connection, and audits connections that
// ended without authenticating.
type trackedConn struct {
	net.Conn
	s    *Server
	st   *connState
	once sync.Once
	br   *bulkReader
}

func (c *trackedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.s.metrics.active.Dec()
		st := c.st
		st.deadline.Stop()
		st.handshake.Stop()
		st.releaseSlot()
		st.mu.Lock()
		st.closed = true
		if st.certTimer != nil {
			st.certTimer.Stop()
		}
		authed, tried, failure := st.authed, len(st.methods) > 0, st.failReason()
		quiet, kex := st.quiet, st.kexDone
		ev := store.Event{
			Actor: st.login, Action: "auth.fail", Decision: "deny",
			Details: map[string]string{
				"source":       st.source,
				"methods":      strings.Join(st.methods, ","),
				"fingerprints": strings.Join(st.offered, ","),
				"conn":         st.id,
			},
		}
		if st.badLogin {
			ev.Details["login_bytes"] = fmt.Sprint(st.loginBytes)
		}
		throttled := st.throttled
		onlyRefusedCerts := len(st.certRefused) > 0 && !st.badLogin && st.failure == ""
		for _, fp := range st.offered {
			onlyRefusedCerts = onlyRefusedCerts && st.certRefused[fp]
		}
		failM, failR := failMethod(st), failReasonLabel(st, onlyRefusedCerts)
		st.mu.Unlock()
		if authed || quiet || (!tried && failure == "") {
			// Authenticated connections are audited on success; bare TCP
			// probes that never tried to log in are not worth an event.
			return
		}
		if failure == "" {
			failure = "no offered credential was accepted"
		}
		ev.Reason = failure
		if !throttled && kex {
			// Only real failures count against the source; refusals
			// while throttled would otherwise extend the block forever.
			// A connection cut before the key exchange tried no
			// credential: its source was penalised instead, which never
			// refuses a user who shares the address.
			c.s.throttle.Fail(st.source)
		}
		c.s.metrics.auth.WithLabelValues("any", "fail").Inc()
		c.s.metrics.authFail.WithLabelValues(failM, failR).Inc()
		if onlyRefusedCerts {
			// Its only credentials were certificates refused and audited
			// (auth.cert.refuse, with the reason): one event per attempt.
			return
		}
		c.s.recordRefusal(context.Background(), ev)
	})
	return err
}

// serverConfig builds the per-connection x/crypto configuration.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	st := stateOf(ctx)
	cfg := &gossh.ServerConfig{
		// MaxAuthTries caps failed attempts per connection; x/crypto
		// disconnects with "too many authentication failures" after it.
		MaxAuthTries: s.cfg.MaxAuthTries,
		BannerCallback: func(gossh.ConnMetadata) string {
			if st != nil && st.throttled {
				return "bastion: " + st.failure + "\n"
			}
			return ""
		},
		AuthLogCallback: func(cm gossh.ConnMetadata, method string, err error) {
			if st != nil && s.loginOK(st, cm.User()) {
				st.noteMethod(cm.User(), method, err == nil)
			}
		},
		// VerifiedPublicKeyCallback runs only after the client's signature
		// over the session was verified, so the key here is proven. This is
		// where the identity is bound (CVE-2024-45337: never bind a key
		// that was merely offered in the query phase).
		VerifiedPublicKeyCallback: func(cm gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			if !s.loginOK(st, cm.User()) {
				return nil, errors.New("login name refused")
			}
			if st != nil && st.throttled {
				return nil, fmt.Errorf("throttled")
			}
			if cert, ok := key.(*gossh.Certificate); ok {
				if s.cfg.Certificates == nil {
					return nil, errors.New("certificates are not accepted here")
				}
				// Checked again now that the signature is verified: the
				// query-phase answer is never trusted for identity.
				p, err := s.cfg.Certificates.Check(ctx, cert, cm.User(), cm.RemoteAddr().String())
				if err != nil {
					return nil, err
				}
				return s.authenticated(ctx, st, cm, p)
			}
			p, err := s.auth.Verified(ctx, key, cm.RemoteAddr().String())
			if errors.Is(err, authn.ErrVerifyUnsupported) {
				// Said to the client: it signed with a registered key and
				// deserves to know why that is not enough.
				return nil, &gossh.BannerError{Err: err, Message: "bastion: " + err.Error() + "\r\n"}
			}
			if errors.Is(err, authn.ErrStoreUnavailable) {
				// Fail closed, and say so: a replica that cannot reach its
				// store lets nobody in.
				return nil, &gossh.BannerError{Err: err,
					Message: "bastion: the store cannot be reached, so logins are refused on this replica; try again shortly\r\n"}
			}
			if err != nil {
				if s.deviceFallback(err) && st != nil {
					// The client proved it holds this key but nobody
					// registered it: partial success sends it on to the
					// device login (keyboard-interactive), which binds this
					// key, and only this one. Other keys may still be
					// tried, and a registered one logs in without a browser.
					st.mu.Lock()
					if st.proven == nil {
						st.proven = key
					}
					bind := st.proven
					st.mu.Unlock()
					return nil, &gossh.PartialSuccessError{Next: gossh.ServerAuthCallbacks{
						PublicKeyCallback: func(_ gossh.ConnMetadata, k gossh.PublicKey) (*gossh.Permissions, error) {
							if !s.keyAcceptable(ctx, k, false) {
								return nil, errors.New("not a registered key")
							}
							// The same waiver as in the first round (see
							// keyAcceptable), on Permissions of its own.
							if ext := ctx.Permissions().Extensions; ext != nil {
								if _, ok := ext[authn.NoTouchExtension]; ok {
									return &gossh.Permissions{Extensions: map[string]string{authn.NoTouchExtension: ""}}, nil
								}
							}
							return nil, nil
						},
						KeyboardInteractiveCallback: s.deviceChallenge(ctx, st, bind),
					}}
				}
				return nil, err
			}
			return s.authenticated(ctx, st, cm, p)
		},
	}
	if s.cfg.DeviceLogin != nil {
		// A client without any key (PubkeyAuthentication=no) can still log
		// in through the device flow; nothing is bound for it.
		cfg.KeyboardInteractiveCallback = s.deviceChallenge(ctx, st, nil)
	}
	s.preAuthCallbacks(cfg, st)
	// AES-GCM first: with AES-NI it is the fastest cipher for bulk
	// forwarding; chacha20-poly1305 stays for clients without it.
	cfg.Ciphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
		"aes128-ctr", "aes192-ctr", "aes256-ctr"}
	return cfg
}

// authenticated finishes a successful login: the connection is marked,
// audited, kept alive, and the Principal travels in the Permissions.
func (s *Server) authenticated(ctx ssh.Context, st *connState, cm gossh.ConnMetadata, p authn.Principal) (*gossh.Permissions, error) {
	if st != nil {
		p.SessionID = st.id
		st.markAuthed()
	}
	s.metrics.auth.WithLabelValues(p.Method, "success").Inc()
	d := map[string]string{
		"method": p.Method, "fingerprint": p.KeyFingerprint, "key_type": p.KeyType,
		"source": p.SourceAddr, "login": cm.User(), "conn": p.SessionID,
	}
	if p.ACR != "" {
		d["acr"] = p.ACR
	}
	if p.MFA {
		d["mfa"] = "true"
	}
	if len(p.AMR) > 0 {
		d["amr"] = strings.Join(p.AMR, ",")
	}
	if !p.AuthTime.IsZero() {
		d["auth_time"] = p.AuthTime.UTC().Format(time.RFC3339)
	}
	if p.Method == authn.MethodCert {
		d["serial"], d["key_id"] = fmt.Sprint(p.CertSerial), p.CertKeyID
		if p.ForceCommand != "" {
			d["force_command"] = p.ForceCommand
		}
		if !p.CertValidBefore.IsZero() {
			d["valid_before"] = p.CertValidBefore.Format(time.RFC3339)
		}
	}
	// No login without its auth.success event: a connection the audit log
	// does not know of must not exist.
	if err := s.record(ctx, store.Event{Actor: p.User, Action: "auth.success", Decision: "allow", Details: d}); err != nil {
		s.metrics.auth.WithLabelValues(p.Method, "audit_unavailable").Inc()
		s.metrics.authFail.WithLabelValues(p.Method, "audit_unavailable").Inc()
		return nil, errors.New("bastion: the audit log cannot record this login now; try again later")
	}
	s.watchCertExpiry(st, p)
	go s.keepalive(ctx)
	return &gossh.Permissions{Extensions: map[string]string{principalExt: p.Marshal()}}, nil
}

// deviceFallback reports whether a key that failed public-key auth may go
// on to a device login: only unregistered (or expired) keys, and only
// when device logins are configured.
func (s *Server) deviceFallback(err error) bool {
	return s.cfg.DeviceLogin != nil && (errors.Is(err, authn.ErrUnknownKey) || errors.Is(err, authn.ErrKeyExpired))
}

// publicKeyOffered answers the query phase: would this key be accepted?
// Nothing is bound here; see VerifiedPublicKeyCallback.
func (s *Server) publicKeyOffered(ctx ssh.Context, key ssh.PublicKey) bool {
	return s.keyAcceptable(ctx, key, true)
}

func (s *Server) keyAcceptable(ctx ssh.Context, key gossh.PublicKey, allowDevice bool) bool {
	st := stateOf(ctx)
	if !s.loginOK(st, ctx.User()) {
		return false
	}
	if st != nil {
		st.mu.Lock()
		st.offered = appendUnique(st.offered, gossh.FingerprintSHA256(key))
		throttled := st.throttled
		st.mu.Unlock()
		if throttled {
			return false
		}
	}
	// Security keys: x/crypto demands the user-presence flag of every
	// sk signature unless the Permissions of the key's PublicKeyCallback
	// carry no-touch-required, as sshd's authorized_keys option does.
	// charmbracelet/ssh returns one Permissions for every key of the
	// connection, and x/crypto verifies only the key it called the
	// callback for last (its cache holds one key), so the waiver is set
	// or cleared here for each key: it is never left over from another.
	noTouch(ctx, false)
	if cert, ok := key.(*gossh.Certificate); ok {
		// A certificate's waiver is its own no-touch-required extension,
		// which x/crypto reads itself: the CA decided.
		return s.certAcceptable(ctx, st, cert)
	}
	k, _, err := s.auth.Lookup(ctx, key)
	if err == nil && k.NoTouchRequired && authn.IsSecurityKey(key) {
		noTouch(ctx, true)
	}
	if st != nil {
		st.mu.Lock()
		st.touchKey = ""
		if err == nil && !k.NoTouchRequired && authn.IsSecurityKey(key) {
			st.touchKey = k.Fingerprint
		}
		st.mu.Unlock()
	}
	if err != nil && st != nil {
		st.mu.Lock()
		st.keyFailure = "public key " + gossh.FingerprintSHA256(key) + ": " + err.Error()
		st.keyFailureKind = keyFailureKind(err)
		st.mu.Unlock()
		s.explainKey(st, key, err)
	}
	if errors.Is(err, authn.ErrStoreUnavailable) {
		// Accepted for now, so that the client signs and then learns why
		// it is refused (VerifiedPublicKeyCallback looks the key up again
		// and binds nothing without the store).
		return true
	}
	if err != nil && allowDevice && s.deviceFallback(err) {
		// Accepted for now so that the client signs: only a proven key
		// may be bound by the device login that follows.
		return true
	}
	return err == nil
}
