package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
)

const (
	idleSessions = 5000 // idle sessions per server
	idleParallel = 50   // connections being set up at once
)

// idleConns is a set of authenticated connections, each holding one open
// session channel on which nothing was requested.
type idleConns struct {
	clients []*gossh.Client
	chans   []gossh.Channel
}

func (ic *idleConns) Close() {
	for _, c := range ic.clients {
		_ = c.Close()
	}
	ic.clients, ic.chans = nil, nil
}

// openIdle opens n connections to addr, idleParallel at a time, each doing
// the handshake and public-key auth and opening one session channel that
// then stays idle. Every step is bounded; the whole run by limit.
func openIdle(b *testing.B, addr, user string, signer gossh.Signer, n int, limit time.Duration) *idleConns {
	b.Helper()
	cfg := &gossh.ClientConfig{User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey()}
	ic := &idleConns{}
	var mu sync.Mutex
	var next, failed atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(limit)
	var wg sync.WaitGroup
	for w := 0; w < idleParallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && failed.Load() == 0 {
				if time.Now().After(deadline) {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("not all %d open within %s", n, limit))
					return
				}
				c, ch, err := openOneIdle(addr, cfg)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				mu.Lock()
				ic.clients = append(ic.clients, c)
				ic.chans = append(ic.chans, ch)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		got := len(ic.clients)
		ic.Close()
		b.Fatalf("%s: %d of %d idle sessions opened; first error: %v", addr, got, n, firstErr.Load())
	}
	return ic
}

func openOneIdle(addr string, cfg *gossh.ClientConfig) (*gossh.Client, gossh.Channel, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	// The deadline bounds the handshake, auth and channel open; it is
	// lifted once the session is open.
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	sc, chans, reqs, err := gossh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	c := gossh.NewClient(sc, chans, reqs)
	ch, creqs, err := c.OpenChannel("session", nil)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("open session: %w", err)
	}
	go gossh.DiscardRequests(creqs)
	_ = conn.SetDeadline(time.Time{})
	return c, ch, nil
}

// settledMem waits for the process tree under pid to settle and returns
// the least RSS and the least PSS of several samples: garbage and freed
// pages linger for a while, what stays is what the sessions hold.
func settledMem(b *testing.B, pid int) harness.Mem {
	b.Helper()
	time.Sleep(3 * time.Second)
	var best harness.Mem
	for i := 0; i < 5; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		m, err := harness.TreeMem(pid)
		if err != nil {
			b.Fatalf("memory of %d: %v", pid, err)
		}
		if i == 0 || m.RSS < best.RSS {
			best.RSS = m.RSS
		}
		switch {
		case i == 0, m.PSS < 0:
			best.PSS = m.PSS
		case best.PSS >= 0 && m.PSS < best.PSS:
			best.PSS = m.PSS
		}
		if m.Procs > best.Procs {
			best.Procs = m.Procs
		}
	}
	return best
}

// idleRun opens n idle sessions to addr and returns how much the memory
// of the process tree under pid grew over before, per session, in KiB
// (RSS and PSS; PSS -1 if it could not be read); the sessions are closed
// when it returns. check, if set, verifies the server sees the sessions.
func idleRun(b *testing.B, name, addr, user string, pid int, signer gossh.Signer, n int, before harness.Mem,
	check func(n int, after harness.Mem) error) (rss, pss float64) {
	b.Helper()
	start := time.Now()
	ic := openIdle(b, addr, user, signer, n, 15*time.Minute)
	defer ic.Close()
	opened := time.Since(start)
	after := settledMem(b, pid)
	if check != nil {
		if err := check(n, after); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
	}
	// Every connection is still up after the measurement: each answers a
	// global request (the answer is a refusal; that it comes is the point).
	for i, c := range ic.clients {
		if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
			b.Fatalf("%s: connection %d of %d died while idle: %v", name, i, n, err)
		}
	}
	kib := func(d int64) float64 { return float64(d) / 1024 / float64(n) }
	rss = kib(after.RSS - before.RSS)
	pss = -1
	if before.PSS >= 0 && after.PSS >= 0 {
		pss = kib(after.PSS - before.PSS)
	}
	b.Logf("%s: %d idle sessions opened in %s; processes %d -> %d; RSS %.1f -> %.1f MiB (%.1f KiB/session); PSS %.1f -> %.1f MiB (%.1f KiB/session)",
		name, n, opened.Round(time.Millisecond), before.Procs, after.Procs,
		float64(before.RSS)/(1<<20), float64(after.RSS)/(1<<20), rss,
		float64(before.PSS)/(1<<20), float64(after.PSS)/(1<<20), pss)
	return rss, pss
}

// raiseNofile lifts the soft open-files limit to the hard one. Setting it
// explicitly (rather than relying on the Go runtime's own raise) makes the
// servers started afterwards inherit it.
func raiseNofile(b *testing.B, need uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < need {
		b.Fatalf("open files limit %d is below the %d this benchmark needs; raise it (ulimit -n)", lim.Cur, need)
	}
}

var activeConnsRe = regexp.MustCompile(`(?m)^bastion_ssh_connections_active (\d+)`)

// bastionActive is the bastion's own count of open connections.
func bastionActive(b *harness.Bastion) (int, error) {
	resp, err := http.Get("http://" + b.Metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	m := activeConnsRe.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("no bastion_ssh_connections_active in /metrics")
	}
	return strconv.Atoi(string(m[1]))
}

