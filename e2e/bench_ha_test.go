package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd/etcdtest"
)

// p9DefaultTrials is BASTION_P9_TRIALS when unset: the 200.
const p9DefaultTrials = 200

// p9CloseLimit bounds the wait for one trial's forward to close; a trial
// that reaches it fails the benchmark.
const p9CloseLimit = 10 * time.Second

// mustOKB is mustOK for benchmarks.
func mustOKB(tb testing.TB, r harness.Result, what string) {
	tb.Helper()
	if r.Code != 0 {
		tb.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.Code, r.Stdout, r.Stderr)
	}
}

// benchReplicas starts n bastions sharing one real etcd member under one
// prefix, as replicas() does for tests; the first bootstraps alice.
func benchReplicas(tb testing.TB, n int) ([]*harness.Bastion, harness.Key) {
	tb.Helper()
	e := etcdtest.Start(tb)
	cfg := fmt.Sprintf("store:\n  backend: etcd\n  etcd:\n    endpoints: [%s]\n    prefix: /ha-bench/\n", e.ClientURL)
	alice := harness.NewKey(tb, tb.TempDir(), "alice")
	opts := harness.Options{Admin: "alice", AdminKeys: []harness.Key{alice}, Config: cfg, LogLevel: "info", Env: benchEnv()}
	bs := []*harness.Bastion{harness.Start(tb, opts)}
	for i := 1; i < n; i++ {
		bs = append(bs, harness.Start(tb, harness.Options{Config: cfg + "admins: [alice]\n", LogLevel: "info", Env: benchEnv()}))
	}
	return bs, alice
}

// echoOnce sends a few bytes through c and checks they come back.
func echoOnce(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, []byte("ping")) {
		return fmt.Errorf("echo returned %q", got)
	}
	return nil
}

// openThrough opens a connection through the forward's local port (one
// new channel, one new session on the bastion) and proves it echoes,
// retrying while the bastion refuses (a grant it has not seen yet).
func openThrough(tb testing.TB, local string) net.Conn {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var c net.Conn
		if c, err = net.Dial("tcp", local); err == nil {
			if err = echoOnce(c); err == nil {
				return c
			}
			c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("no working connection through the forward within 15 s: %v", err)
	return nil
}

// closedAt reads c until the peer closes it and sends when that was.
func closedAt(c net.Conn) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				ch <- time.Now()
				return
			}
		}
	}()
	return ch
}

// p9Trial is one revocation: which kind, the session it cut (kill only),
// when the ssh command on A started and returned, and when the connection
// through B closed.
type p9Trial struct {
	kill                bool
	id                  string
	start, ret, closed  time.Time
	cmdRun, afterWrite  time.Time // from A's audit events, filled in later
	closedBeforeReturns bool
}

