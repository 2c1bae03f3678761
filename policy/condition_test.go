package policy

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

// condModel has one condition per parameter type OpenFGA has.
const condModel = `model
  schema 1.1
type user
type group
  relations
    define member: [user, user with on_shift]
type resource
  relations
    define act: [user with t_bool, user with t_string, user with t_int, user with t_uint, user with t_double,
      user with t_duration, user with t_timestamp, user with t_ip, user with t_list, user with t_map,
      user with office, group#member, user]
    define safe: act but not banned
    define banned: [user with office]

condition t_bool(mfa: bool) { mfa }
condition t_string(auth_method: string) { auth_method == "sk" || auth_method.startsWith("oidc") }
condition t_int(n: int) { n > 2 }
condition t_uint(u: uint) { u >= 10u }
condition t_double(x: double) { x < 0.5 }
condition t_duration(auth_age: duration, max: duration) { auth_age <= max }
condition t_timestamp(current_time: timestamp, end: timestamp) { current_time < end }
condition t_ip(source_ip: ipaddress) { source_ip.in_cidr("10.0.0.0/8") }
condition t_list(session_kind: string, kinds: list<string>) { session_kind in kinds }
condition t_map(acr: string, levels: map<int>) { acr in levels && levels[acr] >= 2 }
condition office(source_ip: ipaddress, cidr: string) { source_ip.in_cidr(cidr) }
condition on_shift(current_time: timestamp, start: timestamp, end: timestamp) {
  current_time >= start && current_time < end
}
`

func condEngine(t *testing.T, tuples ...store.Tuple) *Engine {
	t.Helper()
	m, err := LoadModel(condModel)
	if err != nil {
		t.Fatal(err)
	}
	return New(m, newMemReader(tuples))
}

func ctup(t *testing.T, s, cond string, ctx map[string]any) store.Tuple {
	t.Helper()
	tp, err := ParseTuple(s)
	if err != nil {
		t.Fatal(err)
	}
	tp.Condition, tp.Context = cond, ctx
	return tp
}

func req(ctx map[string]any) context.Context {
	return WithRequest(context.Background(), Request{Context: ctx})
}

// Every parameter type converts from JSON values (and the bastion's own
// typed values) and decides as its expression says.
func TestConditionParameterTypes(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		tupCtx  map[string]any
		yes, no map[string]any
	}{
		{"t_bool", nil, map[string]any{"mfa": true}, map[string]any{"mfa": false}},
		{"t_string", nil, map[string]any{"auth_method": "oidc"}, map[string]any{"auth_method": "publickey"}},
		{"t_int", nil, map[string]any{"n": 3.0}, map[string]any{"n": "2"}},
		{"t_uint", nil, map[string]any{"u": 10.0}, map[string]any{"u": "9"}},
		{"t_double", nil, map[string]any{"x": 0.25}, map[string]any{"x": "0.75"}},
		{"t_duration", map[string]any{"max": "1h"}, map[string]any{"auth_age": "59m"}, map[string]any{"auth_age": 2 * time.Hour}},
		{"t_timestamp", map[string]any{"end": "2025-01-01T13:00:00Z"},
			map[string]any{"current_time": "2025-01-01T12:59:59Z"}, map[string]any{"current_time": t0.Add(time.Hour)}},
		{"t_ip", nil, map[string]any{"source_ip": "10.1.2.3"}, map[string]any{"source_ip": netip.MustParseAddr("192.168.0.1")}},
		// An IPv4-mapped IPv6 address is its IPv4 address.
		{"t_ip", nil, map[string]any{"source_ip": "::ffff:10.1.2.3"}, map[string]any{"source_ip": "fd00::1"}},
		{"t_list", map[string]any{"kinds": []any{"tcp", "sftp"}}, map[string]any{"session_kind": "tcp"}, map[string]any{"session_kind": "kube"}},
		{"t_map", map[string]any{"levels": map[string]any{"gold": 3.0, "bronze": 1.0}},
			map[string]any{"acr": "gold"}, map[string]any{"acr": "bronze"}},
	} {
		e := condEngine(t, ctup(t, "resource:r#act@user:u", c.name, c.tupCtx))
		for _, v := range []struct {
			ctx  map[string]any
			want bool
		}{{c.yes, true}, {c.no, false}} {
			ok, err := e.Check(req(v.ctx), "user:u", "act", "resource:r")
			if err != nil || ok != v.want {
				t.Errorf("%s with %v: %v, %v; want %v", c.name, v.ctx, ok, err, v.want)
			}
		}
	}
}

