package stepup

import (
	"context"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

func TestParse(t *testing.T) {
	r, err := Parse("10m,acr=sk,acr=sk-uv")
	if err != nil || r.MaxAge != 10*time.Minute || strings.Join(r.ACR, " ") != "sk sk-uv" || r.String() != "10m,acr=sk,acr=sk-uv" {
		t.Fatalf("Parse = %+v, %v", r, err)
	}
	for _, bad := range []string{"acr=sk,10m", "ten", "-5m", "10m,acr=", "48h", "10m,foo"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if r, err := Parse(""); err != nil || !r.IsZero() {
		t.Errorf("Parse(\"\") = %+v, %v", r, err)
	}
}

func TestYAML(t *testing.T) {
	var c Config
	src := "remember: 5m\nsessions:\n  kube: 1h\n  tcp: {max_age: 30m, acr: [sk]}\nprojects:\n  prod: 10m,acr=sk,acr=urn:mfa\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if c.Remember != 5*time.Minute || c.Sessions["kube"].MaxAge != time.Hour || c.Sessions["tcp"].ACR[0] != "sk" || len(c.Projects["prod"].ACR) != 2 {
		t.Fatalf("config = %+v", c)
	}
	if err := yaml.Unmarshal([]byte("sessions:\n  tcp: {maxage: 30m}\n"), &c); err == nil {
		t.Error("a misspelt field was accepted")
	}
	if err := (Config{Sessions: map[string]Requirement{"shell": {MaxAge: time.Minute}}}).Validate(); err == nil {
		t.Error("an unknown session kind was accepted")
	}
}

// The strictest requirement wins: the shortest age, the acr values all
// accept; disjoint acr sets can be satisfied by nothing.
func TestFor(t *testing.T) {
	c := Config{
		Sessions: map[string]Requirement{"kube": {MaxAge: time.Hour, ACR: []string{"sk", "sk-uv", "mfa"}}},
		Projects: map[string]Requirement{"prod": {MaxAge: 20 * time.Minute}},
	}
	r, err := c.For("kube", "k1", "prod", "10m,acr=sk-uv,acr=mfa")
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxAge != 10*time.Minute || strings.Join(r.ACR, ",") != "sk-uv,mfa" || r.Impossible || len(r.From) != 3 {
		t.Fatalf("For = %+v", r)
	}
	r, _ = c.For("kube", "k1", "dev", "")
	if r.MaxAge != time.Hour || len(r.From) != 1 || r.From[0] != "kube sessions" {
		t.Fatalf("For without project = %+v", r)
	}
	if r, _ := c.For("tcp", "db", "dev", ""); !r.IsZero() {
		t.Fatalf("nothing applies, got %+v", r)
	}
	r, _ = c.For("kube", "k1", "", "5m,acr=other")
	if !r.Impossible || !strings.Contains(Describe(r), "no common acr") {
		t.Fatalf("disjoint acr sets: %+v", r)
	}
	if _, err := c.For("tcp", "db", "", "nonsense"); err == nil {
		t.Fatal("a malformed Resource step-up was not an error")
	}
}

type keys struct{ m map[string]store.Key }

func (k *keys) KeyByFingerprint(_ context.Context, fp string) (store.Key, error) {
	if v, ok := k.m[fp]; ok {
		return v, nil
	}
	return store.Key{}, store.ErrNotFound
}
func (k *keys) UpdateKey(_ context.Context, fp string, fn func(*store.Key) error) error {
	v, ok := k.m[fp]
	if !ok {
		return store.ErrNotFound
	}
	if err := fn(&v); err != nil {
		return err
	}
	k.m[fp] = v
	return nil
}

func TestCheck(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ks := &keys{m: map[string]store.Key{"SHA256:k": {Fingerprint: "SHA256:k", User: "alice"}}}
	s := New(Config{Remember: 15 * time.Minute, Sessions: map[string]Requirement{"kube": {MaxAge: 10 * time.Minute}}}, ks, "ssh bastion", clock)
	ctx := context.Background()
	plain := authn.Principal{User: "alice", Method: authn.MethodPublicKey, AuthTime: now.Add(-3 * time.Hour), KeyFingerprint: "SHA256:k", SessionID: "c1"}
	kube := store.Resource{Name: "prod", Kind: "kube"}

	// A plain key, however recent, is no strong login.
	fresh := plain
	fresh.AuthTime = now
	if d := s.Check(ctx, fresh, "kube", kube); d.OK {
		t.Fatal("a plain key login satisfied a step-up")
	}
	d := s.Check(ctx, plain, "kube", kube)
	msg := Refusal("kubeconfig prod", d, HowTo("ssh bastion", true), now)
	for _, want := range []string{"step_up_required", "within 10m", "kube sessions", "publickey 3h ago", "ssh bastion step-up", "security key"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q lacks %q", msg, want)
		}
	}
	// Nothing required: fine.
	if d := s.Check(ctx, plain, "tcp", store.Resource{Name: "db"}); !d.OK || !d.Until.IsZero() {
		t.Fatalf("tcp = %+v", d)
	}

	// A security key login now satisfies it until login + 10m.
	sk := plain
	sk.Method, sk.AuthTime, sk.ACR, sk.MFA = authn.MethodSK, now, authn.ACRSK, true
	if d := s.Check(ctx, sk, "kube", kube); !d.OK || !d.Until.Equal(now.Add(10*time.Minute)) {
		t.Fatalf("sk = %+v", d)
	}
	// ... but not one that needs acr sk-uv.
	if d := s.CheckNeed(ctx, sk, Requirement{MaxAge: time.Hour, ACR: []string{authn.ACRSKUV}}); d.OK {
		t.Fatal("acr sk satisfied a requirement of sk-uv")
	}

	// A step-up made 2m ago (auth_time 2m ago) is kept on the key and
	// satisfies the plain key's next connection until the earlier of
	// auth_time + 10m and now + remember.
	stepped := Login{Method: "step-up", At: now.Add(-2 * time.Minute), ACR: "urn:mfa", AMR: []string{"pwd", "otp"}}
	until, perConn, err := s.Remember(ctx, plain, stepped)
	if err != nil || perConn || !until.Equal(now.Add(15*time.Minute)) {
		t.Fatalf("Remember = %v %v %v", until, perConn, err)
	}
	other := plain
	other.SessionID = "c2"
	d = s.Check(ctx, other, "kube", kube)
	if !d.OK || !d.Until.Equal(now.Add(8*time.Minute)) || d.Have.Method != "step-up" || !d.Have.MFA {
		t.Fatalf("after step-up = %+v", d)
	}
	// After the remember window it counts no more.
	now = now.Add(16 * time.Minute)
	if d := s.Check(ctx, other, "kube", store.Resource{Name: "x", StepUp: "1h"}); d.OK {
		t.Fatalf("a step-up counted after step_up.remember: %+v", d)
	}
	// Renew reads the store again.
	if _, ok := s.Renew(ctx, other, Requirement{MaxAge: time.Hour}); ok {
		t.Fatal("renewed without a step-up")
	}

	// Another user's record says nothing about alice.
	ks.m["SHA256:k"] = store.Key{Fingerprint: "SHA256:k", User: "bob", StrongAuthTime: now, StrongMethod: "step-up", StrongUntil: now.Add(time.Hour)}
	if d := s.Check(ctx, other, "kube", kube); d.OK {
		t.Fatal("bob's step-up satisfied alice")
	}

	// A connection without a key record keeps its step-up for itself.
	cert := authn.Principal{User: "carol", Method: authn.MethodCert, AuthTime: now, KeyFingerprint: "SHA256:none", SessionID: "c3"}
	if _, perConn, err := s.Remember(ctx, cert, Login{Method: "step-up", At: now}); err != nil || !perConn {
		t.Fatalf("per-connection Remember: %v %v", perConn, err)
	}
	if d := s.Check(ctx, cert, "kube", kube); !d.OK {
		t.Fatal("the connection's own step-up did not count")
	}
	cert.SessionID = "c4"
	if d := s.Check(ctx, cert, "kube", kube); d.OK {
		t.Fatal("a per-connection step-up counted on another connection")
	}
}

func TestAgo(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "just now", 30 * time.Second: "30s ago", 12 * time.Minute: "12m ago", 3 * time.Hour: "3h ago", 72 * time.Hour: "3d ago"} {
		if got := Ago(d); got != want {
			t.Errorf("Ago(%s) = %q, want %q", d, got, want)
		}
	}
}
