package k8s

import (
	"net/http"
	"net/url"
	"path"
	"time"

	spdystream "k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/client-go/transport"
)

// podUpgrade is what a SPDY upgrade of a pod's subresource (exec,
// portforward) rides: the upgrader over the bastion's own dialer (so the
// address guard of Resources made over ssh applies) and TLS, the same
// transport wrapped with the bastion's credentials and the impersonation
// of id, and the subresource's URL.
type podUpgrade struct {
	upgrader *spdystream.SpdyRoundTripper
	wrapped  http.RoundTripper
	loc      url.URL
}

// podUpgradeFor builds the podUpgrade of subresource sub (exec,
// portforward) of pod ns/name as id.
func (u *Upstream) podUpgradeFor(id Identity, ns, name, sub string) (podUpgrade, error) {
	tc := *u.tc
	tc.Impersonate = transport.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	tlsCfg, err := transport.TLSConfigFor(&tc)
	if err != nil {
		return podUpgrade{}, err
	}
	dial := &http.Transport{TLSClientConfig: tlsCfg, DialContext: u.cfg.Dial, TLSHandshakeTimeout: 10 * time.Second}
	upgrader, err := spdystream.NewRoundTripperWithConfig(spdystream.RoundTripperConfig{UpgradeTransport: dial, PingPeriod: 5 * time.Second})
	if err != nil {
		return podUpgrade{}, err
	}
	wrapped, err := transport.HTTPWrappersForConfig(&tc, upgrader)
	if err != nil {
		return podUpgrade{}, err
	}
	loc := *u.target
	loc.Path = path.Join(loc.Path, "api/v1/namespaces", url.PathEscape(ns), "pods", url.PathEscape(name), sub)
	return podUpgrade{upgrader: upgrader, wrapped: wrapped, loc: loc}, nil
}