// Values of the wrong type are errors, never a "yes" or a quiet "no".
func TestConditionBadValues(t *testing.T) {
	for _, c := range []struct {
		name string
		ctx  map[string]any
		want string
	}{
		{"t_int", map[string]any{"n": 2.5}, "want an int"},
		{"t_uint", map[string]any{"u": -1.0}, "want a uint"},
		{"t_bool", map[string]any{"mfa": "yes"}, "want bool"},
		{"t_timestamp", map[string]any{"current_time": "yesterday", "end": "2025-01-01T00:00:00Z"}, "RFC 3339"},
		{"t_duration", map[string]any{"auth_age": 5.0, "max": "1h"}, "want duration"},
		{"t_ip", map[string]any{"source_ip": "10.1.2"}, "want an IP address"},
		{"t_list", map[string]any{"session_kind": "tcp", "kinds": "tcp"}, "want list<string>"},
		{"t_list", map[string]any{"session_kind": "tcp", "kinds": []any{"tcp", 1.0}}, "item 1"},
	} {
		e := condEngine(t, ctup(t, "resource:r#act@user:u", c.name, nil))
		ok, err := e.Check(req(c.ctx), "user:u", "act", "resource:r")
		if ok || !errors.Is(err, ErrCondition) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %v: %v, %v; want ErrCondition saying %q", c.name, c.ctx, ok, err, c.want)
		}
	}
}

// The tuple's context wins over the request's on a clash, as in OpenFGA:
// whoever asks cannot override what the grant fixed.
func TestConditionTupleContextWins(t *testing.T) {
	e := condEngine(t, ctup(t, "resource:r#act@user:u", "office", map[string]any{"cidr": "10.0.0.0/8"}))
	for _, c := range []struct {
		ctx  map[string]any
		want bool
	}{
		{map[string]any{"source_ip": "10.1.1.1"}, true},
		{map[string]any{"source_ip": "192.168.1.1", "cidr": "0.0.0.0/0"}, false},
	} {
		if ok, err := e.Check(req(c.ctx), "user:u", "act", "resource:r"); err != nil || ok != c.want {
			t.Errorf("with %v: %v, %v; want %v", c.ctx, ok, err, c.want)
		}
	}
}

// A missing parameter is an error (OpenFGA's answer), unless another path
// grants; a failing expression is an error, never an allow.
func TestConditionMissingAndFailing(t *testing.T) {
	grant := ctup(t, "resource:r#act@user:u", "office", map[string]any{"cidr": "10.0.0.0/8"})
	e := condEngine(t, grant)
	ok, err := e.Check(context.Background(), "user:u", "act", "resource:r")
	if ok || !errors.Is(err, ErrCondition) || !strings.Contains(err.Error(), "missing context parameter(s) source_ip") {
		t.Errorf("no request context: %v, %v; want ErrCondition naming source_ip", ok, err)
	}
	if _, err := e.ListObjects(context.Background(), "user:u", "act", "resource"); !errors.Is(err, ErrCondition) {
		t.Errorf("ListObjects without the parameter: %v, want ErrCondition", err)
	}
	if _, err := e.ListUsers(context.Background(), "resource:r", "act", "user"); !errors.Is(err, ErrCondition) {
		t.Errorf("ListUsers without the parameter: %v, want ErrCondition", err)
	}
	// A malformed CIDR fails the expression: an error, not a grant.
	bad := ctup(t, "resource:r#act@user:u", "office", map[string]any{"cidr": "10.0.0.0/99"})
	e = condEngine(t, bad)
	ok, err = e.Check(req(map[string]any{"source_ip": "10.1.1.1"}), "user:u", "act", "resource:r")
	if ok || !errors.Is(err, ErrCondition) || !strings.Contains(err.Error(), "is not a CIDR") {
		t.Errorf("bad CIDR: %v, %v; want ErrCondition", ok, err)
	}
	// ...and when that error is on the subtracted side of "but not", the
	// answer is unknown too, not a grant.
	e = condEngine(t, store.Tuple{Object: "resource:r", Relation: "act", Subject: "user:u"},
		ctup(t, "resource:r#banned@user:u", "office", map[string]any{"cidr": "nonsense"}))
	ok, err = e.Check(req(map[string]any{"source_ip": "10.1.1.1"}), "user:u", "safe", "resource:r")
	if ok || !errors.Is(err, ErrCondition) {
		t.Errorf("failing exclusion: %v, %v; want ErrCondition", ok, err)
	}
	// Another path that grants decides, whatever failed elsewhere.
	e = condEngine(t, grant, store.Tuple{Object: "resource:r", Relation: "act", Subject: "user:u2"},
		ctup(t, "group:g#member@user:u", "", nil), store.Tuple{Object: "resource:r", Relation: "act", Subject: "group:g#member"})
	if ok, err := e.Check(context.Background(), "user:u", "act", "resource:r"); !ok || err != nil {
		t.Errorf("missing parameter beside a granting path: %v, %v; want true", ok, err)
	}
}

