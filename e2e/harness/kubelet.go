package harness

import (
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// KubeNodeName is the test cluster's only node.
const KubeNodeName = "bastion-e2e-node"

// KubeletPath is where scripts/install-kube.sh caches the kubelet, beside
// kube-apiserver.
func KubeletPath() string { return filepath.Join(filepath.Dir(KubeAPIServerPath()), "kubelet") }

// KubeNode is a real single-node cluster: etcd, kube-apiserver, Debian's
// containerd (with runc and the CNI bridge plugin) and a kubelet built by
// scripts/install-kube.sh, all in a network and mount namespace of their
// own (see nodeNet). Pods get 10.88.0.x addresses that exist only there;
// the apiserver is reachable from the host at Kube.URL through a relay, so
// kubeconfigs, kubectl and the bastion work as with StartKube. There is no
// controller-manager or scheduler: Namespace makes the default service
// account, and RunPod's manifests name the node and use local images.
type KubeNode struct {
	*Kube
	// Started is how long the first start took (the cold start); every
	// later SharedKubeNode call reuses the node for free.
	Started time.Duration

	net    *nodeNet
	relay  interface{ Close() error }
	pods   atomic.Int64 // for unique namespace names
	setup  *setupTB
	failed string
}

var (
	nodeOnce sync.Once
	node     *KubeNode
)

// SharedKubeNode starts the test cluster once per test binary and returns
// it; StopKubeNode (TestMain) stops it and cleans up. Tests that share it
// keep to namespaces of their own (Namespace).
func SharedKubeNode(t testing.TB) *KubeNode {
	t.Helper()
	first := false
	nodeOnce.Do(func() {
		first = true
		node = startKubeNode(t)
	})
	if node.failed != "" {
		t.Fatalf("the test cluster did not start: %s", node.failed)
	}
	if first {
		t.Logf("kube node: cold start in %s (apiserver, containerd, images, kubelet, node Ready)", node.Started.Round(time.Millisecond))
	} else {
		t.Logf("kube node: warm start (reused; its cold start took %s)", node.Started.Round(time.Millisecond))
	}
	return node
}

// setupTB runs the shared start on behalf of its first test: its Fatal
// panics (recovered by startKubeNode) instead of ending that test's
// goroutine, and its cleanups wait for StopKubeNode, not the test's end.
type setupTB struct {
	testing.TB
	cleanups []func()
}

type setupFailure string

func (s *setupTB) Helper()                   {}
func (s *setupTB) Cleanup(f func())          { s.cleanups = append(s.cleanups, f) }
func (s *setupTB) Fatal(a ...any)            { panic(setupFailure(fmt.Sprint(a...))) }
func (s *setupTB) Fatalf(f string, a ...any) { panic(setupFailure(fmt.Sprintf(f, a...))) }

func startKubeNode(t testing.TB) (n *KubeNode) {
	st := &setupTB{TB: t}
	n = &KubeNode{setup: st}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(setupFailure)
			if !ok {
				panic(r)
			}
			n.failed = string(f)
			if n.Kube != nil {
				n.failed += "\n" + n.Kube.Logs()
			}
		}
	}()
	start := time.Now()
	checkKubePeers(st)
	for _, bin := range []string{KubeletPath(), "containerd", "ctr", "runc", "/usr/lib/cni/bridge", busyboxPath, "nsenter", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			st.Fatalf("%s is missing (%v): run `make test` or `bash scripts/install-kube.sh`", bin, err)
		}
	}
	dir, err := os.MkdirTemp("", "bastion-e2e-node-")
	if err != nil {
		st.Fatal(err)
	}
	st.Cleanup(func() { _ = os.RemoveAll(dir) })
	if n.net, err = startNodeNet(dir); err != nil {
		st.Fatal(err)
	}
	k := &Kube{Dir: dir, enter: n.net.enter(), dial: n.net.dial}
	n.Kube = k
	k.URL = "https://127.0.0.1:" + freePort(st)
	relay, err := n.net.relay(k.URL[len("https://"):])
	if err != nil {
		st.Fatal(err)
	}
	n.relay = relay
	k.writePKI(st)
	// The apiserver reaches the kubelet (exec, logs, port-forward) with a
	// client cert in system:masters; the kubelet authenticates to the
	// apiserver as a node.
	cert, key := k.issue(st, pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}}, false)
	k.writeFile(st, "apiserver-kubelet.crt", cert)
	k.writeFile(st, "apiserver-kubelet.key", key)
	cert, key = k.issue(st, pkix.Name{CommonName: "system:node:" + KubeNodeName, Organization: []string{"system:nodes"}}, false)
	kubeletKC := k.writeKubeconfig(st, "kubelet", "system:node:"+KubeNodeName, cert, key)
	k.apiserverArgs = []string{
		"--kubelet-client-certificate=" + filepath.Join(dir, "apiserver-kubelet.crt"),
		"--kubelet-client-key=" + filepath.Join(dir, "apiserver-kubelet.key"),
		"--kubelet-preferred-address-types=InternalIP",
	}
	k.start(st)
	apiserverReady := time.Since(start)

	// containerd, then the images.
	imagesDir := filepath.Join(dir, "img")
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		st.Fatal(err)
	}
	type built struct {
		pause, busybox string
		err            error
	}
	images := make(chan built, 1)
	go func() { p, b, err := buildImages(imagesDir); images <- built{p, b, err} }()
	sock := filepath.Join(dir, "containerd.sock")
	writeNodeFile(st, dir, "containerd.toml", containerdConfig(dir, sock))
	writeNodeFile(st, dir, "cni/net.d/10-bastion-e2e.conflist", cniConfig)
	containerd := k.startProc(st, "containerd", "containerd", "--config", filepath.Join(dir, "containerd.toml"))
	ctr := func(args ...string) (string, error) {
		argv := append(append(append([]string{}, k.enter[1:]...), "ctr", "-a", sock, "-n", "k8s.io"), args...)
		out, err := exec.Command(k.enter[0], argv...).CombinedOutput()
		return string(out), err
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := ctr("version"); err == nil {
			break
		}
		select {
		case <-containerd.done:
			st.Fatalf("containerd exited during start")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			st.Fatalf("containerd not ready within 30 s")
		}
	}
	containerdReady := time.Since(start)
	img := <-images
	if img.err != nil {
		st.Fatal(img.err)
	}
	for _, tarball := range []string{img.pause, img.busybox} {
		if out, err := ctr("images", "import", tarball); err != nil {
			st.Fatalf("ctr images import %s: %v\n%s", tarball, err, out)
		}
	}
	imported := time.Since(start)

	// The apiserver runs with RBAC only (no Node authorizer): the nodes
	// group gets the system:node role.
	if out, err := k.Kubectl(st, k.AdminKubeconfig, "create", "clusterrolebinding", "bastion-e2e-nodes",
		"--clusterrole=system:node", "--group=system:nodes"); err != nil {
		st.Fatalf("bind system:node: %v\n%s", err, out)
	}
	writeNodeFile(st, dir, "kubelet.yaml", kubeletConfig(dir, sock, n.net.cg))
	kubelet := k.startProc(st, "kubelet", KubeletPath(), "--config="+filepath.Join(dir, "kubelet.yaml"),
		"--kubeconfig="+kubeletKC, "--root-dir="+filepath.Join(dir, "kubelet"), "--node-ip="+nodeIP,
		"--hostname-override="+KubeNodeName, "--v=1")
	for deadline := time.Now().Add(90 * time.Second); ; {
		out, _ := k.Kubectl(st, k.AdminKubeconfig, "get", "node", KubeNodeName,
			"-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if strings.TrimSpace(out) == "True" {
			break
		}
		select {
		case <-kubelet.done:
			st.Fatalf("the kubelet exited during start")
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			st.Fatalf("node %s not Ready within 90 s: %s", KubeNodeName, out)
		}
	}
	n.Started = time.Since(start)
	t.Logf("kube node: apiserver ready at %s, containerd at %s, images imported at %s, node Ready at %s",
		apiserverReady.Round(time.Millisecond), containerdReady.Round(time.Millisecond),
		imported.Round(time.Millisecond), n.Started.Round(time.Millisecond))
	return n
}

