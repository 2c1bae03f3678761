package hostshell

import (
	"context"
	"testing"

	"github.com/sshbastion/bastion/authn"
)

// The onward certificate permits agent forwarding only for a session
// whose forward_agent was checked (withAgent), never otherwise.
func TestOnwardCertificateAgentPermission(t *testing.T) {
	p := authn.Principal{User: "bob", Method: authn.MethodPublicKey}
	plain := withAgentPermission(withRemote(context.Background(), ""), onwardPermissions(p, ""))
	if _, ok := plain.Extensions[authn.ExtAgentForwarding]; ok {
		t.Fatalf("agent forwarding permitted without forward_agent: %v", plain.Extensions)
	}
	asked := withAgentPermission(withAgentAsked(context.Background()), onwardPermissions(p, ""))
	if _, ok := asked.Extensions[authn.ExtAgentForwarding]; ok {
		t.Fatalf("agent forwarding permitted for -A before the gate: %v", asked.Extensions)
	}
	granted := withAgentPermission(withAgent(context.Background()), onwardPermissions(p, ""))
	if _, ok := granted.Extensions[authn.ExtAgentForwarding]; !ok {
		t.Fatalf("agent forwarding not permitted after forward_agent: %v", granted.Extensions)
	}
	if _, ok := granted.Extensions[authn.ExtPTY]; !ok {
		t.Fatalf("the other permissions were lost: %v", granted.Extensions)
	}
}
