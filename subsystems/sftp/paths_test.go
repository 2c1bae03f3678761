package sftp

import (
	"path"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	for _, c := range []struct{ in, res, host string }{
		{"/", "", "/"},
		{"", "", "/"},
		{".", "", "/"},
		{"/host-1", "host-1", "/"},
		{"host-1/etc/hostname", "host-1", "/etc/hostname"},
		{"/host-1/../host-2/x", "host-2", "/x"},
		{"/host-1/tmp/../../../etc/passwd", "etc", "/passwd"},
		{"/../../host-1//tmp/./f", "host-1", "/tmp/f"},
		{"/host-1/a/..", "host-1", "/"},
	} {
		res, host := resolve(c.in)
		if res != c.res || host != c.host {
			t.Errorf("resolve(%q) = %q, %q; want %q, %q", c.in, res, host, c.res, c.host)
		}
	}
}

func TestVirtual(t *testing.T) {
	for _, c := range []struct{ res, host, want string }{
		{"host-1", "/", "/host-1"},
		{"host-1", "/etc/../etc/x", "/host-1/etc/x"},
		{"host-1", "../x", "../x"},
		{"host-1", "/../../host-2/x", "/host-1/host-2/x"},
	} {
		if got := virtual(c.res, c.host); got != c.want {
			t.Errorf("virtual(%q, %q) = %q; want %q", c.res, c.host, got, c.want)
		}
	}
}

// FuzzResolve checks the invariants the gate relies on: the host path is
// absolute and clean (no `..` left), the Resource is one path element, and
// the split loses nothing of the cleaned path.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/", "..", "/host-1/../../x", "host-1/./a//b", "/a/b/../../..", "\x00/..", "/host-1/..\\..", "/h/%2e%2e/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		res, host := resolve(p)
		if !strings.HasPrefix(host, "/") || path.Clean(host) != host {
			t.Fatalf("host path %q of %q is not absolute and clean", host, p)
		}
		for _, el := range strings.Split(host, "/") {
			if el == ".." {
				t.Fatalf("host path %q of %q climbs", host, p)
			}
		}
		if strings.Contains(res, "/") || res == "." || res == ".." {
			t.Fatalf("resource %q of %q is not one name", res, p)
		}
		clean := path.Clean("/" + p)
		if res == "" {
			if clean != "/" {
				t.Fatalf("%q lost its resource", p)
			}
			return
		}
		if got := path.Join("/", res, host); got != clean {
			t.Fatalf("resolve(%q) = %q + %q, which joins to %q, not %q", p, res, host, got, clean)
		}
		// Back and forth: a host path maps back under the same Resource.
		if v := virtual(res, host); v != clean {
			t.Fatalf("virtual(resolve(%q)) = %q, want %q", p, v, clean)
		}
		if r2, h2 := resolve(virtual(res, host)); r2 != res || h2 != host {
			t.Fatalf("round trip of %q moved to %q %q", p, r2, h2)
		}
	})
}

func TestSCPExampleUsesCapitalP(t *testing.T) {
	for host, want := range map[string]string{
		"ssh -p 2222 localhost": "scp -P 2222 FILE localhost:host-1/tmp/",
		"ssh bastion.example":   "scp FILE bastion.example:host-1/tmp/",
	} {
		if got := scpExample(host); got != want {
			t.Errorf("scpExample(%q) = %q, want %q", host, got, want)
		}
	}
}
