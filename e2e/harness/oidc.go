package harness

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// OIDCOptions configure the OIDC provider peer.
type OIDCOptions struct {
	// DeviceTTL is the lifetime of device codes (default 600 s).
	DeviceTTL time.Duration
	// AccountsJSON, if set, replaces the built-in accounts (alice, bob,
	// mallory); it is a JSON object login → {"email","name","groups"}.
	AccountsJSON string
	// ACR and AMR are what every login at the provider reports (default
	// urn:bastion:pwd and [pwd]).
	ACR string
	AMR []string
}

// OIDC is a running oidc-provider (panva's, certified) with the device
// authorization grant enabled and a public client "bastion". Its accounts
// are alice (alice@example.com, groups devs, ops), bob (bob@example.com,
// devs) and mallory (mallory@evil.test, no groups); any non-empty
// password is accepted.
type OIDC struct {
	Issuer string // http://127.0.0.1:PORT
	Port   string
	// Endpoints from the discovery document.
	DeviceAuthorizationEndpoint string
	TokenEndpoint               string
	JWKSURI                     string
	UserinfoEndpoint            string
	// VerificationURI is where a person enters the user code.
	VerificationURI string

	t    testing.TB
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// OIDCDir is the node project of the OIDC peer, relative to the module root.
const OIDCDir = "e2e/oidc"

// StartOIDC runs `node server.mjs` from e2e/oidc on a free loopback port and
// waits until its discovery document is served. It is stopped when the
// test ends. The node modules are installed by `make test`
// (scripts/install-oidc.sh); without them the test fails, it never skips.
func StartOIDC(t testing.TB, opts OIDCOptions) *OIDC {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("oidc: module root: %v", err)
	}
	dir := filepath.Join(root, OIDCDir)
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("oidc: node is not installed (%v); the OIDC peer needs Node.js >= 20", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		t.Fatalf("oidc: %s/node_modules is missing (%v); run `make test` or `bash scripts/install-oidc.sh`", OIDCDir, err)
	}
	port := freePort(t)
	o := &OIDC{t: t, Port: port, Issuer: "http://127.0.0.1:" + port, logs: &syncBuffer{}}
	env := append(os.Environ(), "PORT="+port, "ISSUER="+o.Issuer)
	if opts.DeviceTTL > 0 {
		secs := int((opts.DeviceTTL + time.Second - 1) / time.Second)
		env = append(env, "DEVICE_TTL="+strconv.Itoa(secs))
	}
	if opts.AccountsJSON != "" {
		env = append(env, "ACCOUNTS_JSON="+opts.AccountsJSON)
	}
	if opts.ACR != "" {
		env = append(env, "LOGIN_ACR="+opts.ACR)
	}
	if len(opts.AMR) > 0 {
		env = append(env, "LOGIN_AMR="+strings.Join(opts.AMR, ","))
	}
	o.cmd = exec.Command("node", "server.mjs")
	o.cmd.Dir = dir
	o.cmd.Env = env
	o.cmd.Stdout, o.cmd.Stderr = o.logs, o.logs
	if err := o.cmd.Start(); err != nil {
		t.Fatalf("oidc: start node: %v", err)
	}
	o.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(o.cmd, o.done)
	t.Cleanup(o.Stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(o.logs.String(), "oidc listening "+o.Issuer) {
			if err := o.discover(); err == nil {
				return o
			} else if time.Now().After(deadline) {
				t.Fatalf("oidc: discovery: %v\n%s", err, o.logs.String())
			}
		}
		if time.Now().After(deadline) {
			o.Stop()
			t.Fatalf("oidc: provider did not start within 30s:\n%s", o.logs.String())
		}
		select {
		case <-o.done:
			t.Fatalf("oidc: provider exited during start:\n%s", o.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (o *OIDC) discover() error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(o.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery: HTTP %d", resp.StatusCode)
	}
	var d struct {
		Issuer                      string `json:"issuer"`
		DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint"`
		TokenEndpoint               string `json:"token_endpoint"`
		JWKSURI                     string `json:"jwks_uri"`
		UserinfoEndpoint            string `json:"userinfo_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return fmt.Errorf("discovery: %v", err)
	}
	if d.Issuer != o.Issuer || d.DeviceAuthorizationEndpoint == "" {
		return fmt.Errorf("discovery: unexpected document: %+v", d)
	}
	o.DeviceAuthorizationEndpoint, o.TokenEndpoint = d.DeviceAuthorizationEndpoint, d.TokenEndpoint
	o.JWKSURI, o.UserinfoEndpoint = d.JWKSURI, d.UserinfoEndpoint
	o.VerificationURI = o.Issuer + "/device"
	return nil
}

// Stop ends the provider (SIGTERM, then SIGKILL after 5 s), as an IdP
// outage would. It is safe to call more than once.
func (o *OIDC) Stop() {
	if o.cmd == nil || o.cmd.Process == nil {
		return
	}
	select {
	case <-o.done:
		return
	default:
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(5 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.done
	}
}

// Logs returns what the provider printed so far.
func (o *OIDC) Logs() string { return o.logs.String() }

// Approve acts as a person with a fresh browser: opens the verification
// URI, enters userCode, confirms the device, signs in as login and allows
// the requested scopes. The client polling the token endpoint then gets
// its tokens.
func (o *OIDC) Approve(t testing.TB, userCode, login string) error {
	t.Helper()
	return o.person(t, userCode, login, "approve")
}

// Deny is Approve up to the consent page, where the person clicks Deny:
// the client polling the token endpoint gets access_denied.
func (o *OIDC) Deny(t testing.TB, userCode, login string) error {
	t.Helper()
	return o.person(t, userCode, login, "deny")
}

// Abort enters userCode and clicks Abort on the device confirmation page,
// before signing in: the client gets access_denied.
func (o *OIDC) Abort(t testing.TB, userCode string) error {
	t.Helper()
	return o.person(t, userCode, "", "abort")
}

func (o *OIDC) person(t testing.TB, userCode, login, decision string) error {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{c: &http.Client{Jar: jar, Timeout: 15 * time.Second}}

	// 1. The user-code page: form#op.deviceInputForm {xsrf, user_code}.
	p, err := b.get(o.VerificationURI)
	if err != nil {
		return err
	}
	f, err := p.form("op.deviceInputForm")
	if err != nil {
		return err
	}
	f.values.Set("user_code", userCode)
	if p, err = b.submit(f); err != nil {
		return err
	}

	// 2. The confirmation page: form#op.deviceConfirmForm {xsrf,
	// user_code, confirm=yes}; its Abort button adds abort=yes.
	f, err = p.form("op.deviceConfirmForm")
	if err != nil {
		return fmt.Errorf("after entering the user code: %w", err)
	}
	if decision == "abort" {
		f.values.Set("abort", "yes")
		if p, err = b.submit(f); err != nil {
			return err
		}
		if !strings.Contains(p.body, "interrupted") {
			return fmt.Errorf("abort: unexpected page %s: %s", p.url, p.summary())
		}
		t.Logf("oidc: aborted user code %s", userCode)
		return nil
	}
	if p, err = b.submit(f); err != nil {
		return err
	}

	// 3. The login page: form#login {login, password}.
	f, err = p.form("login")
	if err != nil {
		return fmt.Errorf("after confirming the device: %w", err)
	}
	f.values.Set("login", login)
	f.values.Set("password", "password-of-"+login)
	if p, err = b.submit(f); err != nil {
		return err
	}
	if _, err := p.form("login"); err == nil {
		return fmt.Errorf("login as %q refused: %s", login, p.summary())
	}

	// 4. The consent page: form#approve or form#deny.
	if f, err = p.form(decision); err != nil {
		return fmt.Errorf("after signing in as %s: %w", login, err)
	}
	if p, err = b.submit(f); err != nil {
		return err
	}
	switch {
	case decision == "approve" && strings.Contains(p.body, `id="success"`):
	case decision == "deny" && strings.Contains(p.body, "interrupted"):
	default:
		return fmt.Errorf("%s: unexpected page %s: %s", decision, p.url, p.summary())
	}
	t.Logf("oidc: %s signed in and chose %s for user code %s", login, decision, userCode)
	return nil
}

// browser is a plain HTTP client with a cookie jar that submits the
// provider's HTML forms; it runs no JavaScript.
type browser struct{ c *http.Client }

type htmlPage struct {
	url    *url.URL
	status int
	body   string
}

type htmlForm struct {
	method string
	action *url.URL
	values url.Values
}

func (b *browser) get(u string) (*htmlPage, error) {
	resp, err := b.c.Get(u)
	if err != nil {
		return nil, err
	}
	return readPage(resp)
}

func (b *browser) submit(f *htmlForm) (*htmlPage, error) {
	var resp *http.Response
	var err error
	if strings.EqualFold(f.method, "get") {
		u := *f.action
		u.RawQuery = f.values.Encode()
		resp, err = b.c.Get(u.String())
	} else {
		resp, err = b.c.PostForm(f.action.String(), f.values)
	}
	if err != nil {
		return nil, err
	}
	return readPage(resp)
}

func readPage(resp *http.Response) (*htmlPage, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &htmlPage{url: resp.Request.URL, status: resp.StatusCode, body: string(body)}, nil
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe  = regexp.MustCompile(`(?s)([a-zA-Z_:.-]+)\s*=\s*"([^"]*)"`)
	errorRe = regexp.MustCompile(`(?is)<p class="(?:red|error)"[^>]*>(.*?)</p>`)
	tagRe   = regexp.MustCompile(`(?s)<[^>]*>`)
)

func attrs(s string) map[string]string {
	m := map[string]string{}
	for _, a := range attrRe.FindAllStringSubmatch(s, -1) {
		m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
	}
	return m
}

// form finds the form with the given id and collects its inputs.
func (p *htmlPage) form(id string) (*htmlForm, error) {
	for _, m := range formRe.FindAllStringSubmatch(p.body, -1) {
		a := attrs(m[1])
		if a["id"] != id {
			continue
		}
		action, err := p.url.Parse(a["action"])
		if err != nil {
			return nil, fmt.Errorf("form %s: action %q: %v", id, a["action"], err)
		}
		f := &htmlForm{method: a["method"], action: action, values: url.Values{}}
		for _, in := range inputRe.FindAllStringSubmatch(m[2], -1) {
			ia := attrs(in[1])
			if ia["name"] != "" {
				f.values.Add(ia["name"], ia["value"])
			}
		}
		return f, nil
	}
	return nil, fmt.Errorf("no form %q on %s (HTTP %d): %s", id, p.url, p.status, p.summary())
}

// summary is the page's error message, or the start of its text.
func (p *htmlPage) summary() string {
	if m := errorRe.FindStringSubmatch(p.body); m != nil {
		return html.UnescapeString(strings.TrimSpace(tagRe.ReplaceAllString(m[1], "")))
	}
	text := strings.Join(strings.Fields(html.UnescapeString(tagRe.ReplaceAllString(p.body, " "))), " ")
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return text
}
