package e2e

import (
	"strings"
	"testing"

	"github.com/sshbastion/bastion/e2e/harness"
)

// The test cluster runs real pods: exec, logs and port-forward work
// straight against the apiserver (as the admin), before any bastion.
func TestKubeNodeRunsPods(t *testing.T) {
	n := harness.SharedKubeNode(t)
	ns := n.Namespace(t, "node")
	n.RunPod(t, ns, "web", nil, "ports: [{containerPort: 8080}]", "sh", "-c", "echo started-web; exec httpd -f -v -p 8080 -h /www")
	out, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "exec", "web", "--", "sh", "-c", "echo exec-ok; cat /www/index.html")
	if err != nil || !harness.Contains(out, "exec-ok", "hello-from-pod") {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	out, err = n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "logs", "web")
	if err != nil || !strings.Contains(out, "started-web") {
		t.Fatalf("logs: %v\n%s", err, out)
	}
}