// sshdPid is the listening sshd's pid, from its pid file.
func sshdPid(b *testing.B, s *harness.SSHD) int {
	b.Helper()
	path := filepath.Join(s.Dir, "sshd.pid")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("no sshd pid in %s: %v\n%s", path, err, s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkIdleSessionMemory (P7): the memory each idle session costs,
// 5000 open on the bastion and 5000 on Debian's OpenSSH sshd, in one run.
// A session is an authenticated connection (the same x/crypto client and
// ed25519 key for both) with one open session channel on which nothing is
// requested. Memory is the growth of the server's resident memory from
// before the sessions to after they are open and settled, divided by N:
// for the bastion its one process, for sshd the listener and every
// process under it. Both RSS and PSS are reported; PSS is the fair figure
// for sshd, whose forked processes share pages that RSS counts once per
// process, and the one bastion_KiB/session and sshd_KiB/session are.
//
// The bastion then closes those sessions and opens N new ones, and the
// growth over the same first baseline is reported as
// bastion_churn_KiB/session: a fresh process's heap comes from untouched
// pages, so a buffer that is allocated but only partly used stays partly
// non-resident, while memory the heap reuses has been written.
//
// BENCH_P7_SSHD_N sets sshd's N (each of its sessions is its own process,
// so its cost per session does not depend on N; 5000 take about 8 GiB and
// five minutes to open here). BENCH_P7_SSHD_USER logs in to sshd as
// another user than root (sshd skips its post-auth privilege-separated
// child for root; the user needs a usable shell entry). Run it with
// -benchtime=1x.
func BenchmarkIdleSessionMemory(b *testing.B) {
	sshdN := idleSessions
	if v := os.Getenv("BENCH_P7_SSHD_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("BENCH_P7_SSHD_N=%q: want a positive count", v)
		}
		sshdN = n
	}
	sshdUser := os.Getenv("BENCH_P7_SSHD_USER")
	if sshdUser == "" {
		sshdUser = "root"
	}
	// This process holds the client end of every connection, and the
	// bastion the server ends of its own.
	raiseNofile(b, uint64(max(idleSessions, sshdN)+1000))
	dir := b.TempDir()
	key := harness.NewKey(b, dir, "bench")
	signer := loadSigner(b, key)
	// The pre-auth limits bound connections still authenticating; raised
	// so that idleParallel at a time never meets them.
	bastion := harness.Start(b, harness.Options{Admin: "bench", AdminKeys: []harness.Key{key}, LogLevel: "info",
		Config: "auth:\n  max_startups: 1000\n  max_startups_per_source: 1000\n  failed_conns_per_source: 0\n"})
	sshd := harness.StartSSHD(b, harness.SSHDOptions{AuthorizedKeys: []string{key.Public}})
	spid := sshdPid(b, sshd)
	if sshdUser != "root" {
		// sshd reads authorized_keys as the user.
		_ = os.Chmod(sshd.Dir, 0o755)
		_ = os.Chmod(filepath.Dir(sshd.Dir), 0o755)
	}
	bastionOpen := func(n int, _ harness.Mem) error {
		got, err := bastionActive(bastion)
		if err == nil && got != n {
			err = fmt.Errorf("bastion counts %d open connections, want %d", got, n)
		}
		return err
	}
	for i := 0; i < b.N; i++ {
		// A few first, so that a broken setup fails fast.
		openIdle(b, bastion.Addr, "bench", signer, 10, time.Minute).Close()
		openIdle(b, sshd.Addr, sshdUser, signer, 10, time.Minute).Close()
		waitIdle(b, "bastion", func() (int, error) { return bastionActive(bastion) })
		waitIdle(b, "sshd", func() (int, error) { d, err := harness.Descendants(spid); return len(d), err })

		before := settledMem(b, bastion.Pid())
		ours, oursPSS := idleRun(b, "bastion", bastion.Addr, "bench", bastion.Pid(), signer, idleSessions, before, bastionOpen)
		waitIdle(b, "bastion", func() (int, error) { return bastionActive(bastion) })
		churn, churnPSS := idleRun(b, "bastion, second wave", bastion.Addr, "bench", bastion.Pid(), signer, idleSessions, before, bastionOpen)

		peer, peerPSS := idleRun(b, "sshd", sshd.Addr, sshdUser, spid, signer, sshdN, settledMem(b, spid), func(n int, after harness.Mem) error {
			if after.Procs < n+1 {
				return fmt.Errorf("sshd has %d processes for %d sessions", after.Procs, n)
			}
			return nil
		})
		b.ReportMetric(float64(idleSessions), "bastion_sessions")
		b.ReportMetric(float64(sshdN), "sshd_sessions")
		b.ReportMetric(ours, "bastion_rss_KiB/session")
		b.ReportMetric(churn, "bastion_churn_rss_KiB/session")
		b.ReportMetric(peer, "sshd_rss_KiB/session")
		if oursPSS < 0 || churnPSS < 0 || peerPSS < 0 {
			b.Logf("PSS unreadable: the per-session figures are RSS")
			oursPSS, churnPSS, peerPSS = ours, churn, peer
		}
		b.ReportMetric(oursPSS, "bastion_KiB/session")
		b.ReportMetric(churnPSS, "bastion_churn_KiB/session")
		b.ReportMetric(peerPSS, "sshd_KiB/session")
	}
}

// waitIdle waits until a server holds no connections (count reports how
// many it has), so that a measurement starts from none.
func waitIdle(b *testing.B, name string, count func() (int, error)) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := count()
		if err == nil && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s still holds %d connections (%v) 2 minutes after they were closed", name, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
