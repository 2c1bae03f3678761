package kube

import (
	"context"
	"fmt"
	"net"

	"github.com/sshbastion/bastion/store"
)

// Credential is one of the bastion's own apiserver identities, named in
// the config (kube.credentials) so that a Resource made over ssh refers
// to it by name and never names a file on the bastion's disk.
type Credential struct {
	Kubeconfig string
	Context    string
	InCluster  bool
}

// Dialer dials an address on behalf of a Resource (netguard.Guard).
type Dialer interface {
	DialResource(ctx context.Context, r store.Resource, network, address string) (net.Conn, error)
}

// spec returns the KubeSpec the bastion connects with: a credential name
// is replaced by what the config says it is. A Resource made over ssh
// that carries a raw kubeconfig, context or in-cluster flag (stored
// before credentials were named) is refused: whoever made it could have
// pointed the bastion at any kubeconfig on its disk.
func (m *Module) spec(r store.Resource) (store.KubeSpec, error) {
	var s store.KubeSpec
	if r.Kube != nil {
		s = *r.Kube
	}
	if s.Credentials != "" {
		c, ok := m.cfg.Credentials[s.Credentials]
		if !ok {
			return s, fmt.Errorf("its credentials %q are not in the config's kube.credentials: an operator must add them, "+
				"or a domain admin must pick configured ones (%s resources add %s --credentials NAME ...)", s.Credentials, m.cfg.Host, r.Name)
		}
		s.Kubeconfig, s.Context, s.InCluster = c.Kubeconfig, c.Context, c.InCluster
		return s, nil
	}
	if !r.FromConfig() && (s.Kubeconfig != "" || s.Context != "" || s.InCluster) {
		return s, fmt.Errorf("it was made over ssh with raw credentials (a kubeconfig path, context or in-cluster), which are honoured only in the config file: "+
			"a domain admin must re-add it naming one of the config's kube.credentials (%s resources add %s --credentials NAME ...)", m.cfg.Host, r.Name)
	}
	return s, nil
}

// dialFor is how the proxy connects to r's apiserver: through the address
// guard for Resources made over ssh (the apiserver URL's host is checked
// after resolution, at every connection), plainly for config Resources.
func (m *Module) dialFor(r store.Resource) func(ctx context.Context, network, address string) (net.Conn, error) {
	if m.cfg.Dialer == nil || r.FromConfig() {
		return nil
	}
	d := m.cfg.Dialer
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		return d.DialResource(ctx, r, network, address)
	}
}