// openSessionID returns the id of bob's one open echo-svc session not in
// used, as A lists it.
func openSessionID(tb testing.TB, a *harness.Bastion, alice harness.Key, used map[string]bool) string {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := a.SSH(alice, "sessions", "-o", "json")
		mustOKB(tb, r, "sessions on A")
		var ss []store.Session
		if err := json.Unmarshal([]byte(r.Stdout), &ss); err != nil {
			tb.Fatalf("sessions -o json: %v: %s", err, r.Stdout)
		}
		var ids []string
		for _, s := range ss {
			if s.User == "bob" && s.State == "open" && s.Resource == "echo-svc" && !used[s.ID] {
				ids = append(ids, s.ID)
			}
		}
		if len(ids) == 1 {
			return ids[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("A lists %d new open sessions of bob's, want 1: %s", len(ids), r.Stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queryEvents returns A's audit events whose action starts with action,
// in seq order.
func queryEvents(tb testing.TB, a *harness.Bastion, alice harness.Key, action string) []store.Event {
	tb.Helper()
	r := a.SSHRun(harness.Run{Key: &alice, Args: []string{"audit", "-o", "json", "--limit", "0", "--action", action}, Timeout: 2 * time.Minute})
	mustOKB(tb, r, "audit --action "+action)
	var evs []store.Event
	if err := json.Unmarshal([]byte(r.Stdout), &evs); err != nil {
		tb.Fatalf("audit -o json: %v", err)
	}
	slices.SortFunc(evs, func(x, y store.Event) int { return int(x.Seq) - int(y.Seq) })
	return evs
}

// stampFromAudit sets each trial's cmdRun (A's command.run event, durable
// before the command runs) and afterWrite (session.revoke or tuple.rm,
// appended once the revocation was written), failing unless every trial
// has both.
func stampFromAudit(tb testing.TB, a *harness.Bastion, alice harness.Key, grant string, trials []p9Trial) {
	tb.Helper()
	runs := map[string][]time.Time{}
	for _, e := range queryEvents(tb, a, alice, "command.run") {
		runs[e.Details["args"]] = append(runs[e.Details["args"]], e.Time)
	}
	revokes := map[string]time.Time{}
	for _, e := range queryEvents(tb, a, alice, "session.revoke") {
		revokes[e.Details["session"]] = e.Time
	}
	var removals []time.Time
	for _, e := range queryEvents(tb, a, alice, "tuple.rm") {
		if e.Target == grant {
			removals = append(removals, e.Time)
		}
	}
	rmRuns := runs["tuples rm "+grant]
	rm := 0
	for i := range trials {
		t := &trials[i]
		if t.kill {
			ts := runs["sessions kill "+t.id]
			w, ok := revokes[t.id]
			if len(ts) != 1 || !ok {
				tb.Fatalf("trial %d: %d command.run events and revoke %v for the kill of %s", i, len(ts), ok, t.id)
			}
			t.cmdRun, t.afterWrite = ts[0], w
			continue
		}
		if rm >= len(rmRuns) || rm >= len(removals) {
			tb.Fatalf("trial %d: only %d command.run and %d tuple.rm events for the removals", i, len(rmRuns), len(removals))
		}
		t.cmdRun, t.afterWrite = rmRuns[rm], removals[rm]
		rm++
	}
}

// p9Stats is the percentiles of one kind of trial, from the three
// starting points.
func p9Stats(trials []p9Trial, keep func(p9Trial) bool) (fromRun, fromWrite, fromStart []time.Duration, early int) {
	for _, t := range trials {
		if !keep(t) {
			continue
		}
		fromRun = append(fromRun, t.closed.Sub(t.cmdRun))
		fromWrite = append(fromWrite, t.closed.Sub(t.afterWrite))
		fromStart = append(fromStart, t.closed.Sub(t.start))
		if t.closedBeforeReturns {
			early++
		}
	}
	for _, ds := range [][]time.Duration{fromRun, fromWrite, fromStart} {
		slices.Sort(ds)
	}
	return fromRun, fromWrite, fromStart, early
}

// BenchmarkRevocationPropagation (P9): two replicas on one etcd; bob holds
// one `ssh -N -L` through replica B, and each trial opens a new connection
// through it (a new channel, a new session), then revokes it on replica A,
// alternately with `sessions kill ID` and with `tuples rm` of the grant
// (put back after the trial), and times until the connection through B is
// closed. The start is A's command.run event for the command (durable
// before the command runs, so it excludes the ssh client's connection
// setup to A, and includes A's own work); the same from the event A
// appends after the revocation is written, and from the start of the ssh
// command, are reported too. Every trial's connection must close within
// p9CloseLimit. BASTION_P9_TRIALS sets the count (200). Run it with
// -benchtime=1x.
func BenchmarkRevocationPropagation(b *testing.B) {
	n := p9DefaultTrials
	if s := os.Getenv("BASTION_P9_TRIALS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 2 || n > 5000 {
			b.Fatalf("BASTION_P9_TRIALS=%q: want 2-5000", s)
		}
	}
	bs, alice := benchReplicas(b, 2)
	a, rb := bs[0], bs[1]
	bob := harness.NewKey(b, b.TempDir(), "bob")
	mustOKB(b, a.SSH(alice, "users", "add", "bob"), "users add bob")
	mustOKB(b, a.SSHRun(harness.Run{Key: &alice, Args: []string{"keys", "add", "bob"}, Stdin: bob.Public}), "keys add bob")
	echo := harness.StartEcho(b)
	mustOKB(b, a.SSH(alice, "resources", "add", "echo-svc", "--kind", "tcp", "--address", echo, "--port", "7"), "resources add")
	const grant = "resource:echo-svc#act@user:bob"
	mustOKB(b, a.SSH(alice, "tuples", "add", grant), "grant")
	f := rb.StartForward(bob, "echo-svc:7")
	openThrough(b, f.Local).Close()

	var trials []p9Trial
	used := map[string]bool{}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for i := 0; i < n; i++ {
			t := p9Trial{kill: i%2 == 0}
			c := openThrough(b, f.Local)
			closed := closedAt(c)
			if t.kill {
				t.id = openSessionID(b, a, alice, used)
				used[t.id] = true
				t.start = time.Now()
				r := a.SSH(alice, "sessions", "kill", t.id)
				t.ret = time.Now()
				mustOKB(b, r, "sessions kill on A")
				if !strings.Contains(r.Stdout, "revoked "+t.id) {
					b.Fatalf("sessions kill: %q", r.Stdout)
				}
			} else {
				t.start = time.Now()
				r := a.SSH(alice, "tuples", "rm", grant)
				t.ret = time.Now()
				mustOKB(b, r, "tuples rm on A")
			}
			select {
			case t.closed = <-closed:
			case <-time.After(p9CloseLimit):
				b.Fatalf("trial %d (kill %v): the connection through B was still open %s after the command on A returned", i, t.kill, p9CloseLimit)
			}
			c.Close()
			t.closedBeforeReturns = t.closed.Before(t.ret)
			if !t.kill {
				mustOKB(b, a.SSH(alice, "tuples", "add", grant), "grant again")
			}
			trials = append(trials, t)
		}
	}
	b.StopTimer()
	stampFromAudit(b, a, alice, grant, trials)
	all := func(p9Trial) bool { return true }
	kills := func(t p9Trial) bool { return t.kill }
	removals := func(t p9Trial) bool { return !t.kill }
	run, write, start, early := p9Stats(trials, all)
	kRun, kWrite, kStart, kEarly := p9Stats(trials, kills)
	rRun, rWrite, rStart, rEarly := p9Stats(trials, removals)
	b.Logf("%d trials (%d kills, %d removals); ms p50 / p99 from A's command.run: all %.1f / %.1f, kill %.1f / %.1f, removal %.1f / %.1f",
		len(trials), len(kRun), len(rRun), pct(run, 50), pct(run, 99), pct(kRun, 50), pct(kRun, 99), pct(rRun, 50), pct(rRun, 99))
	b.Logf("from A's event after the write: all %.1f / %.1f, kill %.1f / %.1f, removal %.1f / %.1f; from the ssh command's start: all %.1f / %.1f, kill %.1f / %.1f, removal %.1f / %.1f",
		pct(write, 50), pct(write, 99), pct(kWrite, 50), pct(kWrite, 99), pct(rWrite, 50), pct(rWrite, 99),
		pct(start, 50), pct(start, 99), pct(kStart, 50), pct(kStart, 99), pct(rStart, 50), pct(rStart, 99))
	b.Logf("closed before the ssh command on A returned: %d of %d (kill %d, removal %d); max from command.run %.1f ms",
		early, len(trials), kEarly, rEarly, pct(run, 100))
	b.ReportMetric(float64(len(trials)), "trials")
	b.ReportMetric(pct(run, 50), "p50_ms")
	b.ReportMetric(pct(run, 99), "p99_ms")
	b.ReportMetric(pct(kRun, 50), "kill_p50_ms")
	b.ReportMetric(pct(kRun, 99), "kill_p99_ms")
	b.ReportMetric(pct(rRun, 50), "rm_p50_ms")
	b.ReportMetric(pct(rRun, 99), "rm_p99_ms")
	b.ReportMetric(pct(write, 50), "write_p50_ms")
	b.ReportMetric(pct(write, 99), "write_p99_ms")
	b.ReportMetric(pct(start, 50), "cmd_p50_ms")
	b.ReportMetric(pct(start, 99), "cmd_p99_ms")
	b.ReportMetric(float64(early), "closed_before_return")
}
