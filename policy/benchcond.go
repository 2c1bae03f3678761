package policy

import (
	"fmt"
	"strings"

	"github.com/sshbastion/bastion/store"
)

// CondBenchData is the conditional benchmark data set (issue 17, part 7):
// the P3 structure at a smaller size, with about a tenth of the grants
// written as conditional tuples, and Check and ListObjects questions
// asked with varying request contexts. Another program (the OpenFGA
// comparison) loads exactly the same data by calling GenerateCondBenchData
// with the same seed. Context values are JSON values (string, float64,
// bool, []any, map[string]any), as they arrive over OpenFGA's API.
type CondBenchData struct {
	Model  string        // CondBenchModel
	Tuples []store.Tuple // some with Condition and Context; none expires
	Checks []CondQuery
	Lists  []CondList
	// Contexts names the request contexts the questions draw from, in
	// the order of CondQuery.ContextName, for the report.
	Contexts []string
}

// CondQuery is one Check question with its request context and
// contextual tuples.
type CondQuery struct {
	CheckQuery
	ContextName string         // which of the request contexts
	Context     map[string]any // the request context
	Contextual  []store.Tuple  // contextual tuples (often none)
}

// CondList is one ListObjects question with its request context.
type CondList struct {
	Subject, Relation, Type string
	ContextName             string
	Context                 map[string]any
}

// CondBenchModel is DefaultModel with conditional type restrictions, and
// an exclusion, over three conditions that between them use the
// parameter types ipaddress, string, timestamp, duration, list<string>,
// map<int> and int. strong fails to evaluate (a CEL "no such key") when
// the caller's acr is not in the grant's rank map.
const CondBenchModel = `model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member, user with strong]

type domain
  relations
    define admin: [user, group#member]
    define reviewer: [user, group#member] or admin
    define member: [user, group#member] or admin
    define view: member

type project
  relations
    define domain: [domain]
    define admin: [user, group#member, user with shift] or admin from domain
    define reviewer: [user, group#member] or admin or reviewer from domain
    define member: [user, group#member, group#member with shift] or admin
    define viewer: [user, user:*, group#member]
    define view: member or viewer
    define act: [user, group#member] or admin

type resource
  relations
    define project: [project]
    define admin: admin from project
    define reviewer: reviewer from project
    define member: member from project
    define act: [user, group#member, user with from_office, user with shift, user with strong, group#member with from_office] or admin or act from project
    define view: [user, group#member] or act or view from project
    define requestable: view from project
    define blocked: [user with shift]
    define safe_act: act but not blocked

condition from_office(source_ip: ipaddress, cidr: string) {
  source_ip.in_cidr(cidr)
}

condition shift(current_time: timestamp, start: timestamp, length: duration) {
  current_time >= start && current_time < start + length
}

condition strong(auth_method: string, methods: list<string>, acr: string, rank: map<int>, min_rank: int) {
  auth_method in methods && rank[acr] >= min_rank
}
`

var condShape = benchShape{domains: 2, projects: 20, resources: 1000, users: 1000,
	groupsTop: 5, groupsMid: 20, groupsLeaf: 75, leavesPerUser: 4, actPerResource: 20, listTarget: 100}

// condContexts are the request contexts, with how many in 20 questions
// use each: inside the office network and the shifts that start at 8:00,
// outside both, a mix, each parameter missing in turn, none at all, an
// acr the grants' rank maps lack (a CEL evaluation error), and an
// address that is not one (a bad value).
var condContexts = []struct {
	name   string
	weight int
	ctx    map[string]any
}{
	{"inside", 5, map[string]any{"source_ip": "10.1.2.3", "current_time": "2025-06-02T10:00:00Z", "auth_method": "cert", "acr": "phr"}},
	{"outside", 4, map[string]any{"source_ip": "192.0.2.7", "current_time": "2025-06-02T22:00:00Z", "auth_method": "publickey", "acr": "pwd"}},
	{"mixed", 3, map[string]any{"source_ip": "10.200.0.1", "current_time": "2025-06-02T21:00:00Z", "auth_method": "oidc", "acr": "otp"}},
	{"no-source-ip", 2, map[string]any{"current_time": "2025-06-02T10:00:00Z", "auth_method": "cert", "acr": "phr"}},
	{"no-time", 2, map[string]any{"source_ip": "10.1.2.3", "auth_method": "sk", "acr": "otp"}},
	{"empty", 1, map[string]any{}},
	{"unknown-acr", 2, map[string]any{"source_ip": "10.1.2.3", "current_time": "2025-06-02T10:00:00Z", "auth_method": "oidc", "acr": "none"}},
	{"bad-ip", 1, map[string]any{"source_ip": "not-an-address", "current_time": "2025-06-02T10:00:00Z", "auth_method": "cert", "acr": "phr"}},
}

