package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// KubeVersion is the kube-apiserver version scripts/install-kube.sh builds.
const KubeVersion = "v1.34.4"

// KubeImpersonatorUser is the user of ImpersonatorKubeconfig: the identity
// the bastion presents to the apiserver before impersonating its users.
const KubeImpersonatorUser = "bastion-proxy"

// KubeImpersonatorRBAC is the manifest, relative to the module root, that
// grants KubeImpersonatorUser the right to impersonate; StartKube applies it.
const KubeImpersonatorRBAC = "examples/kube/impersonator-rbac.yaml"

// KubeAPIServerPath is where scripts/install-kube.sh caches kube-apiserver:
// ${BASTION_CACHE:-$HOME/.cache/bastion}/kube/<KubeVersion>/kube-apiserver.
func KubeAPIServerPath() string {
	cache := os.Getenv("BASTION_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "bastion")
	}
	return filepath.Join(cache, "kube", KubeVersion, "kube-apiserver")
}

// Kube is a real kube-apiserver backed by its own etcd, on loopback ports,
// with RBAC authorization and client-certificate authentication. There is
// no controller-manager: aggregated ClusterRoles such as `view` stay empty,
// service accounts get no tokens, and pods are never scheduled.
type Kube struct {
	// URL is the apiserver's https://127.0.0.1:PORT.
	URL string
	// CAFile is the PEM of the CA that signed the serving and client certs.
	CAFile string
	// AdminKubeconfig authenticates as user kube-admin in system:masters.
	AdminKubeconfig string
	// ImpersonatorKubeconfig authenticates as KubeImpersonatorUser, who may
	// impersonate users, groups, service accounts, uids and user extras.
	ImpersonatorKubeconfig string
	// Dir holds the certificates, keys, kubeconfigs and etcd's data.
	Dir string

	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	etcd   *kubeProc
	server *kubeProc

	// For a cluster with a kubelet (kubelet.go): every peer runs through
	// enter (nsenter into the node's namespaces), dial reaches its
	// loopback ports, and apiserverArgs are added to kube-apiserver's.
	enter         []string
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	apiserverArgs []string
	procs         []*kubeProc
}

// kubeProc is one peer process with its output.
type kubeProc struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// StartKube starts etcd and kube-apiserver (built by scripts/install-kube.sh,
// which `make test` runs), waits for /readyz, and applies the impersonator
// RBAC. Both processes stop when the test ends. On 2 cores /readyz answers
// about 3.5 s after the start and the RBAC is in force 0.2 s later, so each
// test that needs an apiserver starts its own.
func StartKube(t testing.TB) *Kube {
	t.Helper()
	checkKubePeers(t)
	k := &Kube{Dir: t.TempDir()}
	k.URL = "https://127.0.0.1:" + freePort(t)
	k.writePKI(t)
	k.start(t)
	return k
}

// checkKubePeers fails t when etcd, kube-apiserver or kubectl is missing.
func checkKubePeers(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(KubeAPIServerPath()); err != nil {
		t.Fatalf("kube-apiserver %s is not built (%v): run `make test` or `bash scripts/install-kube.sh`", KubeVersion, err)
	}
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatalf("etcd is not installed (%v): run `make test` or `bash scripts/install-kube.sh`", err)
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl is not installed (%v): scripts/install-kube.sh says what is needed", err)
	}
}

