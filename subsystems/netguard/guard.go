package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sshbastion/bastion/store"
)

// AllowKey is the config key that re-opens refused ranges; refusals name it.
const AllowKey = "resource_policy.allow_cidrs"

// Config of a Guard.
type Config struct {
	// AllowCIDRs re-open ranges that are refused by default (loopback,
	// link-local, unspecified, metadata) for Resources made over ssh. They
	// never re-open the bastion's own listeners.
	AllowCIDRs []string
	// Resolver resolves names at CheckAddress (net.DefaultResolver if nil).
	Resolver *net.Resolver
	// InterfaceAddrs lists the host's addresses (net.InterfaceAddrs if nil).
	InterfaceAddrs func() ([]net.Addr, error)
}

// Guard refuses addresses that are the bastion itself, loopback,
// link-local, unspecified or cloud metadata, unless allowed.
type Guard struct {
	allow    []netip.Prefix
	resolver *net.Resolver
	ifaddrs  func() ([]net.Addr, error)

	mu    sync.RWMutex
	self  map[uint16]string // port of each of the bastion's listeners -> what it is
	bound []netip.Addr      // the specific addresses listeners are bound to

	ifMu    sync.Mutex
	ifCache []netip.Addr
	ifAt    time.Time
}

// New returns a Guard; a CIDR that does not parse is an error.
func New(cfg Config) (*Guard, error) {
	g := &Guard{resolver: cfg.Resolver, ifaddrs: cfg.InterfaceAddrs, self: map[uint16]string{}}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	if g.ifaddrs == nil {
		g.ifaddrs = net.InterfaceAddrs
	}
	for _, c := range cfg.AllowCIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR (e.g. 127.0.0.0/8): %v", AllowKey, c, err)
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// AddListener records one of the bastion's own listeners (its ssh port,
// its metrics port), so that no Resource made over ssh reaches it on any
// local address, whatever the allow CIDRs say: a project admin must not
// get at /metrics, pprof or the bastion's ssh port from "inside".
func (g *Guard) AddListener(what, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("address guard: listener %s: %v", addr, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.self[ap.Port()] = what + " listener " + addr
	if a := ap.Addr().Unmap().WithZone(""); !a.IsUnspecified() {
		g.bound = append(g.bound, a)
	}
	return nil
}

// Refusal is the error for an address the Guard refuses.
type Refusal struct {
	Address string // what was checked: host:port as given, or the IP dialled
	IP      netip.Addr
	Reason  string // why, e.g. "127.0.0.1 is loopback (the bastion host itself)"
	Hint    string // how to get it allowed, if it can be
}

func (r *Refusal) Error() string {
	msg := "address " + r.Address + " refused: " + r.Reason
	if r.Hint != "" {
		msg += "; " + r.Hint
	}
	return msg
}

// metadata are the cloud instance metadata services, which hand out the
// host's own credentials: 169.254.169.254 (AWS, GCP, Azure, OCI, ...),
// fd00:ec2::254 (AWS IPv6) and 100.100.100.200 (Alibaba).
var metadata = []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200")}

var (
	thisNet = netip.MustParsePrefix("0.0.0.0/8")     // "this network": 0.x dials the host itself on Linux
	nat64   = netip.MustParsePrefix("64:ff9b::/96")  // NAT64: the IPv4 address is embedded
	bcast   = netip.MustParseAddr("255.255.255.255") // limited broadcast
)

// CheckIP returns a *Refusal if a Resource made over ssh may not reach
// ip:port, else nil. shown is how the address is named in the refusal.
func (g *Guard) CheckIP(ip netip.Addr, port int, shown string) error {
	ip = ip.Unmap().WithZone("")
	if nat64.Contains(ip) {
		// A NAT64 gateway would translate this to the embedded IPv4
		// address: judge that one, or 64:ff9b::a9fe:a9fe reaches metadata.
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	refuse := func(reason, hint string) error {
		return &Refusal{Address: shown, IP: ip, Reason: reason, Hint: hint}
	}
	if what, ok := g.selfPort(port); ok && g.isLocal(ip) {
		// The bastion's own listeners are never a Resource: no allow CIDR
		// re-opens them.
		return refuse(fmt.Sprintf("%s port %d is the bastion's own %s", ip, port, what),
			"no setting allows this: the bastion does not forward to itself")
	}
	for _, m := range metadata {
		if ip == m {
			// Metadata hands out the host's cloud credentials: only a prefix
			// naming exactly this address re-opens it, never a wider range.
			if g.allowedExactly(ip) {
				return nil
			}
			return refuse(fmt.Sprintf("%s is the cloud metadata service, which hands out the bastion host's credentials", ip),
				fmt.Sprintf("an operator may allow exactly this address with %s: [%s] in the config", AllowKey, netip.PrefixFrom(ip, ip.BitLen())))
		}
	}
	// Loopback, unspecified and link-local reach the bastion host and its
	// segment (local daemons, neighbours), which no Resource grants; an
	// operator may re-open them, knowing what runs there.
	var reason, cidr string
	switch {
	case ip.IsLoopback():
		reason, cidr = "is loopback (the bastion host itself)", "127.0.0.0/8"
		if ip.Is6() {
			cidr = "::1/128"
		}
	case ip.IsUnspecified() || thisNet.Contains(ip):
		// Connecting to 0.0.0.0 (or ::) reaches the host's own listeners.
		reason, cidr = "is the unspecified address, which reaches the bastion host itself", netip.PrefixFrom(ip, ip.BitLen()).String()
	case ip.IsLinkLocalUnicast():
		reason, cidr = "is link-local (the bastion host's own network segment)", "169.254.0.0/16"
		if ip.Is6() {
			cidr = "fe80::/10"
		}
	case ip.IsMulticast() || ip == bcast:
		reason, cidr = "is not a unicast address", netip.PrefixFrom(ip, ip.BitLen()).String()
	default:
		return nil
	}
	if g.allowed(ip) {
		return nil
	}
	return refuse(ip.String()+" "+reason, fmt.Sprintf("if this target is intended, an operator may allow it with %s: [%s] in the config", AllowKey, cidr))
}

func (g *Guard) allowed(ip netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *Guard) allowedExactly(ip netip.Addr) bool {
	for _, p := range g.allow {
		if p.Bits() == ip.BitLen() && p.Addr() == ip {
			return true
		}
	}
	return false
}

func (g *Guard) selfPort(port int) (string, bool) {
	if port < 0 || port > 65535 {
		return "", false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	what, ok := g.self[uint16(port)]
	return what, ok
}

// isLocal reports whether ip reaches this host: loopback, unspecified,
// an address a listener is bound to, or one of the host's interfaces.
func (g *Guard) isLocal(ip netip.Addr) bool {
	if ip.IsLoopback() || ip.IsUnspecified() || thisNet.Contains(ip) {
		return true
	}
	g.mu.RLock()
	for _, b := range g.bound {
		if b == ip {
			g.mu.RUnlock()
			return true
		}
	}
	g.mu.RUnlock()
	for _, a := range g.interfaces() {
		if a == ip {
			return true
		}
	}
	return false
}

// interfaces lists the host's addresses, cached for a few seconds: the
// list is read on every dial to a port the bastion listens on.
func (g *Guard) interfaces() []netip.Addr {
	g.ifMu.Lock()
	defer g.ifMu.Unlock()
	if g.ifCache != nil && time.Since(g.ifAt) < 5*time.Second {
		return g.ifCache
	}
	addrs, err := g.ifaddrs()
	out := []netip.Addr{}
	if err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				out = append(out, p.Addr().Unmap().WithZone(""))
			} else if ip, err := netip.ParseAddr(a.String()); err == nil {
				out = append(out, ip.Unmap().WithZone(""))
			}
		}
	}
	g.ifCache, g.ifAt = out, time.Now()
	return out
}

// CheckAddress checks host:port as a Resource made over ssh would reach
// it: a name is resolved and every address it resolves to must pass (the
// dialer may pick any of them). A name that does not resolve yet passes:
// the dial-time check still applies when it does.
func (g *Guard) CheckAddress(ctx context.Context, hostport string) error {
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("address %q: want host:port", hostport)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return fmt.Errorf("address %q: the port is not a number", hostport)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.CheckIP(ip, port, hostport)
	}
	lh := strings.ToLower(strings.TrimSuffix(host, "."))
	if lh == "localhost" || strings.HasSuffix(lh, ".localhost") {
		// RFC 6761: such names are loopback whatever DNS says; some
		// resolvers answer them without consulting any file.
		return g.CheckIP(netip.MustParseAddr("127.0.0.1"), port, hostport)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := g.resolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if err := g.CheckIP(ip, port, hostport); err != nil {
			var r *Refusal
			if errors.As(err, &r) {
				r.Reason = fmt.Sprintf("%s resolves to %s", host, r.Reason)
			}
			return err
		}
	}
	return nil
}

// control is the net.Dialer Control function: it sees the address really
// being connected to, after resolution, so nothing resolved between the
// check and the connect can slip past it.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &Refusal{Address: address, Reason: "not an IP address and port"}
	}
	return g.CheckIP(ap.Addr(), int(ap.Port()), ap.String())
}

// DialContext dials address, refusing what CheckIP refuses at connect time.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d := net.Dialer{Control: g.control}
	return d.DialContext(ctx, network, address)
}

// DialResource dials address on behalf of r: unchecked for a Resource from
// the config (the operator wrote it), guarded for every other one. A nil
// Guard dials unchecked.
func (g *Guard) DialResource(ctx context.Context, r store.Resource, network, address string) (net.Conn, error) {
	if g == nil || r.FromConfig() {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	return g.DialContext(ctx, network, address)
}
