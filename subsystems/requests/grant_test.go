package requests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
)

const standing = "resource:host-1#act@user:alice"

// approve files a request for host-1 as alice and has bob approve it.
func approve(t *testing.T, s *Service) string {
	t.Helper()
	ctx := context.Background()
	r, err := s.Create(ctx, authn.Principal{User: "alice"}, []string{"host-1"}, "INC-9", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// A standing act tuple the user already holds is neither overwritten by an
// approval nor deleted by the grant's drop or expiry.
func TestGrantLeavesStandingTupleAlone(t *testing.T) {
	for _, end := range []string{"drop", "expire"} {
		t.Run(end, func(t *testing.T) {
			s, p, _, now := setup(t)
			ctx := context.Background()
			id := approve(t, s)
			// An admin grants alice standing access while her request waits.
			p.tuples[standing] = time.Time{}
			got, err := s.Approve(ctx, authn.Principal{User: "bob"}, id, "ok")
			if err != nil {
				t.Fatal(err)
			}
			if exp, ok := p.tuples[standing]; !ok || !exp.IsZero() {
				t.Fatalf("approval changed the standing tuple: present=%v expires=%s", ok, exp)
			}
			if exp, ok := p.tuples["group:request-"+id+"#member@user:alice"]; !ok || !exp.Equal(got.Expires) {
				t.Fatalf("the grant's own membership: present=%v expires=%s, want %s", ok, exp, got.Expires)
			}
			switch end {
			case "drop":
				if _, err := s.Drop(ctx, authn.Principal{User: "alice"}, id, "done"); err != nil {
					t.Fatal(err)
				}
			case "expire":
				*now = now.Add(2 * time.Hour)
				runUntil(t, s, id, Expired)
			}
			if exp, ok := p.tuples[standing]; !ok || !exp.IsZero() {
				t.Fatalf("after the %s the standing tuple is present=%v expires=%s", end, ok, exp)
			}
			if ok, _ := p.Check(ctx, "user:alice", "act", "resource:host-1"); !ok {
				t.Fatalf("after the %s alice lost her standing access", end)
			}
			for k := range p.tuples {
				if strings.Contains(k, "request-"+id) {
					t.Fatalf("the grant's tuple %s is left after the %s", k, end)
				}
			}
		})
	}
}

// Without a standing tuple, the grant is what gives access, and its drop
// takes it away.
func TestGrantAloneGivesAndTakesAccess(t *testing.T) {
	s, p, _, _ := setup(t)
	ctx := context.Background()
	id := approve(t, s)
	if _, err := s.Approve(ctx, authn.Principal{User: "bob"}, id, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.tuples[standing]; ok {
		t.Fatal("the approval wrote alice's direct act tuple")
	}
	if ok, _ := p.Check(ctx, "user:alice", "act", "resource:host-1"); !ok {
		t.Fatal("the grant gives no access")
	}
	if _, err := s.Drop(ctx, authn.Principal{User: "alice"}, id, ""); err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.Check(ctx, "user:alice", "act", "resource:host-1"); ok {
		t.Fatal("access outlived the drop")
	}
}

// Grants approved by an older version were direct tuples with the grant's
// expiry; dropping them still removes exactly those.
func TestDropRemovesLegacyGrantOnly(t *testing.T) {
	s, p, _, _ := setup(t)
	ctx := context.Background()
	id := approve(t, s)
	r, err := s.Approve(ctx, authn.Principal{User: "bob"}, id, "")
	if err != nil {
		t.Fatal(err)
	}
	// Replace the new-style grant by what the old code wrote.
	for k := range p.tuples {
		delete(p.tuples, k)
	}
	p.tuples[standing] = r.Expires
	p.tuples["resource:host-1#act@user:carol"] = r.Expires
	if _, err := s.Drop(ctx, authn.Principal{User: "alice"}, id, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.tuples[standing]; ok {
		t.Fatal("the legacy grant survived its drop")
	}
	if _, ok := p.tuples["resource:host-1#act@user:carol"]; !ok {
		t.Fatal("the drop removed someone else's tuple")
	}
}

// A model that does not admit the grant's userset refuses the approval
// instead of approving a grant that gives nothing.
func TestApproveRefusedWhenModelIgnoresTheGrant(t *testing.T) {
	s, p, _, _ := setup(t)
	p.noUsersets = true
	id := approve(t, s)
	_, err := s.Approve(context.Background(), authn.Principal{User: "bob"}, id, "")
	if err == nil || !strings.Contains(err.Error(), "group#member on resource#act") {
		t.Fatalf("approval under a model without the userset: %v", err)
	}
	if len(p.tuples) != 0 {
		t.Fatalf("the refused approval left tuples: %v", p.tuples)
	}
	if r, _ := s.st.GetAccessRequest(context.Background(), id); r.State != Pending {
		t.Fatalf("the request is %s after a refused approval", r.State)
	}
}

// runUntil runs the expiry loop until request id reaches state.
func runUntil(t *testing.T, s *Service, id, state string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, _ := s.st.GetAccessRequest(context.Background(), id); r.State == state {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("request %s never became %s", id, state)
}
