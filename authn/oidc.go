package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig configures logins through an OpenID Connect provider's device
// authorization grant (RFC 8628), for people without a registered key.
type OIDCConfig struct {
	Issuer   string   `yaml:"issuer"`
	ClientID string   `yaml:"client_id"` // a public client: no secret
	Scopes   []string `yaml:"scopes"`    // default openid email profile groups
	// UsernameClaim names the bastion user (default "email").
	UsernameClaim string `yaml:"username_claim"`
	// GroupsClaim holds the user's groups (default "groups").
	GroupsClaim string `yaml:"groups_claim"`
	// AllowedDomains, if set, restricts logins to these email domains.
	AllowedDomains []string `yaml:"allowed_domains"`
	// GroupPrefix goes before every IdP group (e.g. "oidc:").
	GroupPrefix string `yaml:"group_prefix"`
	// KeyTTL is how long a key proven during a device login stays bound to
	// the user (default 12h).
	KeyTTL time.Duration `yaml:"key_ttl"`
}

// Enabled reports whether device-flow logins are configured.
func (c OIDCConfig) Enabled() bool { return c.Issuer != "" && c.ClientID != "" }

// Errors of a device login, each with its own message for the user.
var (
	ErrIdPUnreachable = errors.New("the identity provider cannot be reached")
	ErrDeviceDenied   = errors.New("the login was denied at the identity provider")
	ErrDeviceExpired  = errors.New("the login code expired before it was used")
)

// Identity is what a verified ID token says about a person.
type Identity struct {
	User    string
	Name    string
	Email   string
	Subject string
	Groups  []string
	// The login itself, from the ID token: when the person authenticated
	// at the IdP (auth_time; the token's issue time if the IdP did not
	// say), the authentication context class (acr) and methods (amr).
	AuthTime time.Time
	ACR      string
	AMR      []string
}

// DeviceFlow runs device logins. Discovery happens on first use and is
// retried after failures, so that the bastion starts (and key and
// certificate users log in) while the IdP is down.
type DeviceFlow struct {
	cfg    OIDCConfig
	client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// NewDeviceFlow returns a device flow for cfg, with defaults filled in.
func NewDeviceFlow(cfg OIDCConfig) *DeviceFlow {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile", "groups"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "email"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.KeyTTL <= 0 {
		cfg.KeyTTL = 12 * time.Hour
	}
	return &DeviceFlow{cfg: cfg, client: &http.Client{Timeout: 10 * time.Second}}
}

// Config returns the effective configuration.
func (d *DeviceFlow) Config() OIDCConfig { return d.cfg }

func (d *DeviceFlow) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, d.client)
}

func (d *DeviceFlow) discover(ctx context.Context) (*oidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider != nil {
		return d.provider, nil
	}
	p, err := oidc.NewProvider(d.ctx(ctx), d.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %v", ErrIdPUnreachable, d.cfg.Issuer, err)
	}
	if p.Endpoint().DeviceAuthURL == "" {
		return nil, fmt.Errorf("%s does not offer the device authorization grant", d.cfg.Issuer)
	}
	d.provider = p
	return p, nil
}

func (d *DeviceFlow) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: d.cfg.ClientID, Endpoint: p.Endpoint(), Scopes: d.cfg.Scopes}
}

// Start asks the IdP for a device code and the user code to show.
func (d *DeviceFlow) Start(ctx context.Context) (*oauth2.DeviceAuthResponse, error) {
	return d.start(ctx)
}

// StartStepUp is Start for a step-up: it asks the IdP for a login no
// older than maxAge (max_age; 0 makes the person authenticate again) in
// one of the acr classes (acr_values, in order of preference; none: any).
func (d *DeviceFlow) StartStepUp(ctx context.Context, acr []string, maxAge time.Duration) (*oauth2.DeviceAuthResponse, error) {
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", strconv.Itoa(int(maxAge/time.Second)))}
	if len(acr) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(acr, " ")))
	}
	return d.start(ctx, opts...)
}

