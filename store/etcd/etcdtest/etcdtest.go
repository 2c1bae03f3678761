package etcdtest

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// Proc is a single etcd member on loopback, with its own data dir, that a
// test can kill and start again on the same ports and data: a Cluster of
// one (ClientURL, Start, Kill and Output are its Member's).
type Proc struct {
	*Member
}

// Start starts a single-member etcd and waits until it is healthy. It is
// killed when the test ends, and its output is logged if the test failed.
func Start(t testing.TB) *Proc {
	t.Helper()
	return &Proc{StartCluster(t, 1).Members[0]}
}
