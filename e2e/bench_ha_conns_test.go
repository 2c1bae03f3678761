package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// p10PerReplica is how many measured connections each replica serves, and
// p10Workers how many concurrent clients drive each replica (P2's 400 and 8).
const p10PerReplica, p10Workers = 400, 8

// BenchmarkConnectionsHA (P10): P2's forward connection (handshake,
// publickey, the act check, an audited -W style open and close of a tcp
// Resource) against 3 `bastion serve` replicas sharing one etcd member on
// loopback, with the connections spread evenly over all 3, against the
// same connections all on one of them, in one run. Every connection must
// succeed, and `audit verify` must pass on every replica afterwards, or
// the benchmark fails. The CPU of the machine and of each part (the
// replicas, etcd, this process as the client) is read from /proc over each
// phase, to show what bounds it.
func BenchmarkConnectionsHA(b *testing.B) {
	e := etcdtest.Start(b)
	cfg := fmt.Sprintf("store:\n  backend: etcd\n  etcd:\n    endpoints: [%s]\n    prefix: /ha-conns/\nauth:\n  failed_conns_per_source: 0\n", e.ClientURL)
	alice := harness.NewKey(b, b.TempDir(), "alice")
	bs := []*harness.Bastion{harness.Start(b, harness.Options{Admin: "alice", AdminKeys: []harness.Key{alice}, Config: cfg, LogLevel: "info", Env: benchEnv()})}
	for i := 1; i < 3; i++ {
		bs = append(bs, harness.Start(b, harness.Options{Config: cfg + "admins: [alice]\n", LogLevel: "info", Env: benchEnv()}))
	}
	echo := harness.StartEcho(b)
	mustOKB(b, bs[0].SSH(alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7"), "resources add")
	etcdPid := pidWithArg("--listen-client-urls=" + e.ClientURL)
	if etcdPid == 0 {
		b.Fatal("cannot find the etcd process")
	}
	cfgSSH := &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(loadSigner(b, alice))},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second}

	// run drives perReplica connections at each of the given replicas with
	// p10Workers clients each, all at once, and returns connections/s.
	run := func(targets []*harness.Bastion, perReplica int) float64 {
		var failed atomic.Int64
		var first atomic.Value
		var wg sync.WaitGroup
		start := time.Now()
		for _, t := range targets {
			var next atomic.Int64
			for w := 0; w < p10Workers; w++ {
				wg.Add(1)
				go func(addr string) {
					defer wg.Done()
					for next.Add(1) <= int64(perReplica) {
						if err := forwardOnce(addr, "echo-svc:7", cfgSSH); err != nil {
							failed.Add(1)
							first.CompareAndSwap(nil, err)
						}
					}
				}(t.Addr)
			}
		}
		wg.Wait()
		elapsed := time.Since(start)
		if failed.Load() > 0 {
			b.Fatalf("%d of %d connections failed: %v", failed.Load(), perReplica*len(targets), first.Load())
		}
		return float64(perReplica*len(targets)) / elapsed.Seconds()
	}
	// measure runs one phase and reports its rate and where the CPU went.
	measure := func(tag string, targets []*harness.Bastion) float64 {
		pids := []int{etcdPid, os.Getpid()}
		for _, r := range bs {
			pids = append(pids, r.Pid())
		}
		before := procCPU(b, pids)
		busy0, total0 := machineCPU(b)
		t0 := time.Now()
		rate := run(targets, p10PerReplica)
		wall := time.Since(t0).Seconds()
		busy1, total1 := machineCPU(b)
		after := procCPU(b, pids)
		n := float64(p10PerReplica * len(targets))
		var bastion float64
		for i := 2; i < len(pids); i++ {
			bastion += after[i] - before[i]
		}
		b.ReportMetric(rate, tag+"_conns/s")
		b.ReportMetric(100*(busy1-busy0)/(total1-total0), tag+"_machine_busy_%")
		b.ReportMetric(100*(after[0]+after[1]+bastion-before[0]-before[1])/wall/float64(runtime.NumCPU()), tag+"_measured_busy_%")
		b.ReportMetric(1000*bastion/n, tag+"_bastion_cpu_ms/conn")
		b.ReportMetric(1000*(after[0]-before[0])/n, tag+"_etcd_cpu_ms/conn")
		b.ReportMetric(1000*(after[1]-before[1])/n, tag+"_client_cpu_ms/conn")
		return rate
	}
	for i := 0; i < b.N; i++ {
		run(bs, 20) // warm-up: every replica has seen the user, the resource and the grant
		one := measure("r1", bs[:1])
		three := measure("r3", bs)
		b.ReportMetric(three/one, "ratio")
	}
	for i, r := range bs {
		res := r.SSHRun(harness.Run{Key: &alice, Args: []string{"audit", "verify"}, Timeout: 5 * time.Minute})
		mustOKB(b, res, fmt.Sprintf("audit verify on replica %d", i))
	}
}

// machineCPU returns the busy and total CPU seconds of the machine so far
// (/proc/stat; idle and iowait count as not busy).
func machineCPU(b *testing.B) (busy, total float64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy / 100, total / 100
}

// procCPU returns the user+system CPU seconds of each process (0 if gone).
func procCPU(b *testing.B, pids []int) []float64 {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatalf("cpu of pid %d: %v", pid, err)
		}
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		ut, _ := strconv.ParseFloat(f[11], 64) // field 14, utime
		st, _ := strconv.ParseFloat(f[12], 64) // field 15, stime
		out[i] = (ut + st) / 100
	}
	return out
}

// pidWithArg finds the process with arg among its command-line arguments.
func pidWithArg(arg string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		raw, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(raw), "\x00") {
			if a == arg {
				pid, _ := strconv.Atoi(filepath.Base(d))
				return pid
			}
		}
	}
	return 0
}
