package subsystems

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/oauth2"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// DeviceLogin runs OIDC device logins (authn.DeviceFlow).
type DeviceLogin interface {
	Start(ctx context.Context) (*oauth2.DeviceAuthResponse, error)
	Wait(ctx context.Context, da *oauth2.DeviceAuthResponse) (authn.Identity, error)
	Config() authn.OIDCConfig
}

// Accounts creates users and binds keys after a device login.
type Accounts interface {
	GetUser(ctx context.Context, name string) (store.User, error)
	PutUser(ctx context.Context, u store.User) error
	PutKey(ctx context.Context, k store.Key) error
}

// maxDeviceWait bounds how long one connection may sit in a device login,
// whatever expiry the IdP gives its codes: unauthenticated connections
// must not be held open indefinitely.
const maxDeviceWait = 15 * time.Minute

// quickAnswer: a device prompt answered sooner than this was answered by
// a program, not by a person who opened the URL and approved.
const quickAnswer = 1500 * time.Millisecond

// noTerminalMessage is the refusal of a device login whose client cannot
// prompt (see quickAnswer); host is how users reach the bastion.
func noTerminalMessage(host string) string {
	return "this login needs a terminal: the identity provider login shows a code and waits for Enter after you approve it, " +
		"and this ssh answered at once (no terminal). Run ssh from a terminal, or log in with a registered key " +
		"(an admin adds it with: " + host + " keys add USER < KEY.pub)"
}

// pollInterval is how often the device flow polls the token endpoint.
func pollInterval(da *oauth2.DeviceAuthResponse) time.Duration {
	if da.Interval > 0 {
		return time.Duration(da.Interval) * time.Second
	}
	return 5 * time.Second // RFC 8628's default
}

