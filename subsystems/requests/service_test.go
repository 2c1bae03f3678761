package requests

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// fakePolicy answers from a set of "subject relation object" lines, plus
// the act tuples the service wrote (honouring their expiry).
type fakePolicy struct {
	mu     sync.Mutex
	facts  map[string]bool
	tuples map[string]time.Time
	now    func() time.Time
	// noUsersets plays a custom model without group#member on act.
	noUsersets bool
}

func (f *fakePolicy) Check(_ context.Context, subject, relation, object string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.facts[subject+" "+relation+" "+object] {
		return true, nil
	}
	if f.live(object + "#" + relation + "@" + subject) {
		return true, nil
	}
	// Usersets, as the model's [user, group#member]: object#relation@group:G#member
	// holds for subject if group:G#member@subject does.
	if f.noUsersets {
		return false, nil
	}
	prefix := object + "#" + relation + "@"
	for k := range f.tuples {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, "#member") && f.live(k) {
			group := strings.TrimSuffix(strings.TrimPrefix(k, prefix), "#member")
			if f.live(group + "#member@" + subject) {
				return true, nil
			}
		}
	}
	return false, nil
}

// live reports whether a tuple is stored and not expired; f.mu is held.
func (f *fakePolicy) live(key string) bool {
	exp, ok := f.tuples[key]
	return ok && (exp.IsZero() || f.now().Before(exp))
}

func (f *fakePolicy) TuplesByObject(_ context.Context, object, relation string) ([]store.Tuple, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Tuple
	for k, exp := range f.tuples {
		if rest, ok := strings.CutPrefix(k, object+"#"+relation+"@"); ok && f.live(k) {
			out = append(out, store.Tuple{Object: object, Relation: relation, Subject: rest, Expires: exp})
		}
	}
	return out, nil
}

func (f *fakePolicy) ListObjects(ctx context.Context, subject, relation, _ string) ([]string, error) {
	var out []string
	for _, r := range []string{"host-1", "vault"} {
		if ok, _ := f.Check(ctx, subject, relation, "resource:"+r); ok {
			out = append(out, "resource:"+r)
		}
	}
	return out, nil
}

func (f *fakePolicy) WriteTuples(_ context.Context, add, del []store.Tuple) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range del {
		delete(f.tuples, t.Object+"#"+t.Relation+"@"+t.Subject)
	}
	for _, t := range add {
		f.tuples[t.Object+"#"+t.Relation+"@"+t.Subject] = t.Expires
	}
	return nil
}

type nopAudit struct{ actions []string }

func (a *nopAudit) Append(_ context.Context, e store.Event) (store.Event, error) {
	a.actions = append(a.actions, e.Action)
	return e, nil
}

func setup(t *testing.T) (*Service, *fakePolicy, *nopAudit, *time.Time) {
	t.Helper()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, r := range []store.Resource{{Name: "host-1", Kind: "ssh", Address: "a:22", Project: "payments"}, {Name: "vault", Kind: "tcp", Address: "b:1", Project: "secrets"}} {
		if err := st.PutResource(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	p := &fakePolicy{tuples: map[string]time.Time{}, now: clock, facts: map[string]bool{
		"user:alice view resource:host-1":     true,
		"user:bob reviewer resource:host-1":   true,
		"user:alice reviewer resource:host-1": true, // a reviewer still may not approve her own request
	}}
	a := &nopAudit{}
	s := New(Config{MaxTTL: 4 * time.Hour, ProjectMaxTTL: map[string]time.Duration{"payments": 2 * time.Hour}}, st, p, p, a, nil)
	s.now = clock
	return s, p, a, &now
}

func TestCreateRefusesWithReasons(t *testing.T) {
	s, _, _, _ := setup(t)
	ctx, alice := context.Background(), authn.Principal{User: "alice"}
	for _, c := range []struct {
		names  []string
		reason string
		want   string
	}{
		{[]string{"host-1"}, " ", "--reason is required"},
		{[]string{"nope"}, "x", `no Resource "nope"`},
		{[]string{"vault"}, "x", `no Resource "vault"`}, // exists, but invisible to alice
	} {
		if _, err := s.Create(ctx, alice, c.names, c.reason, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Create(%v, %q): %v, want %q", c.names, c.reason, err, c.want)
		}
	}
}

func TestApproveCapsTTLExpiresAndDrops(t *testing.T) {
	s, p, a, now := setup(t)
	ctx := context.Background()
	alice, bob, carol := authn.Principal{User: "alice"}, authn.Principal{User: "bob"}, authn.Principal{User: "carol"}
	r, err := s.Create(ctx, alice, []string{"host-1"}, "INC-7", 10*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, alice, []string{"host-1"}, "again", 0); err == nil || !strings.Contains(err.Error(), "already have a pending request for host-1: "+r.ID) {
		t.Fatalf("a second pending request: %v", err)
	}
	if _, err := s.Approve(ctx, alice, r.ID, ""); err == nil || !strings.Contains(err.Error(), "your own request") {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := s.Approve(ctx, carol, r.ID, ""); err == nil || !strings.Contains(err.Error(), "not a reviewer") {
		t.Fatalf("non-reviewer approval: %v", err)
	}
	got, err := s.Approve(ctx, bob, r.ID, "ok")
	if err != nil {
		t.Fatal(err)
	}
	// 10h asked, 4h bastion cap, 2h project cap.
	if got.TTL != 2*time.Hour || !got.Expires.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("grant TTL %s until %s, want the project cap of 2h", got.TTL, got.Expires)
	}
	if ok, _ := p.Check(ctx, "user:alice", "act", "resource:host-1"); !ok {
		t.Fatal("approval wrote no act tuple")
	}
	if _, err := s.Deny(ctx, bob, r.ID, ""); err == nil || !strings.Contains(err.Error(), "already approved") {
		t.Fatalf("deciding twice: %v", err)
	}
	if _, err := s.Drop(ctx, carol, r.ID, ""); err == nil {
		t.Fatal("carol dropped someone else's grant")
	}
	if _, err := s.Drop(ctx, alice, r.ID, "done"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := p.Check(ctx, "user:alice", "act", "resource:host-1"); ok {
		t.Fatal("the dropped grant still holds")
	}
	// A second grant expires: Run marks it.
	r2, _ := s.Create(ctx, alice, []string{"host-1"}, "INC-8", time.Minute)
	if _, err := s.Approve(ctx, bob, r2.ID, ""); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(2 * time.Minute)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(rctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if g, _ := s.st.GetAccessRequest(ctx, r2.ID); g.State == Expired {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if g, _ := s.st.GetAccessRequest(ctx, r2.ID); g.State != Expired {
		t.Fatalf("after its TTL the grant is %s", g.State)
	}
	want := "access_request.created access_request.approved access_request.dropped access_request.created access_request.approved access_request.expired"
	if strings.Join(a.actions, " ") != want {
		t.Fatalf("audit actions:\n%s\nwant\n%s", strings.Join(a.actions, " "), want)
	}
}
