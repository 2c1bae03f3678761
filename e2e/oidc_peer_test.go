package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// deviceAuth is the device authorization response (RFC 8628 §3.2).
type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// tokenResponse is a token endpoint answer, success or error.
type tokenResponse struct {
	AccessToken      string `json:"access_token"`
	IDToken          string `json:"id_token"`
	RefreshToken     string `json:"refresh_token"`
	TokenType        string `json:"token_type"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func postForm(t *testing.T, endpoint string, form url.Values, out any) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.PostForm(endpoint, form)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: HTTP %d, decoding: %v", endpoint, resp.StatusCode, err)
	}
	return resp.StatusCode
}

func startDeviceFlow(t *testing.T, o *harness.OIDC) deviceAuth {
	t.Helper()
	var da deviceAuth
	code := postForm(t, o.DeviceAuthorizationEndpoint, url.Values{
		"client_id": {"bastion"},
		"scope":     {"openid email profile groups"},
	}, &da)
	if code != http.StatusOK || da.DeviceCode == "" || da.UserCode == "" {
		t.Fatalf("device authorization: HTTP %d %+v", code, da)
	}
	if !strings.HasPrefix(da.VerificationURI, o.Issuer) {
		t.Fatalf("verification_uri %q is not under the issuer %q", da.VerificationURI, o.Issuer)
	}
	return da
}

// pollToken polls the token endpoint as the bastion would, until it gets
// tokens or an error other than authorization_pending / slow_down.
func pollToken(t *testing.T, o *harness.OIDC, da deviceAuth, within time.Duration) tokenResponse {
	t.Helper()
	interval := time.Second
	deadline := time.Now().Add(within)
	for {
		var tr tokenResponse
		postForm(t, o.TokenEndpoint, url.Values{
			"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
			"device_code": {da.DeviceCode},
			"client_id":   {"bastion"},
		}, &tr)
		switch tr.Error {
		case "authorization_pending":
		case "slow_down":
			interval += time.Second
		default:
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("token endpoint still pending after %s", within)
		}
		time.Sleep(interval)
	}
}

func idTokenClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token is not a JWS: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("id_token payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("id_token payload: %v", err)
	}
	return claims
}

// The OIDC peer (npm oidc-provider) runs the device authorization grant
// end to end, driven through its HTML forms as a person would.
func TestOIDCPeerDeviceFlow(t *testing.T) {
	t.Run("approve", func(t *testing.T) {
		o := harness.StartOIDC(t, harness.OIDCOptions{})
		da := startDeviceFlow(t, o)
		// Before the person acts, the client is told to keep polling.
		var pending tokenResponse
		postForm(t, o.TokenEndpoint, url.Values{
			"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
			"device_code": {da.DeviceCode},
			"client_id":   {"bastion"},
		}, &pending)
		if pending.Error != "authorization_pending" {
			t.Fatalf("token before approval: %+v, want authorization_pending", pending)
		}
		if err := o.Approve(t, da.UserCode, "alice"); err != nil {
			t.Fatalf("approve: %v\n%s", err, o.Logs())
		}
		tr := pollToken(t, o, da, 30*time.Second)
		if tr.Error != "" || tr.IDToken == "" || tr.AccessToken == "" {
			t.Fatalf("token: %+v\n%s", tr, o.Logs())
		}
		c := idTokenClaims(t, tr.IDToken)
		if c["iss"] != o.Issuer || c["aud"] != "bastion" || c["sub"] != "alice" {
			t.Errorf("iss/aud/sub = %v/%v/%v", c["iss"], c["aud"], c["sub"])
		}
		if c["email"] != "alice@example.com" || c["email_verified"] != true {
			t.Errorf("email = %v (verified %v), want alice@example.com", c["email"], c["email_verified"])
		}
		groups := fmt.Sprint(c["groups"])
		if gs, _ := c["groups"].([]any); !slices.Contains(gs, any("devs")) || !slices.Contains(gs, any("ops")) {
			t.Errorf("groups = %s, want devs and ops", groups)
		}
		// A used user code cannot be approved again.
		if err := o.Approve(t, da.UserCode, "mallory"); err == nil {
			t.Errorf("a used user code was accepted again")
		}
	})

	t.Run("deny", func(t *testing.T) {
		o := harness.StartOIDC(t, harness.OIDCOptions{})
		da := startDeviceFlow(t, o)
		if err := o.Deny(t, da.UserCode, "bob"); err != nil {
			t.Fatalf("deny: %v\n%s", err, o.Logs())
		}
		if tr := pollToken(t, o, da, 10*time.Second); tr.Error != "access_denied" {
			t.Fatalf("token after deny: %+v, want access_denied", tr)
		}
		// Aborting on the device confirmation page, before signing in.
		da = startDeviceFlow(t, o)
		if err := o.Abort(t, da.UserCode); err != nil {
			t.Fatalf("abort: %v\n%s", err, o.Logs())
		}
		if tr := pollToken(t, o, da, 10*time.Second); tr.Error != "access_denied" {
			t.Fatalf("token after abort: %+v, want access_denied", tr)
		}
	})

	t.Run("unknown login", func(t *testing.T) {
		o := harness.StartOIDC(t, harness.OIDCOptions{})
		da := startDeviceFlow(t, o)
		if err := o.Approve(t, da.UserCode, "eve"); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("approve as an unknown login: %v, want refused", err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		o := harness.StartOIDC(t, harness.OIDCOptions{DeviceTTL: 3 * time.Second})
		da := startDeviceFlow(t, o)
		if da.ExpiresIn > 3 {
			t.Errorf("expires_in = %d, want <= 3", da.ExpiresIn)
		}
		time.Sleep(4 * time.Second)
		if tr := pollToken(t, o, da, 10*time.Second); tr.Error != "expired_token" {
			t.Fatalf("token after expiry: %+v, want expired_token", tr)
		}
		if err := o.Approve(t, da.UserCode, "alice"); err == nil {
			t.Errorf("an expired user code was accepted")
		}
	})

	t.Run("down", func(t *testing.T) {
		o := harness.StartOIDC(t, harness.OIDCOptions{})
		o.Stop()
		c := &http.Client{Timeout: 2 * time.Second}
		if resp, err := c.Get(o.Issuer + "/.well-known/openid-configuration"); err == nil {
			resp.Body.Close()
			t.Fatalf("the provider still answers after Stop")
		}
	})
}