// StopKubeNode stops the shared test cluster, if one was started, and
// cleans up after it: processes, containers, cgroups, mounts and network
// namespaces. TestMain calls it; it reports what it found left.
func StopKubeNode() {
	if node == nil {
		return
	}
	start := time.Now()
	if node.relay != nil {
		_ = node.relay.Close()
	}
	cs := node.setup.cleanups
	for i := len(cs) - 1; i >= 0; i-- {
		if i == 0 && node.net != nil {
			// The work dir goes last, once the holder cleaned up.
			last, err := node.net.stop()
			if err != nil {
				fmt.Fprintln(os.Stderr, "kube node:", err)
			} else {
				fmt.Fprintf(os.Stderr, "kube node: %s (cleanup took %s)\n", last, time.Since(start).Round(time.Millisecond))
			}
		}
		cs[i]()
	}
	node = nil
}

// Namespace makes a namespace of its own for t, with its default service
// account (no controller-manager makes it), and force-deletes its pods
// when t ends (no namespace controller would).
func (n *KubeNode) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := fmt.Sprintf("%s-%d", prefix, n.pods.Add(1))
	for _, args := range [][]string{{"create", "namespace", ns}, {"-n", ns, "create", "serviceaccount", "default"}} {
		if out, err := n.Kubectl(t, n.AdminKubeconfig, args...); err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		_, _ = n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "delete", "pods", "--all", "--force", "--grace-period=0", "--wait=false")
	})
	return ns
}

// RunPod creates the pod `name` in ns running cmd in BusyboxImage (on the
// node, with no service account token), with the given extra container
// fields (YAML, indented for the container: "ports: [...]") and labels,
// and waits until it is Ready.
func (n *KubeNode) RunPod(t testing.TB, ns, name string, labels map[string]string, extra string, cmd ...string) {
	t.Helper()
	start := time.Now()
	var lb strings.Builder
	for k, v := range labels {
		fmt.Fprintf(&lb, "    %s: %q\n", k, v)
	}
	q := make([]string, len(cmd))
	for i, c := range cmd {
		q[i] = fmt.Sprintf("%q", c)
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels:
    app: %s
%sspec:
  nodeName: %s
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    imagePullPolicy: Never
    command: [%s]
%s`, name, ns, name, lb.String(), KubeNodeName, BusyboxImage, strings.Join(q, ", "), indent(extra, "    "))
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := n.Kubectl(t, n.AdminKubeconfig, "apply", "-f", path); err != nil {
		t.Fatalf("create pod %s/%s: %v\n%s\n%s", ns, name, err, out, manifest)
	}
	if out, err := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=50s"); err != nil {
		desc, _ := n.Kubectl(t, n.AdminKubeconfig, "-n", ns, "describe", "pod", name)
		t.Fatalf("pod %s/%s not Ready: %v\n%s\n%s", ns, name, err, out, desc)
	}
	t.Logf("pod %s/%s Ready in %s", ns, name, time.Since(start).Round(time.Millisecond))
}

func indent(s, by string) string {
	if strings.TrimSpace(s) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func writeNodeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
