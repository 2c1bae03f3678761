package forward

import (
	"context"
	"net"
	"strconv"
	"strings"

	"github.com/sshbastion/bastion/store"
)

// dialAddress maps a requested port on a Resource to the address to dial.
// The first allowed port (22 by default for ssh Resources) maps to the
// Resource's address itself, whatever its real port; other allowed ports
// map to the same host on that port. Ports not allowed are refused.
func dialAddress(r store.Resource, port int) (string, bool) {
	ports := r.Ports
	if len(ports) == 0 {
		if r.Kind == "ssh" {
			ports = []int{22}
		} else if _, p, err := net.SplitHostPort(r.Address); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				ports = []int{n}
			}
		}
	}
	for i, p := range ports {
		if p != port {
			continue
		}
		if i == 0 {
			return r.Address, true
		}
		// Other ports reuse the address's host; an address without a
		// parsable host cannot be mapped safely, so it is refused.
		host, _, err := net.SplitHostPort(r.Address)
		if err != nil || host == "" {
			return "", false
		}
		return net.JoinHostPort(host, strconv.Itoa(port)), true
	}
	return "", false
}

func portList(r store.Resource) string {
	if len(r.Ports) == 0 && r.Kind == "ssh" {
		return "22"
	}
	s := make([]string, len(r.Ports))
	for i, p := range r.Ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

// dial connects to addr for r through the configured Dialer: the address
// is checked after resolution, so a name that now resolves to loopback or
// the bastion's own ports is refused even though it passed at add time.
func (m *Module) dial(ctx context.Context, r store.Resource, addr string) (net.Conn, error) {
	if m.cfg.Dialer == nil {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	return m.cfg.Dialer.DialResource(ctx, r, "tcp", addr)
}

// splitWorkload splits a forward's host into the Resource's name and what
// follows its first "/": "prod/pods/NS/NAME" names pod NS/NAME of the kube
// Resource prod (kty's form); a plain name has no workload.
func splitWorkload(host string) (name, workload string) {
	name, workload, _ = strings.Cut(host, "/")
	return name, workload
}
