package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// series scrapes the bastion's /metrics into series -> value, keyed as
// the exposition writes them (labels sorted by name), e.g.
// bastion_forward_bytes_total{direction="client_to_target"}.
func series(t *testing.T, b *harness.Bastion) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + b.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// delta is how much each series grew from before to now.
func delta(before, now map[string]float64, key string) float64 { return now[key] - before[key] }

// waitSeries polls /metrics until cond holds, and returns the last scrape.
func waitSeries(t *testing.T, b *harness.Bastion, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	var m map[string]float64
	waitFor(t, 20*time.Second, what, func() bool {
		m = series(t, b)
		return cond(m)
	})
	return m
}

// One bastion in front of a real apiserver and a real sshd: an ssh -L
// forward, a kubectl request through the kube tunnel and an sftp put
// each move their series on /metrics by what they did.
func TestMetricsFollowForwardKubeAndSFTP(t *testing.T) {
	e := kubeSetup(t)
	b, alice, bob := e.b, e.alice, e.bob
	const (
		up        = `bastion_forward_bytes_total{direction="client_to_target"}`
		down      = `bastion_forward_bytes_total{direction="target_to_client"}`
		opened    = `bastion_forwards_total{result="opened"}`
		active    = `bastion_forwards_active`
		fwdOpen   = `bastion_sessions_open{kind="forward"}`
		fwdClosed = `bastion_sessions_closed_total{kind="forward",reason="client_closed"}`
		appended  = `bastion_audit_events_appended_total`
		commits   = `bastion_audit_commit_duration_seconds_count`
		allowed   = `bastion_policy_check_duration_seconds_count{result="allow"}`
	)

	// (a) an ssh -L forward to a TCP echo service, 256 KiB each way.
	echoResource(t, b, alice)
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob"), "grant echo-svc")
	before := series(t, b)
	f := b.StartForward(bob, "echo-svc:7")
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("metrics!"), 32<<10) // 256 KiB
	harness.Echo(t, c, payload)
	during := series(t, b)
	if during[active] != 1 || during[fwdOpen] != 1 {
		t.Errorf("while the forward is open: %s %v, %s %v; want 1 each", active, during[active], fwdOpen, during[fwdOpen])
	}
	c.Close()
	n := float64(len(payload))
	after := waitSeries(t, b, "the forward's end in /metrics", func(m map[string]float64) bool { return m[active] == 0 && delta(before, m, fwdClosed) >= 1 })
	// Only this forward ran: every byte is counted, once.
	if d := delta(before, after, up); d != n {
		t.Errorf("%s grew by %v, want %v", up, d, n)
	}
	if d := delta(before, after, down); d != n {
		t.Errorf("%s grew by %v, want %v", down, d, n)
	}
	if d := delta(before, after, opened); d != 1 {
		t.Errorf("%s grew by %v, want 1", opened, d)
	}
	if after[fwdOpen] != 0 {
		t.Errorf("%s = %v after the forward closed", fwdOpen, after[fwdOpen])
	}
	if d := delta(before, after, appended); d < 2 { // forward.open, forward.close
		t.Errorf("%s grew by %v, want at least 2", appended, d)
	}
	if delta(before, after, commits) < 1 || delta(before, after, allowed) < 1 {
		t.Errorf("audit commits grew by %v, allowed policy checks by %v", delta(before, after, commits), delta(before, after, allowed))
	}
	f.Stop()

	// (b) kubectl through the kube tunnel: list configmaps as bob.
	const (
		lists     = `bastion_kube_requests_total{code="200",verb="list"}`
		listTimed = `bastion_kube_request_duration_seconds_count{verb="list"}`
		kubeOpen  = `bastion_sessions_open{kind="kube"}`
		tunnels   = `bastion_kube_tunnels_active`
	)
	kc, _ := e.tunnel(t, bob, "prod")
	before = series(t, b)
	if out, err := e.k.Kubectl(t, kc, "-n", "dev", "get", "cm"); err != nil || !strings.Contains(out, "cm-1") {
		t.Fatalf("get cm in dev: %v\n%s", err, out)
	}
	after = waitSeries(t, b, "the kube request in /metrics", func(m map[string]float64) bool { return delta(before, m, lists) >= 1 })
	if d := delta(before, after, lists); d != 1 {
		t.Errorf("%s grew by %v, want 1 (one kubectl get)", lists, d)
	}
	if d := delta(before, after, listTimed); d != 1 {
		t.Errorf("%s grew by %v, want 1", listTimed, d)
	}
	if after[kubeOpen] != 1 {
		t.Errorf("%s = %v, want 1: the kubeconfig's session", kubeOpen, after[kubeOpen])
	}
	// kubectl's connections (one tunnel each) ended with it.
	waitSeries(t, b, "no kube tunnel left open", func(m map[string]float64) bool { return m[tunnels] == 0 })

	// (c) an sftp put of 1 MiB + 3 bytes to a host through the bastion.
	const (
		sftpUp    = `bastion_sftp_bytes_total{direction="client_to_target"}`
		writes    = `bastion_sftp_operations_total{op="write",result="ok"}`
		sftpEnded = `bastion_sessions_closed_total{kind="sftp",reason="client_closed"}`
	)
	ca := b.SSH(alice, "ca")
	mustOK(t, ca, "ca")
	sshd := harness.StartSSHD(t, harness.SSHDOptions{TrustedUserCAKeys: strings.TrimSpace(ca.Stdout)})
	mustOK(t, b.SSH(alice, "resources", "add", "host-1", "--kind", "ssh", "--address", sshd.Addr, "--login", "root"), "resources add host-1")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:host-1#act@user:bob"), "grant host-1")
	remote, local := t.TempDir(), filepath.Join(t.TempDir(), "up.bin")
	const size = 1<<20 + 3
	harness.WriteRandomFile(t, local, size)
	before = series(t, b)
	mustOK(t, sftpBatch(t, b, bob, fmt.Sprintf("put %s /host-1%s/up.bin\n", local, remote)), "sftp put")
	after = waitSeries(t, b, "the sftp session's end in /metrics", func(m map[string]float64) bool { return delta(before, m, sftpEnded) >= 1 })
	if d := delta(before, after, sftpUp); d != size {
		t.Errorf("%s grew by %v, want %d (the file)", sftpUp, d, size)
	}
	if d := delta(before, after, writes); d != 1 {
		t.Errorf("%s grew by %v, want 1", writes, d)
	}
	if after[`bastion_sessions_open{kind="sftp"}`] != 0 {
		t.Errorf("an sftp session is still counted open: %v", after[`bastion_sessions_open{kind="sftp"}`])
	}

	// No series names a user, a Resource, an address or a session.
	identity := regexp.MustCompile(`bob|alice|echo-svc|host-1|prod|127\.0\.0\.1|s-[0-9a-f]{16}`)
	for key := range after {
		if strings.HasPrefix(key, "bastion_") && identity.MatchString(key) {
			t.Errorf("a series carries an identity: %s", key)
		}
	}
}
