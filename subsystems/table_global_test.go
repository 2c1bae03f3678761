package subsystems

import (
	"context"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// Global handlers: the core keeps default and its silent probes, and a
// type is registered once.
func TestTableGlobal(t *testing.T) {
	tb := NewTable()
	h := func(context.Context, *gossh.ServerConn, *gossh.Request) GlobalReply { return GlobalReply{} }
	for _, typ := range []string{"", "default", "keepalive@openssh.com"} {
		if tb.Global(typ, h) == nil {
			t.Errorf("Global(%q) accepted", typ)
		}
	}
	if err := tb.Global("tcpip-forward", h); err != nil {
		t.Fatal(err)
	}
	if tb.Global("tcpip-forward", h) == nil {
		t.Error("tcpip-forward registered twice")
	}
}
