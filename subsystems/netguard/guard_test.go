package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/store"
)

func newGuard(t *testing.T, allow ...string) *Guard {
	t.Helper()
	g, err := New(Config{AllowCIDRs: allow, InterfaceAddrs: func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.CIDRMask(24, 32)}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.AddListener("ssh", "[::]:2222"); err != nil {
		t.Fatal(err)
	}
	if err := g.AddListener("metrics", "127.0.0.1:9222"); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestRefusedByDefault is the side of a project admin who names a place
// behind the bastion: each is refused, with why and how to get it allowed.
func TestRefusedByDefault(t *testing.T) {
	g := newGuard(t)
	for addr, want := range map[string]string{
		"127.0.0.1:5432":          "loopback",
		"127.8.9.10:80":           "loopback",
		"[::1]:22":                "loopback",
		"[::ffff:127.0.0.1]:1":    "loopback",
		"0.0.0.0:22":              "unspecified",
		"0.1.2.3:22":              "unspecified",
		"[::]:22":                 "unspecified",
		"169.254.1.1:80":          "link-local",
		"[fe80::1]:80":            "link-local",
		"169.254.169.254:80":      "metadata",
		"[fd00:ec2::254]:80":      "metadata",
		"[64:ff9b::a9fe:a9fe]:80": "metadata",
		"100.100.100.200:80":      "metadata",
		"224.0.0.1:80":            "unicast",
		"10.1.2.3:2222":           "bastion's own ssh",
		"127.0.0.1:9222":          "bastion's own metrics",
		"localhost:22":            "loopback",
		"db.localhost:5432":       "loopback",
	} {
		err := g.CheckAddress(context.Background(), addr)
		var r *Refusal
		if !errors.As(err, &r) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckAddress(%s) = %v, want a refusal naming %q", addr, err, want)
		}
	}
	for _, addr := range []string{"10.0.0.5:22", "192.0.2.1:443", "[2001:db8::1]:22", "10.1.2.3:22", "100.64.0.1:80"} {
		if err := g.CheckAddress(context.Background(), addr); err != nil {
			t.Errorf("CheckAddress(%s) = %v, want allowed", addr, err)
		}
	}
	err := g.CheckAddress(context.Background(), "127.0.0.1:5432")
	if !strings.Contains(err.Error(), AllowKey+": [127.0.0.0/8]") {
		t.Errorf("the refusal does not say how to allow it: %v", err)
	}
}

// TestAllowCIDRsNeverOpenTheBastion: an allowed range re-opens loopback,
// but never the bastion's own listeners, and a wide range never re-opens
// metadata.
func TestAllowCIDRsNeverOpenTheBastion(t *testing.T) {
	g := newGuard(t, "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/0")
	for _, addr := range []string{"127.0.0.1:5432", "169.254.1.1:80"} {
		if err := g.CheckAddress(context.Background(), addr); err != nil {
			t.Errorf("%s: %v, want allowed", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:9222", "127.0.0.2:2222", "10.1.2.3:2222", "169.254.169.254:80"} {
		if err := g.CheckAddress(context.Background(), addr); err == nil {
			t.Errorf("%s allowed, want refused", addr)
		}
	}
	g = newGuard(t, "169.254.169.254/32")
	if err := g.CheckAddress(context.Background(), "169.254.169.254:80"); err != nil {
		t.Errorf("exactly allowed metadata refused: %v", err)
	}
	if _, err := New(Config{AllowCIDRs: []string{"127.0.0.1"}}); err == nil || !strings.Contains(err.Error(), AllowKey) {
		t.Errorf("a bad CIDR: %v", err)
	}
}

// TestDialIsGuarded: the dial-time check sees the address connected to,
// so a Resource made over ssh cannot reach a listener the bastion owns
// even if its name resolved elsewhere when it was added; a config
// Resource is dialled as written.
func TestDialIsGuarded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	g := newGuard(t, "127.0.0.0/8")
	addr := ln.Addr().String()
	ssh := store.Resource{Name: "x", Origin: store.OriginSSH}
	c, err := g.DialResource(context.Background(), ssh, "tcp", addr)
	if err != nil {
		t.Fatalf("allowed loopback refused: %v", err)
	}
	c.Close()
	if err := g.AddListener("metrics", addr); err != nil {
		t.Fatal(err)
	}
	_, err = g.DialResource(context.Background(), ssh, "tcp", "localhost:"+strings.Split(addr, ":")[1])
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(err.Error(), "bastion's own metrics") {
		t.Fatalf("dial to the bastion's own port: %v", err)
	}
	c, err = g.DialResource(context.Background(), store.Resource{Origin: store.OriginConfig}, "tcp", addr)
	if err != nil {
		t.Fatalf("a config Resource is trusted: %v", err)
	}
	c.Close()
	if err := g.CheckIP(netip.MustParseAddr("127.0.0.1"), 70000, "x"); err != nil {
		t.Fatalf("an impossible port: %v", err)
	}
}