// An expression that costs more than OpenFGA's limit is refused at
// evaluation: an error, as on the OpenFGA server.
func TestConditionCostLimit(t *testing.T) {
	m, err := LoadModel(`model
  schema 1.1
type user
type resource
  relations
    define act: [user with heavy]
condition heavy(xs: list<string>) { xs.all(a, xs.all(b, a != b || a == b)) }
`)
	if err != nil {
		t.Fatal(err)
	}
	var xs []any
	for i := 0; i < 200; i++ {
		xs = append(xs, "x")
	}
	e := New(m, newMemReader([]store.Tuple{ctup(t, "resource:r#act@user:u", "heavy", map[string]any{"xs": xs})}))
	ok, err := e.Check(context.Background(), "user:u", "act", "resource:r")
	if ok || !errors.Is(err, ErrCondition) {
		t.Errorf("costly condition: %v, %v; want ErrCondition", ok, err)
	}
}

// Conditions are compiled once, at load: the model holds the programs.
func TestConditionsCompiledAtLoad(t *testing.T) {
	m, err := LoadModel(condModel)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Conditions()) != 12 {
		t.Fatalf("Conditions() = %v", m.Conditions())
	}
	for _, n := range m.Conditions() {
		if m.conds[n].prg == nil {
			t.Errorf("condition %s has no program after load", n)
		}
	}
	if got := m.ConditionSignature("office"); got != "office(cidr: string, source_ip: ipaddress)" {
		t.Errorf("ConditionSignature(office) = %q", got)
	}
}

// Explain names the condition and the values that decided, whether it
// granted or not.
func TestExplainNamesConditions(t *testing.T) {
	e := condEngine(t, ctup(t, "resource:r#act@user:u", "office", map[string]any{"cidr": "10.0.0.0/8"}))
	x, err := e.Explain(req(map[string]any{"source_ip": "10.1.2.3"}), "user:u", "act", "resource:r")
	if err != nil || !x.Allowed {
		t.Fatalf("Explain: %v, %v", x, err)
	}
	if s := x.String(); !strings.Contains(s, `resource:r#act@user:u (with office: cidr="10.0.0.0/8", source_ip=10.1.2.3)`) {
		t.Errorf("granting explanation lacks the condition:\n%s", s)
	}
	x, err = e.Explain(req(map[string]any{"source_ip": "127.0.0.2"}), "user:u", "act", "resource:r")
	if err != nil || x.Allowed {
		t.Fatalf("Explain: %v, %v", x, err)
	}
	un := x.Unmet()
	if len(un) != 1 || un[0].Condition != "office" || !strings.Contains(un[0].Values, "source_ip=127.0.0.2") {
		t.Errorf("Unmet() = %+v", un)
	}
	if s := x.String(); !strings.Contains(s, `condition office of resource:r#act@user:u is not met (cidr="10.0.0.0/8", source_ip=127.0.0.2)`) {
		t.Errorf("denying explanation lacks the condition:\n%s", s)
	}
}

