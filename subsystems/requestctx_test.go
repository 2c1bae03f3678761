package subsystems

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// The request context carries the connection's facts under the
// documented names, and leaves out what the bastion does not know.
func TestRequestContext(t *testing.T) {
	login := time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)
	now := login.Add(90 * time.Minute)
	p := authn.Principal{User: "alice", Method: authn.MethodSK, AuthTime: login, ACR: "gold", MFA: true,
		SourceAddr: "[::ffff:10.1.2.3]:50022"}
	ctx := DecisionContext(authn.WithPrincipal(context.Background(), p), KindTCP)
	rc := policy.RequestFrom(ctx).Context
	if rc[policy.ParamSourceIP] != netip.MustParseAddr("10.1.2.3") || rc[policy.ParamAuthMethod] != "sk" ||
		rc[policy.ParamACR] != "gold" || rc[policy.ParamMFA] != true || rc[policy.ParamSessionKind] != "tcp" ||
		rc[policy.ParamAuthTime] != login {
		t.Fatalf("request context = %v", rc)
	}
	if _, ok := rc[policy.ParamCurrentTime].(time.Time); !ok {
		t.Fatalf("current_time = %v", rc[policy.ParamCurrentTime])
	}
	rc = RequestContext(p, KindSSH, now)
	if rc[policy.ParamAuthAge] != 90*time.Minute || rc[policy.ParamCurrentTime] != now {
		t.Fatalf("auth_age, current_time = %v, %v", rc[policy.ParamAuthAge], rc[policy.ParamCurrentTime])
	}
	rc = RequestContext(authn.Principal{User: "bob", Method: "publickey", SourceAddr: "not an address"}, "", now)
	for _, k := range []string{policy.ParamSourceIP, policy.ParamAuthTime, policy.ParamAuthAge, policy.ParamSessionKind} {
		if _, ok := rc[k]; ok {
			t.Errorf("%s set without the fact behind it: %v", k, rc)
		}
	}
	if rc[policy.ParamMFA] != false || rc[policy.ParamACR] != "" {
		t.Errorf("mfa, acr = %v, %v; want false, \"\"", rc[policy.ParamMFA], rc[policy.ParamACR])
	}
}

// A denial by a condition is explained by the condition's name and the
// values it saw.
func TestUnmetConditions(t *testing.T) {
	m, err := policy.LoadModel("model\n  schema 1.1\ntype user\ntype resource\n  relations\n    define act: [user with office]\n" +
		"condition office(source_ip: ipaddress) { source_ip.in_cidr(\"10.0.0.0/8\") }\n")
	if err != nil {
		t.Fatal(err)
	}
	e := policy.New(m, staticTuples{{Object: "resource:r", Relation: "act", Subject: "user:u", Condition: "office"}})
	p := authn.Principal{User: "u", SourceAddr: "127.0.0.2:4000"}
	ctx := DecisionContextFor(context.Background(), p, KindTCP, time.Now())
	got := UnmetConditions(ctx, e, "user:u", "act", "resource:r")
	if want := "; condition office of resource:r#act@user:u is not met (source_ip=127.0.0.2)"; got != want {
		t.Fatalf("UnmetConditions = %q, want %q", got, want)
	}
	if got := UnmetConditions(ctx, struct{}{}, "user:u", "act", "resource:r"); got != "" {
		t.Fatalf("without an Explainer: %q", got)
	}
}

// staticTuples is a policy.TupleReader over a fixed list.
type staticTuples []store.Tuple

func (s staticTuples) TuplesByObject(_ context.Context, object, relation string) ([]store.Tuple, error) {
	var out []store.Tuple
	for _, t := range s {
		if t.Object == object && t.Relation == relation {
			out = append(out, t)
		}
	}
	return out, nil
}

func (s staticTuples) TuplesBySubject(_ context.Context, subject, objectType string) ([]store.Tuple, error) {
	var out []store.Tuple
	for _, t := range s {
		if t.Subject == subject && strings.HasPrefix(t.Object, objectType+":") {
			out = append(out, t)
		}
	}
	return out, nil
}

// A step-up remembered for a plain-key login is what auth_time, auth_age,
// acr and mfa describe, as it is for step-up requirements: a condition
// `mfa && auth_age < duration("15m")` and a step_up rule of 15 m agree.
func TestRequestContextUsesTheLastStrongLogin(t *testing.T) {
	login := time.Date(2025, 1, 1, 8, 0, 0, 0, time.UTC)
	stepped := login.Add(2 * time.Hour)
	now := stepped.Add(5 * time.Minute)
	p := authn.Principal{User: "alice", Method: authn.MethodPublicKey, AuthTime: login,
		LastStrong: &authn.StrongLogin{Method: "step-up", At: stepped, ACR: "phr", MFA: true}}
	rc := RequestContext(p, KindKube, now)
	if rc[policy.ParamAuthTime] != stepped || rc[policy.ParamAuthAge] != 5*time.Minute ||
		rc[policy.ParamACR] != "phr" || rc[policy.ParamMFA] != true || rc[policy.ParamAuthMethod] != "publickey" {
		t.Fatalf("request context after a step-up = %v", rc)
	}
	p.LastStrong = nil
	rc = RequestContext(p, KindKube, now)
	if rc[policy.ParamAuthTime] != login || rc[policy.ParamMFA] != false || rc[policy.ParamACR] != "" {
		t.Fatalf("request context without a strong login = %v", rc)
	}
}
