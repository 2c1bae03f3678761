package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

// grantTuples returns alice's live tuples on resource:host-1 and the
// request groups, as the admin sees them.
func grantTuples(t *testing.T, e *requestEnv) (standing []store.Tuple, ofRequests []store.Tuple) {
	t.Helper()
	r := e.b.SSH(e.root, "tuples", "list", "-o", "json")
	mustOK(t, r, "tuples list")
	var ts []store.Tuple
	if err := json.Unmarshal([]byte(r.Stdout), &ts); err != nil {
		t.Fatalf("tuples list -o json: %v\n%s", err, r.Stdout)
	}
	for _, tp := range ts {
		switch {
		case tp.Object == "resource:host-1" && tp.Relation == "act" && tp.Subject == "user:alice":
			standing = append(standing, tp)
		case strings.Contains(tp.Object+tp.Subject, "group:request-"):
			ofRequests = append(ofRequests, tp)
		}
	}
	return standing, ofRequests
}

// A user who already holds a standing act tuple keeps it, unchanged, when
// a request of hers is approved and then dropped or expires: the grant is
// its own record and only it goes.
func TestBoundaryGrantKeepsStandingTuple(t *testing.T) {
	e := requestSetup(t)
	for _, end := range []string{"drop", "expire"} {
		t.Run(end, func(t *testing.T) {
			ttl := "1h"
			if end == "expire" {
				ttl = "8s"
			}
			// Alice holds no act yet (she could not ask otherwise).
			mustOK(t, e.b.SSH(e.root, "tuples", "rm", "resource:host-1#act@user:alice"), "tuples rm")
			r := e.b.SSH(e.alice, "request", "create", "host-1", "--reason", "INC-11", "--ttl", ttl, "-o", "json")
			mustOK(t, r, "request create")
			var req store.AccessRequest
			if err := json.Unmarshal([]byte(r.Stdout), &req); err != nil {
				t.Fatal(err)
			}
			// While it waits, an admin gives alice standing access.
			mustOK(t, e.b.SSH(e.root, "tuples", "add", "resource:host-1#act@user:alice"), "standing grant")
			mustOK(t, e.b.SSH(e.bob, "request", "approve", req.ID), "approve")
			standing, ofRequests := grantTuples(t, e)
			if len(standing) != 1 || !standing[0].Expires.IsZero() {
				t.Fatalf("after the approval the standing tuple is %+v", standing)
			}
			if len(ofRequests) != 2 {
				t.Fatalf("the grant's own tuples: %+v", ofRequests)
			}
			switch end {
			case "drop":
				mustOK(t, e.b.SSH(e.alice, "request", "drop", req.ID), "drop")
			case "expire":
				waitFor(t, 60*time.Second, "the grant to expire", func() bool {
					r := e.b.SSH(e.alice, "request", "show", req.ID, "-o", "json")
					var got store.AccessRequest
					return r.Code == 0 && json.Unmarshal([]byte(r.Stdout), &got) == nil && got.State == "expired"
				})
			}
			// ssh -J through the bastion (-W) still reaches host-1.
			if out, err := e.sshJump("echo", "still-here").CombinedOutput(); err != nil || !strings.Contains(string(out), "still-here") {
				t.Fatalf("after the %s alice lost her standing access: %v\n%s", end, err, out)
			}
			standing, ofRequests = grantTuples(t, e)
			if len(standing) != 1 || !standing[0].Expires.IsZero() {
				t.Fatalf("after the %s the standing tuple is %+v", end, standing)
			}
			for _, tp := range ofRequests {
				if strings.Contains(tp.Object+tp.Subject, req.ID) {
					t.Fatalf("the %s left the grant's tuple %+v", end, tp)
				}
			}
		})
	}
}

// Without a standing tuple the grant alone gives access, a live session
// through it is cut when it is dropped, and nothing of it is left.
func TestBoundaryGrantAloneIsDropped(t *testing.T) {
	e := requestSetup(t)
	r := e.b.SSH(e.alice, "request", "create", "host-1", "--reason", "INC-12", "-o", "json")
	mustOK(t, r, "request create")
	var req store.AccessRequest
	if err := json.Unmarshal([]byte(r.Stdout), &req); err != nil {
		t.Fatal(err)
	}
	mustOK(t, e.b.SSH(e.bob, "request", "approve", req.ID), "approve")
	if out, err := e.sshJump("echo", "granted").CombinedOutput(); err != nil || !strings.Contains(string(out), "granted") {
		t.Fatalf("ssh -J after approval: %v\n%s", err, out)
	}
	live := e.sshJump("sleep", "120")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Process.Kill() })
	waitFor(t, 20*time.Second, "the live -W session", func() bool {
		r := e.b.SSH(e.root, "sessions", "-o", "json")
		var ss []store.Session
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ss) != nil {
			return false
		}
		for _, s := range ss {
			if s.User == "alice" && s.Resource == "host-1" {
				return true
			}
		}
		return false
	})
	mustOK(t, e.b.SSH(e.alice, "request", "drop", req.ID), "drop")
	if err := waitExit(t, live, 30*time.Second, "the live session after the drop"); err == nil {
		t.Fatal("the live session ended successfully instead of being cut")
	}
	if out, err := e.sshJump("true").CombinedOutput(); err == nil {
		t.Fatalf("ssh -J after the drop succeeded:\n%s", out)
	}
	standing, ofRequests := grantTuples(t, e)
	if len(standing) != 0 || len(ofRequests) != 0 {
		t.Fatalf("after the drop: standing %+v, request tuples %+v", standing, ofRequests)
	}
}
