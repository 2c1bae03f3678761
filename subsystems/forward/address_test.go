package forward

import (
	"net"
	"strconv"
	"testing"

	"github.com/sshbastion/bastion/store"
)

func TestDialAddress(t *testing.T) {
	cases := []struct {
		r    store.Resource
		port int
		want string
		ok   bool
	}{
		{store.Resource{Kind: "ssh", Address: "10.0.0.5:2201"}, 22, "10.0.0.5:2201", true},
		{store.Resource{Kind: "ssh", Address: "10.0.0.5:2201"}, 2201, "", false},
		{store.Resource{Kind: "tcp", Address: "127.0.0.1:40000", Ports: []int{7}}, 7, "127.0.0.1:40000", true},
		{store.Resource{Kind: "tcp", Address: "db:5432", Ports: []int{5432, 5433}}, 5433, "db:5433", true},
		{store.Resource{Kind: "tcp", Address: "db:5432", Ports: []int{5432}}, 22, "", false},
		{store.Resource{Kind: "tcp", Address: "db:5432"}, 5432, "db:5432", true},
		{store.Resource{Kind: "tcp", Address: "[::1]:80", Ports: []int{80, 443}}, 443, "[::1]:443", true},
	}
	for _, c := range cases {
		got, ok := dialAddress(c.r, c.port)
		if got != c.want || ok != c.ok {
			t.Errorf("dialAddress(%+v, %d) = %q, %v; want %q, %v", c.r, c.port, got, ok, c.want, c.ok)
		}
	}
}

// FuzzDialAddress: whatever the Resource's address and the requested
// port, the result is either refused or an address on the Resource's own
// host with an allowed port: a forward can never be steered elsewhere.
func FuzzDialAddress(f *testing.F) {
	f.Add("10.0.0.5:22", "ssh", 22, 22)
	f.Add("db:5432", "tcp", 5432, 5433)
	f.Add("[::1]:80", "tcp", 80, 443)
	f.Add("host", "tcp", 0, 1)
	f.Fuzz(func(t *testing.T, addr, kind string, allowed, port int) {
		r := store.Resource{Kind: kind, Address: addr}
		if allowed != 0 {
			r.Ports = []int{allowed, allowed + 1}
		}
		got, ok := dialAddress(r, port)
		if !ok {
			return
		}
		if got == addr {
			return
		}
		host, p, err := net.SplitHostPort(got)
		if err != nil {
			t.Fatalf("dialAddress returned unparsable %q", got)
		}
		wantHost, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("dialAddress(%q, %d) = %q from an unparsable address", addr, port, got)
		}
		if host != wantHost {
			t.Fatalf("dialAddress(%q, %d) = %q: another host", addr, port, got)
		}
		if p != itoa(port) || (port != allowed && port != allowed+1) {
			t.Fatalf("dialAddress(%q, %d) = %q with a port not allowed", addr, port, got)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
