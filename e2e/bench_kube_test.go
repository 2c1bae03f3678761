package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sshbastion/bastion/e2e/harness"
)

// kubeBenchEnv is kubeSetup for a benchmark: a real apiserver; prod is a
// kube Resource whose credentials are the impersonator's kubeconfig; bob
// may act on prod, and a Role lets him get configmaps in dev, where cm-1
// lives. It returns the bastion, the apiserver and a kubeconfig for bob
// through a running `ssh -N -L PORT:prod:443`.
func kubeBenchEnv(b *testing.B) (*harness.Bastion, *harness.Kube, string) {
	b.Helper()
	k := harness.StartKube(b)
	dir := b.TempDir()
	alice := harness.NewKey(b, dir, "alice")
	bob := harness.NewKey(b, dir, "bob")
	bastion := harness.Start(b, harness.Options{Admin: "alice", AdminKeys: []harness.Key{alice}, LogLevel: "info", Env: benchEnv(),
		Config: kubeCredentialsYAML(k)})
	b.Logf("bastion metrics (and /debug/pprof) at %s", bastion.Metrics)
	ok := func(r harness.Result, what string) {
		b.Helper()
		if r.Code != 0 {
			b.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.Code, r.Stdout, r.Stderr)
		}
	}
	ok(bastion.SSH(alice, "users", "add", "bob"), "users add bob")
	ok(bastion.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: bob.Public}), "keys add bob")
	ok(bastion.SSH(alice, "resources", "add", "prod", "--kind", "kube", "--address", k.URL,
		"--credentials", "prod", "--kube-group", "act=bastion:prod-users"), "resources add prod")
	ok(bastion.SSH(alice, "tuples", "add", "resource:prod#act@user:bob"), "grant bob")
	for _, args := range [][]string{
		{"create", "namespace", "dev"},
		{"-n", "dev", "create", "configmap", "cm-1", "--from-literal=a=b"},
		{"-n", "dev", "create", "role", "reader", "--verb=get", "--resource=configmaps"},
		{"-n", "dev", "create", "rolebinding", "bob-reader", "--role=reader", "--user=bob"},
	} {
		if out, err := k.Kubectl(b, k.AdminKubeconfig, args...); err != nil {
			b.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
	}
	f := bastion.StartForward(bob, "prod:443")
	port := f.Local[strings.LastIndexByte(f.Local, ':')+1:]
	r := bastion.SSH(bob, "kubeconfig", "prod", "--port", port)
	ok(r, "kubeconfig")
	kc := filepath.Join(b.TempDir(), "kc")
	if err := os.WriteFile(kc, []byte(r.Stdout), 0o600); err != nil {
		b.Fatal(err)
	}
	return bastion, k, kc
}

// benchClient is a client-go clientset for kubeconfig, without client-side
// rate limiting (client-go's default, 5 QPS, would measure itself).
func benchClient(b *testing.B, kubeconfig string) *kubernetes.Clientset {
	b.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatalf("kubeconfig %s: %v", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

// getCM gets configmap dev/cm-1 and checks that it is that object.
func getCM(cs *kubernetes.Clientset) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	cm, err := cs.CoreV1().ConfigMaps("dev").Get(ctx, "cm-1", metav1.GetOptions{})
	el := time.Since(start)
	if err != nil {
		return el, err
	}
	if cm.Namespace != "dev" || cm.Name != "cm-1" || cm.Data["a"] != "b" {
		return el, fmt.Errorf("got %s/%s with data %v, want dev/cm-1 with a=b", cm.Namespace, cm.Name, cm.Data)
	}
	return el, nil
}

// pct is the nearest-rank percentile p (0-100) of sorted, in ms.
func pct(sorted []time.Duration, p float64) float64 {
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

// BenchmarkKubeProxyLatency (P6): the latency of one GET of a configmap
// through `ssh -L` and the bastion's kube proxy (TLS at the bastion, token
// check, impersonation, audit) against the same GET straight to the
// apiserver, with the same client-go code, in interleaved rounds so that
// machine noise hits both alike. Run it with -benchtime=1x.
func BenchmarkKubeProxyLatency(b *testing.B) {
	_, k, kc := kubeBenchEnv(b)
	viaBastion := benchClient(b, kc)
	direct := benchClient(b, k.AdminKubeconfig)

	// RBAC sees the new RoleBinding through an informer, and the first
	// request through the tunnel sets up the proxy: wait (bounded) until
	// bob's GET succeeds.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := getCM(viaBastion)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("GET dev/cm-1 through the bastion still fails after 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	const warm, n, round = 50, 2000, 100
	measure := func(cs *kubernetes.Clientset, what string, count int, into *[]time.Duration) {
		for i := 0; i < count; i++ {
			d, err := getCM(cs)
			if err != nil {
				b.Fatalf("GET dev/cm-1 %s: %v", what, err)
			}
			if into != nil {
				*into = append(*into, d)
			}
		}
	}
	for it := 0; it < b.N; it++ {
		measure(direct, "direct", warm, nil)
		measure(viaBastion, "via the bastion", warm, nil)
		dl := make([]time.Duration, 0, n)
		bl := make([]time.Duration, 0, n)
		for r := 0; r < n/round; r++ {
			// Alternate which path goes first in each round.
			if r%2 == 0 {
				measure(direct, "direct", round, &dl)
				measure(viaBastion, "via the bastion", round, &bl)
			} else {
				measure(viaBastion, "via the bastion", round, &bl)
				measure(direct, "direct", round, &dl)
			}
		}
		sort.Slice(dl, func(i, j int) bool { return dl[i] < dl[j] })
		sort.Slice(bl, func(i, j int) bool { return bl[i] < bl[j] })
		d50, d99, b50, b99 := pct(dl, 50), pct(dl, 99), pct(bl, 50), pct(bl, 99)
		b.Logf("%d GETs per path: direct p50 %.3f p99 %.3f max %.3f ms; bastion p50 %.3f p99 %.3f max %.3f ms",
			n, d50, d99, pct(dl, 100), b50, b99, pct(bl, 100))
		b.ReportMetric(d50, "direct_p50_ms")
		b.ReportMetric(d99, "direct_p99_ms")
		b.ReportMetric(b50, "bastion_p50_ms")
		b.ReportMetric(b99, "bastion_p99_ms")
		b.ReportMetric(b50-d50, "added_p50_ms")
		b.ReportMetric(b99-d99, "added_p99_ms")
	}
}
