package e2e

import (
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// TestKubePeerStarts checks the real kube-apiserver peer itself: the admin
// kubeconfig can write, and the bastion's impersonator identity can act as
// another user and group through the RBAC in examples/kube.
func TestKubePeerStarts(t *testing.T) {
	k := harness.StartKube(t)
	kubectl := func(kubeconfig string, args ...string) string {
		t.Helper()
		out, err := k.Kubectl(t, kubeconfig, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	kubectl(k.AdminKubeconfig, "create", "namespace", "dev")
	kubectl(k.AdminKubeconfig, "-n", "dev", "create", "configmap", "greeting", "--from-literal=hello=world")
	if got := kubectl(k.AdminKubeconfig, "-n", "dev", "get", "configmap", "greeting", "-o", "jsonpath={.data.hello}"); got != "world" {
		t.Fatalf("configmap data = %q, want world", got)
	}

	who := kubectl(k.ImpersonatorKubeconfig, "--as", "alice", "--as-group", "devs", "auth", "whoami")
	if !strings.Contains(who, "alice") || !strings.Contains(who, "devs") {
		t.Fatalf("auth whoami as alice lacks alice or devs:\n%s", who)
	}
	if strings.Contains(who, harness.KubeImpersonatorUser) {
		t.Fatalf("auth whoami as alice still shows %s:\n%s", harness.KubeImpersonatorUser, who)
	}
	// alice has no RBAC of her own: impersonation must not lend her the
	// impersonator's rights, nor the admin's.
	if out, err := k.Kubectl(t, k.ImpersonatorKubeconfig, "--as", "alice", "-n", "dev", "get", "configmaps"); err == nil || !strings.Contains(out, "forbidden") {
		t.Fatalf("alice read configmaps without RBAC (err %v):\n%s", err, out)
	}
	// Without impersonation the impersonator reads nothing either.
	if out, err := k.Kubectl(t, k.ImpersonatorKubeconfig, "-n", "dev", "get", "configmaps"); err == nil || !strings.Contains(out, "forbidden") {
		t.Fatalf("%s read configmaps without RBAC (err %v):\n%s", harness.KubeImpersonatorUser, err, out)
	}
	// A user outside the binding may not impersonate.
	eve := k.UserKubeconfig(t, "eve", "devs")
	if out, err := k.Kubectl(t, eve, "--as", "alice", "-n", "dev", "get", "configmaps"); err == nil || !strings.Contains(out, "cannot impersonate") {
		t.Fatalf("eve impersonated alice (err %v):\n%s", err, out)
	}
}