// deviceChallenge is the keyboard-interactive step of a device login. bind
// is the key the client proved it holds (its signature was verified before
// partial success), or nil for a client without one: then nothing is bound.
func (s *Server) deviceChallenge(ctx ssh.Context, st *connState, bind gossh.PublicKey) func(gossh.ConnMetadata, gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
	return func(cm gossh.ConnMetadata, ask gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
		source := cm.RemoteAddr().String()
		if st != nil {
			st.mu.Lock()
			failed := st.deviceFailure
			st.mu.Unlock()
			if failed != "" {
				// One device login per connection: after a denial or
				// expiry the client's retries end at once (the reason was
				// shown already).
				return nil, errors.New(failed)
			}
		}
		fail := func(action, why string) (*gossh.Permissions, error) {
			if st != nil {
				st.mu.Lock()
				st.deviceFailure, st.failure = why, why
				st.mu.Unlock()
			}
			// Not the connection's context: a client that leaves mid-login
			// must not cancel the record of its own failure.
			s.recordRefusal(context.WithoutCancel(ctx), store.Event{Actor: cm.User(), Action: action, Decision: "deny", Reason: why,
				Details: map[string]string{"source": source, "conn": connID(st)}})
			// The instruction of an info request with no prompts is how a
			// server can still talk to the client at this point.
			_, _ = ask("", "bastion: "+why, nil, nil)
			return nil, errors.New(why)
		}
		da, err := s.cfg.DeviceLogin.Start(ctx)
		if err != nil {
			msg := err.Error()
			if errors.Is(err, authn.ErrIdPUnreachable) {
				msg += "; log in with a registered key or certificate, or try again later"
			}
			return fail("oidc.device.fail", msg)
		}
		expires := da.Expiry
		if expires.IsZero() || time.Until(expires) > maxDeviceWait {
			expires = time.Now().Add(maxDeviceWait)
		}
		// The person needs minutes at the IdP: the pre-auth deadline moves
		// to the code's expiry (bounded above), and only for connections
		// that reached this step.
		if st != nil {
			st.extendDeadline(time.Until(expires) + 10*time.Second)
		}
		details := map[string]string{"source": source, "conn": connID(st), "expires": expires.UTC().Format(time.RFC3339)}
		if bind != nil {
			details["fingerprint"] = gossh.FingerprintSHA256(bind)
		}
		// The code is shown only once its start is on record.
		if err := s.record(ctx, store.Event{Actor: cm.User(), Action: "oidc.device.start", Decision: "allow", Details: details}); err != nil {
			return fail("oidc.device.fail", "the audit log cannot record this login now; try again later")
		}

		prompt := devicePrompt(da, bind != nil)
		// The URL and code are in the prompt itself (not only the
		// instruction), so that `ssh -q` still shows them.
		asked := time.Now()
		if _, err := ask("bastion login", "", []string{prompt}, []bool{true}); err != nil {
			return fail("oidc.device.fail", "the client ended the login")
		}
		deadline, quick := expires, time.Since(asked) < quickAnswer
		if quick {
			// No person answers this fast: a client without a terminal
			// (stdin not a tty, no askpass) sends an empty answer at once,
			// and would then sit here for the code's whole lifetime. One
			// poll at the IdP's interval still lets a login that was
			// approved that fast through.
			deadline = time.Now().Add(pollInterval(da) + 2*time.Second)
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		id, err := s.cfg.DeviceLogin.Wait(wctx, da)
		switch {
		case quick && errors.Is(err, context.DeadlineExceeded):
			return fail("oidc.device.notty", noTerminalMessage(s.cfg.Host))
		case errors.Is(err, authn.ErrDeviceDenied):
			return fail("oidc.device.deny", "the login was denied at the identity provider; connection closed")
		case errors.Is(err, authn.ErrDeviceExpired), errors.Is(err, context.DeadlineExceeded):
			return fail("oidc.device.expire", "the login code expired before it was approved; run ssh again for a new code")
		case err != nil:
			return fail("oidc.device.fail", err.Error())
		}
		p, err := s.completeDevice(ctx, id, bind, source)
		if err != nil {
			return fail("oidc.device.fail", err.Error())
		}
		return s.authenticated(ctx, st, cm, p)
	}
}

// completeDevice maps a verified identity to a user (created on first
// login, groups refreshed from the claims) and binds the proven key.
func (s *Server) completeDevice(ctx context.Context, id authn.Identity, bind gossh.PublicKey, source string) (authn.Principal, error) {
	now := time.Now().UTC()
	u, err := s.cfg.Accounts.GetUser(ctx, id.User)
	switch {
	case errors.Is(err, store.ErrNotFound):
		u = store.User{Name: id.User, DisplayName: id.Name, Groups: id.Groups, Source: "oidc", Created: now}
	case err != nil:
		return authn.Principal{}, err
	case u.Source == "oidc":
		u.Groups, u.DisplayName = id.Groups, id.Name
	}
	ev := store.Event{Actor: u.Name, Action: "oidc.device.complete", Decision: "allow",
		Details: map[string]string{"subject": id.Subject, "email": id.Email, "groups": strings.Join(id.Groups, ","), "source": source}}
	if !id.AuthTime.IsZero() {
		ev.Details["auth_time"] = id.AuthTime.Format(time.RFC3339)
	}
	if id.ACR != "" {
		ev.Details["acr"] = id.ACR
	}
	if len(id.AMR) > 0 {
		ev.Details["amr"] = strings.Join(id.AMR, ",")
	}
	// Each change (the user record, the bound key) waits for its event.
	if err := s.record(ctx, ev); err != nil {
		return authn.Principal{}, errors.New("the audit log cannot record this login now; try again later")
	}
	if err := s.cfg.Accounts.PutUser(ctx, u); err != nil {
		return authn.Principal{}, fmt.Errorf("saving user %s: %v", u.Name, err)
	}
	groups := append([]string(nil), u.Groups...)
	for _, g := range id.Groups {
		groups = appendUnique(groups, g)
	}
	// The login is as fresh as the IdP says (auth_time), not as this
	// token: an IdP session from this morning is a login this morning.
	authTime := id.AuthTime
	if authTime.IsZero() || authTime.After(now) {
		authTime = now
	}
	p := authn.Principal{User: u.Name, DisplayName: u.DisplayName, Groups: groups, Method: authn.MethodOIDC, AuthTime: authTime,
		ACR: id.ACR, AMR: id.AMR, MFA: authn.AMRIsMFA(id.AMR), SourceAddr: source}
	if bind != nil {
		ttl := s.cfg.DeviceLogin.Config().KeyTTL
		remember := s.cfg.StepUpRemember
		if remember <= 0 {
			remember = 15 * time.Minute
		}
		k := store.Key{Fingerprint: gossh.FingerprintSHA256(bind), User: u.Name, Type: bind.Type(),
			AuthorizedKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(bind))), Comment: "oidc device login",
			Source: "oidc", Added: now, Expires: now.Add(ttl),
			// The key carries the login that bound it, for step-ups on the
			// next connections (step_up.remember).
			StrongAuthTime: authTime, StrongMethod: authn.MethodOIDC, StrongACR: id.ACR, StrongAMR: id.AMR, StrongUntil: now.Add(remember)}
		bindDetails := map[string]string{"fingerprint": k.Fingerprint, "expires": k.Expires.Format(time.RFC3339), "source": source,
			"auth_time": authTime.Format(time.RFC3339)}
		if id.ACR != "" {
			bindDetails["acr"] = id.ACR
		}
		if len(id.AMR) > 0 {
			bindDetails["amr"] = strings.Join(id.AMR, ",")
		}
		if err := s.record(ctx, store.Event{Actor: u.Name, Action: "oidc.key.bind", Decision: "allow",
			Details: bindDetails}); err != nil {
			return authn.Principal{}, errors.New("the audit log cannot record the key binding now; try again later")
		}
		if err := s.cfg.Accounts.PutKey(ctx, k); err != nil {
			return authn.Principal{}, fmt.Errorf("binding the key: %v", err)
		}
		p.KeyFingerprint, p.KeyType, p.PublicKey = k.Fingerprint, k.Type, k.AuthorizedKey
	}
	return p, nil
}

func connID(st *connState) string {
	if st == nil {
		return ""
	}
	return st.id
}

// DeviceCodeText is where to go and the code to enter for a device login
// started outside the login (`ssh bastion step-up`): a QR code of the
// complete URL, the URL and the code, as the login prompt shows them.
func DeviceCodeText(da *oauth2.DeviceAuthResponse) string {
	var b strings.Builder
	target := da.VerificationURIComplete
	if target == "" {
		target = da.VerificationURI
	}
	if qr := qrText(target); qr != "" {
		b.WriteString(qr)
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  Open:  %s\n  Code:  %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(&b, "  (or open %s)\n", da.VerificationURIComplete)
	}
	return b.String()
}

// devicePrompt is what the person sees: where to go, the code, a QR code
// of the complete URL, and what happens next.
func devicePrompt(da *oauth2.DeviceAuthResponse, binds bool) string {
	var b strings.Builder
	b.WriteString("\nbastion: this key is not registered; log in with your identity provider.\n\n")
	b.WriteString(DeviceCodeText(da))
	if binds {
		b.WriteString("\nAfter the login this key is remembered, so the next ssh needs no browser.\n")
	}
	b.WriteString("\nPress Enter once you have approved the login: ")
	return b.String()
}