// GenerateCondBenchData builds the conditional data set deterministically
// from seed: about 26k tuples, 3000 Check questions and 90 ListObjects
// questions.
func GenerateCondBenchData(seed int64) CondBenchData {
	rng := splitmix(seed)
	w, ts := buildBenchWorld(&rng, condShape)
	d := CondBenchData{Model: CondBenchModel}
	var conditional []int // indexes into d.Tuples of conditional act grants on users
	for _, t := range ts {
		objType := typeOf(t.Object)
		userSubj := strings.HasPrefix(t.Subject, "user:")
		switch {
		case objType == "group" && userSubj && rng.intn(100) < 3:
			t.Condition, t.Context = "strong", strongContext(&rng)
		case objType == "project" && t.Relation == "admin" && rng.intn(5) == 0:
			t.Condition, t.Context = "shift", shiftContext(&rng)
		case objType == "project" && t.Relation == "member" && rng.intn(10) == 0:
			t.Condition, t.Context = "shift", shiftContext(&rng)
		case objType == "resource" && t.Relation == "act" && !userSubj && rng.intn(5) == 0:
			t.Condition, t.Context = "from_office", officeContext(&rng)
		case objType == "resource" && t.Relation == "act" && userSubj && rng.intn(10) == 0:
			switch k := rng.intn(10); {
			case k < 5:
				t.Condition, t.Context = "from_office", officeContext(&rng)
			case k < 8:
				t.Condition, t.Context = "shift", shiftContext(&rng)
			default:
				t.Condition, t.Context = "strong", strongContext(&rng)
			}
			conditional = append(conditional, len(d.Tuples))
		}
		d.Tuples = append(d.Tuples, t)
	}
	// One in 20 resources blocks one of its act users during a shift.
	var blocked []store.Tuple
	for r, us := range w.resUsers {
		if rng.intn(20) == 0 {
			blocked = append(blocked, store.Tuple{Object: w.resources[r], Relation: "blocked",
				Subject: w.users[us[rng.intn(len(us))]], Condition: "shift", Context: shiftContext(&rng)})
		}
	}
	d.Tuples = append(d.Tuples, blocked...)
	for _, c := range condContexts {
		d.Contexts = append(d.Contexts, c.name)
	}
	pick := func() (string, map[string]any) {
		k := rng.intn(20)
		for _, c := range condContexts {
			if k < c.weight {
				return c.name, c.ctx
			}
			k -= c.weight
		}
		panic("condContexts weights do not add up to 20")
	}
	ask := func(q CheckQuery) {
		n, c := pick()
		cq := CondQuery{CheckQuery: q, ContextName: n, Context: c}
		if rng.intn(20) == 0 {
			cq.Contextual = []store.Tuple{contextualTuple(&rng, w, q)}
		}
		d.Checks = append(d.Checks, cq)
	}
	// The P3 mix, then questions aimed at the conditional grants and the
	// exclusion, so that a condition is on the path of most questions.
	for _, q := range w.checks(&rng, 1500) {
		ask(q)
	}
	for i := 0; i < 1500; i++ {
		switch i % 3 {
		case 0, 1:
			t := d.Tuples[conditional[rng.intn(len(conditional))]]
			rel := []string{"act", "view", "safe_act"}[rng.intn(3)]
			ask(CheckQuery{t.Subject, rel, t.Object})
		default:
			t := blocked[rng.intn(len(blocked))]
			ask(CheckQuery{t.Subject, "safe_act", t.Object})
		}
	}
	for i := 0; i < 90; i++ {
		n, c := pick()
		rel := []string{"act", "view", "safe_act"}[i%3]
		d.Lists = append(d.Lists, CondList{Subject: w.users[rng.intn(len(w.users))], Relation: rel, Type: "resource",
			ContextName: n, Context: c})
	}
	return d
}

// officeContext fixes the network of a from_office grant; one in ten
// also fixes source_ip, which then wins over the request's.
func officeContext(rng *splitmix) map[string]any {
	c := map[string]any{"cidr": []string{"10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24", "172.16.0.0/12"}[rng.intn(4)]}
	if rng.intn(10) == 0 {
		c["source_ip"] = []string{"10.9.9.9", "172.16.5.5"}[rng.intn(2)]
	}
	return c
}

// shiftContext fixes a shift's start and length; one in ten also fixes
// current_time, which then wins over the request's.
func shiftContext(rng *splitmix) map[string]any {
	c := [][2]string{{"2025-06-02T08:00:00Z", "8h"}, {"2025-06-02T20:00:00Z", "4h"}, {"2025-06-01T00:00:00Z", "90m"},
		{"2025-06-02T09:30:00Z", "1h30m"}}[rng.intn(4)]
	ctx := map[string]any{"start": c[0], "length": c[1]}
	if rng.intn(10) == 0 {
		ctx["current_time"] = []string{"2025-06-02T09:00:00Z", "2025-05-01T00:00:00Z"}[rng.intn(2)]
	}
	return ctx
}

// strongContext fixes which login methods and how strong an acr a grant
// wants; one in ten also fixes auth_method.
func strongContext(rng *splitmix) map[string]any {
	methods := []any{"cert", "sk"}
	if rng.intn(2) == 0 {
		methods = append(methods, "oidc")
	}
	c := map[string]any{"methods": methods, "rank": map[string]any{"pwd": 1.0, "otp": 2.0, "phr": 3.0},
		"min_rank": float64(2 + rng.intn(2))}
	if rng.intn(10) == 0 {
		c["auth_method"] = "cert"
	}
	return c
}

// contextualTuple is a contextual tuple for q: the subject as a member of
// one of the object's act groups, or a direct grant, conditional or not.
func contextualTuple(rng *splitmix, w *benchWorld, q CheckQuery) store.Tuple {
	var r int
	if _, err := fmt.Sscanf(q.Object, "resource:r%d", &r); err != nil || r >= len(w.resGroup) || !strings.HasPrefix(q.Subject, "user:") {
		return store.Tuple{Object: w.groups[0], Relation: "member", Subject: q.Subject}
	}
	switch rng.intn(3) {
	case 0:
		return store.Tuple{Object: w.groups[w.resGroup[r]], Relation: "member", Subject: q.Subject}
	case 1:
		return store.Tuple{Object: q.Object, Relation: "act", Subject: q.Subject, Condition: "from_office",
			Context: map[string]any{"cidr": "10.0.0.0/8"}}
	default:
		return store.Tuple{Object: q.Object, Relation: "act", Subject: q.Subject}
	}
}