// Writing a conditional tuple is validated as OpenFGA validates it.
func TestValidateConditionalTuple(t *testing.T) {
	m, err := LoadModel(condModel)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tuple, cond string
		ctx         map[string]any
		want        string // "" for valid
	}{
		{"resource:r#act@user:u", "office", map[string]any{"cidr": "10.0.0.0/8"}, ""},
		{"resource:r#act@user:u", "office", nil, ""},
		{"resource:r#act@user:u", "", nil, ""},
		{"resource:r#banned@user:u", "", nil, "resource#banned takes user only with a condition"},
		{"resource:r#banned@user:u", "on_shift", nil, "does not take condition on_shift for user"},
		{"resource:r#act@user:u", "nope", nil, `the model has no condition "nope"`},
		{"resource:r#act@user:u", "office", map[string]any{"cdir": "x"}, `condition office has no parameter "cdir"`},
		{"resource:r#act@user:u", "office", map[string]any{"cidr": 10.0}, "condition office, parameter cidr: want string"},
		{"resource:r#act@user:u", "", map[string]any{"cidr": "x"}, "a context is given but no condition"},
		{"resource:r#act@group:g#member", "office", nil, "does not take condition office for group"},
	} {
		tp := ctup(t, c.tuple, c.cond, c.ctx)
		err := m.ValidateTuple(tp)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s with %s: %v", c.tuple, c.cond, err)
		case c.want != "":
			wantInvalid(t, c.tuple+" with "+c.cond, err, c.want)
		}
	}
}

// Contextual tuples count for one question as if written: "would u reach
// r if u were in group g?"
func TestContextualTuples(t *testing.T) {
	e := condEngine(t, store.Tuple{Object: "resource:r", Relation: "act", Subject: "group:g#member"})
	ctx := context.Background()
	if ok, _ := e.Check(ctx, "user:u", "act", "resource:r"); ok {
		t.Fatal("u reaches r without the contextual tuple")
	}
	what := WithRequest(ctx, Request{Tuples: mustTuples(t, "group:g#member@user:u")})
	if ok, err := e.Check(what, "user:u", "act", "resource:r"); !ok || err != nil {
		t.Errorf("Check with a contextual membership: %v, %v", ok, err)
	}
	if got, err := e.ListObjects(what, "user:u", "act", "resource"); err != nil || !sameSet(got, []string{"resource:r"}) {
		t.Errorf("ListObjects with a contextual membership: %v, %v", got, err)
	}
	if got, err := e.ListUsers(what, "resource:r", "act", "user"); err != nil || !sameSet(got, []string{"user:u"}) {
		t.Errorf("ListUsers with a contextual membership: %v, %v", got, err)
	}
	if tree, err := e.Expand(what, "resource:r", "act"); err != nil || !strings.Contains(tree.String(), "user:u") {
		t.Errorf("Expand with a contextual membership: %v, %v", tree, err)
	}
	// A conditional contextual tuple is evaluated like a stored one.
	shift := ctup(t, "group:g#member@user:u", "on_shift",
		map[string]any{"start": "2025-01-01T08:00:00Z", "end": "2025-01-01T16:00:00Z"})
	for _, c := range []struct {
		now  string
		want bool
	}{{"2025-01-01T09:00:00Z", true}, {"2025-01-01T17:00:00Z", false}} {
		ctx := WithRequest(ctx, Request{Tuples: []store.Tuple{shift}, Context: map[string]any{"current_time": c.now}})
		if ok, err := e.Check(ctx, "user:u", "act", "resource:r"); ok != c.want || err != nil {
			t.Errorf("contextual shift at %s: %v, %v; want %v", c.now, ok, err, c.want)
		}
	}
	// The store was not touched: the next question is without it.
	if ok, _ := e.Check(ctx, "user:u", "act", "resource:r"); ok {
		t.Error("a contextual tuple outlived its question")
	}
}
