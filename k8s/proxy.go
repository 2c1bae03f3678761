package k8s

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// Identity is who the apiserver sees: the impersonated user and groups.
type Identity struct {
	User   string
	Groups []string
}

// Upstream is one apiserver, reached with the bastion's credentials.
type Upstream struct {
	cfg    *rest.Config
	tc     *transport.Config // made once: a custom Dial is cached by its holder's address
	target *url.URL
}

// NewUpstream prepares the proxy to the apiserver of cfg.
func NewUpstream(cfg *rest.Config) (*Upstream, error) {
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" {
		u.Scheme = "https"
	}
	// The proxy serves the request's own path; an empty location path
	// would make it redirect every GET to PATH/ instead.
	if u.Path == "" {
		u.Path = "/"
	}
	// The transport config is made once, so that every handler shares
	// client-go's cached TLS transport: each call of TransportConfig wraps
	// cfg.Dial in a new holder, and the cache is keyed by its address.
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, fmt.Errorf("kube transport: %w", err)
	}
	return &Upstream{cfg: cfg, tc: tc, target: u}, nil
}

// Host is the apiserver's URL.
func (u *Upstream) Host() string { return u.target.String() }

// ErrorFunc answers a request the proxy could not complete.
type ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

type responder ErrorFunc

func (f responder) Error(w http.ResponseWriter, r *http.Request, err error) { f(w, r, err) }

// Handler proxies requests to the apiserver as id. Client credentials and
// impersonation headers are removed first: the bastion alone decides who
// the apiserver sees.
func (u *Upstream) Handler(id Identity, onError ErrorFunc) (http.Handler, error) {
	cfg := rest.CopyConfig(u.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	// client-go's transport: TLS from the bastion's kubeconfig (cached and
	// shared between users), its credentials, and the Impersonate-*
	// headers for this user.
	tc := *u.tc
	tc.Impersonate = transport.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	rt, err := transport.New(&tc)
	if err != nil {
		return nil, fmt.Errorf("kube transport: %w", err)
	}
	up, err := upgradeTransport(cfg)
	if err != nil {
		return nil, err
	}
	h := proxy.NewUpgradeAwareHandler(u.target, rt, false, false, responder(onError))
	h.UpgradeTransport = up
	h.UseRequestLocation = true
	h.UseLocationHost = true
	h.AppendLocationPath = u.target.Path != "" && u.target.Path != "/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		StripCredentials(r.Header)
		h.ServeHTTP(w, r)
	}), nil
}

// StripCredentials removes what a client could use to speak as someone
// else: its bearer token (the bastion's tunnel token, never meant for the
// apiserver) and any impersonation or front-proxy identity headers.
func StripCredentials(h http.Header) {
	for k := range h {
		lk := strings.ToLower(k)
		if lk == "authorization" || strings.HasPrefix(lk, "impersonate-") || strings.HasPrefix(lk, "x-remote-") {
			delete(h, k)
		}
	}
}

// upgradeTransport dials upgrades (SPDY, WebSocket) with the same TLS,
// credentials and impersonation as plain requests, as kubectl proxy does.
func upgradeTransport(cfg *rest.Config) (proxy.UpgradeRequestRoundTripper, error) {
	tc, err := cfg.TransportConfig()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := transport.TLSConfigFor(tc)
	if err != nil {
		return nil, err
	}
	rt := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	if cfg.Dial != nil {
		// The same dialer as plain requests (the bastion's address guard).
		rt.DialContext = cfg.Dial
	}
	wrapped, err := transport.HTTPWrappersForConfig(tc, proxy.MirrorRequest)
	if err != nil {
		return nil, err
	}
	return proxy.NewUpgradeRequestRoundTripper(rt, wrapped), nil
}