// start runs etcd and kube-apiserver for k (whose URL and PKI are set),
// waits for /readyz and applies the impersonator RBAC.
func (k *Kube) start(t testing.TB) {
	t.Helper()
	apiserver := KubeAPIServerPath()
	etcdBin, _ := exec.LookPath("etcd")
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	start := time.Now()
	port := k.URL[strings.LastIndexByte(k.URL, ':')+1:]

	// etcd, with its own data dir and loopback ports.
	clientURL := "http://127.0.0.1:" + freePort(t)
	peerURL := "http://127.0.0.1:" + freePort(t)
	k.etcd = k.startProc(t, "etcd", etcdBin,
		"--name=default", "--data-dir="+filepath.Join(k.Dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--initial-cluster-state=new",
		"--logger=zap", "--log-level=warn")
	k.waitHTTP(t, k.etcd, clientURL+"/health", nil, `"health":"true"`, 30*time.Second)

	// kube-apiserver.
	f := func(name string) string { return filepath.Join(k.Dir, name) }
	k.server = k.startProc(t, "kube-apiserver", apiserver, append([]string{
		"--etcd-servers=" + clientURL,
		"--bind-address=127.0.0.1", "--secure-port=" + port, "--advertise-address=127.0.0.1",
		"--cert-dir=" + f("apiserver-certs"),
		"--tls-cert-file=" + f("apiserver.crt"), "--tls-private-key-file=" + f("apiserver.key"),
		"--client-ca-file=" + k.CAFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + f("sa.pub"),
		"--service-account-signing-key-file=" + f("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		// 127.0.0.1 is no valid endpoint of the `kubernetes` Service.
		"--endpoint-reconciler-type=none",
		"--profiling=false", "--v=0"}, k.apiserverArgs...)...)
	k.waitHTTP(t, k.server, k.URL+"/readyz", k.httpClient(t, "admin"), "ok", 60*time.Second)
	ready := time.Since(start)

	manifest := filepath.Join(root, KubeImpersonatorRBAC)
	if out, err := k.Kubectl(t, k.AdminKubeconfig, "apply", "-f", manifest); err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", manifest, err, out)
	}
	// RBAC reads bindings through an informer: wait until it sees this one.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := k.Kubectl(t, k.ImpersonatorKubeconfig, "auth", "can-i", "impersonate", "users")
		if strings.TrimSpace(out) == "yes" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s may still not impersonate after applying %s: %s", KubeImpersonatorUser, manifest, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("kube-apiserver %s at %s: ready in %s, RBAC applied in %s", KubeVersion, k.URL,
		ready.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// Kubectl runs kubectl against kubeconfig (which may point elsewhere than
// this apiserver, e.g. at a bastion forward) and returns its combined output.
// It is given one minute.
func (k *Kube) Kubectl(t testing.TB, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append([]string{"--kubeconfig=" + kubeconfig, "--cache-dir=" + filepath.Join(k.Dir, "kubectl-cache")}, args...)
	cmd := exec.CommandContext(ctx, "kubectl", argv...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// UserKubeconfig writes a kubeconfig for this apiserver that authenticates
// with a fresh client certificate for user in groups, and returns its path.
func (k *Kube) UserKubeconfig(t testing.TB, user string, groups ...string) string {
	t.Helper()
	name := "user-" + strings.NewReplacer("/", "_", ":", "_").Replace(user)
	cert, key := k.issue(t, pkix.Name{CommonName: user, Organization: groups}, false)
	return k.writeKubeconfig(t, name, user, cert, key)
}

// Logs returns what etcd and kube-apiserver (and, with a kubelet,
// containerd and the kubelet) printed so far.
func (k *Kube) Logs() string {
	var b strings.Builder
	for _, p := range k.procs {
		if p != nil {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", p.name, p.logs.String())
		}
	}
	return b.String()
}

// httpClient trusts the CA and presents the named client cert from Dir.
func (k *Kube) httpClient(t testing.TB, name string) *http.Client {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(k.Dir, name+".crt"), filepath.Join(k.Dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(k.ca)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
		DialContext:     k.dial,
	}}
}

// waitHTTP polls url until its body contains want, failing with p's output
// when p exits or limit passes.
func (k *Kube) waitHTTP(t testing.TB, p *kubeProc, url string, c *http.Client, want string, limit time.Duration) {
	t.Helper()
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: k.dial}}
	}
	deadline := time.Now().Add(limit)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), want) {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited during start:\n%s", p.name, k.Logs())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s not ready within %s (%s: %s):\n%s", p.name, limit, url, last, k.Logs())
}

// startProc starts a peer that is stopped (SIGTERM, then SIGKILL after
// 10 s) when the test ends, and killed if the test process dies first.
// With k.enter it runs in the node's namespaces (nsenter execs the peer,
// so the signals reach it).
func (k *Kube) startProc(t testing.TB, name, bin string, args ...string) *kubeProc {
	t.Helper()
	p := &kubeProc{name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	if len(k.enter) > 0 {
		args = append(append(append([]string{}, k.enter[1:]...), bin), args...)
		bin = k.enter[0]
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	k.procs = append(k.procs, p)
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (k *Kube) writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(k.Dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// StopAPIServer kills kube-apiserver (etcd keeps running), for tests of an
// apiserver that went away.
func (k *Kube) StopAPIServer() {
	_ = k.server.cmd.Process.Kill()
	<-k.server.done
}
