package e2e

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
)

// Under an audit-heavy load the bastion is killed with SIGKILL at random
// moments. Every change a client saw acknowledged (a `users add` that
// exited 0, which returns only after its audit event was durably appended)
// must be in the audit log after the restart, and the chain must verify.
// BASTION_KILL_TRIALS sets the number of trials (`make soak` uses 50).
func TestKill9KeepsEveryAcknowledgedEvent(t *testing.T) {
	trials := 20
	if v, err := strconv.Atoi(os.Getenv("BASTION_KILL_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d, %d trials", seed, trials)

	b, alice := admin(t, "")
	var mu sync.Mutex
	acked := map[string]bool{}
	for trial := 0; trial < trials; trial++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 200; i++ { // bounded; the kill ends it sooner
					select {
					case <-stop:
						return
					default:
					}
					name := fmt.Sprintf("u%d-%d-%d", trial, w, i)
					r := b.SSHRun(harness.Run{Key: &alice, Args: []string{"users", "add", name}, Timeout: 30 * time.Second})
					if r.Code == 0 {
						mu.Lock()
						acked[name] = true
						mu.Unlock()
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(300+rng.Intn(1200)) * time.Millisecond)
		b.Kill()
		close(stop)
		wg.Wait()
		b.Restart()
	}
	if len(acked) < trials {
		t.Fatalf("only %d acknowledged changes over %d trials: the load did not run", len(acked), trials)
	}
	logged := map[string]bool{}
	for _, e := range auditEvents(t, b, alice, "--action", "user.add") {
		logged[e.Target] = true
	}
	var lost []string
	for name := range acked {
		if !logged[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d acknowledged events lost after kill -9, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	r := b.SSH(alice, "audit", "verify")
	mustOK(t, r, "audit verify after the kills")
	if !strings.HasPrefix(r.Stdout, "OK: ") {
		t.Fatalf("audit verify: %q", r.Stdout)
	}
	t.Logf("%d acknowledged changes over %d kills, all present; %s", len(acked), trials, strings.TrimSpace(r.Stdout))
}