func (d *DeviceFlow) start(ctx context.Context, opts ...oauth2.AuthCodeOption) (*oauth2.DeviceAuthResponse, error) {
	p, err := d.discover(ctx)
	if err != nil {
		return nil, err
	}
	da, err := d.oauth(p).DeviceAuth(d.ctx(ctx), opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("the identity provider refused to start a login: %s", re.Error())
		}
		return nil, fmt.Errorf("%w (%s): %v", ErrIdPUnreachable, d.cfg.Issuer, err)
	}
	return da, nil
}

// Wait polls the token endpoint at the IdP's interval (slowing down when
// told to) until the person approved, denied, or the code expired, then
// verifies the ID token and maps its claims.
func (d *DeviceFlow) Wait(ctx context.Context, da *oauth2.DeviceAuthResponse) (Identity, error) {
	p, err := d.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	tok, err := d.oauth(p).DeviceAccessToken(d.ctx(ctx), da)
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case errors.As(err, &re) && re.ErrorCode == "access_denied":
			return Identity{}, ErrDeviceDenied
		case errors.As(err, &re) && re.ErrorCode == "expired_token",
			errors.Is(err, context.DeadlineExceeded) && !da.Expiry.IsZero() && !time.Now().Before(da.Expiry):
			return Identity{}, ErrDeviceExpired
		case errors.As(err, &re):
			return Identity{}, fmt.Errorf("the identity provider refused the login: %s", re.Error())
		case ctx.Err() != nil:
			return Identity{}, ctx.Err()
		}
		return Identity{}, fmt.Errorf("%w (%s): %v", ErrIdPUnreachable, d.cfg.Issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, errors.New("the identity provider returned no ID token (is the openid scope allowed?)")
	}
	// go-oidc checks the signature against the IdP's keys, the issuer, the
	// audience (our client id) and the expiry: an ID token minted for
	// another client or by another issuer must not log anyone in.
	idt, err := p.Verifier(&oidc.Config{ClientID: d.cfg.ClientID}).Verify(d.ctx(ctx), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("the ID token does not verify: %v", err)
	}
	return d.identity(idt)
}

func (d *DeviceFlow) identity(idt *oidc.IDToken) (Identity, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, err
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	id := Identity{User: str(d.cfg.UsernameClaim), Name: str("name"), Email: str("email"), Subject: idt.Subject,
		ACR: str("acr"), AuthTime: idt.IssuedAt.UTC()}
	// auth_time is when the person authenticated, which may be long
	// before this token (an IdP session): step-up requirements read it.
	if at, ok := claims["auth_time"].(float64); ok && at > 0 {
		id.AuthTime = time.Unix(int64(at), 0).UTC()
	}
	if amr, ok := claims["amr"].([]any); ok {
		for _, a := range amr {
			if s, ok := a.(string); ok && s != "" {
				id.AMR = append(id.AMR, s)
			}
		}
	}
	if id.User == "" {
		return Identity{}, fmt.Errorf("the ID token has no %q claim to name the user", d.cfg.UsernameClaim)
	}
	// An unverified email would let anyone who types someone else's
	// address at the IdP become that user here.
	if v, ok := claims["email_verified"].(bool); ok && !v && (d.cfg.UsernameClaim == "email" || len(d.cfg.AllowedDomains) > 0) {
		return Identity{}, fmt.Errorf("the email %s is not verified at the identity provider", id.Email)
	}
	if len(d.cfg.AllowedDomains) > 0 {
		_, domain, _ := strings.Cut(id.Email, "@")
		if !slices.Contains(d.cfg.AllowedDomains, strings.ToLower(domain)) {
			return Identity{}, fmt.Errorf("the email domain of %q is not allowed here (allowed: %s)", id.Email, strings.Join(d.cfg.AllowedDomains, ", "))
		}
	}
	switch g := claims[d.cfg.GroupsClaim].(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && s != "" {
				id.Groups = append(id.Groups, d.cfg.GroupPrefix+s)
			}
		}
	case string:
		id.Groups = append(id.Groups, d.cfg.GroupPrefix+g)
	}
	return id, nil
}
