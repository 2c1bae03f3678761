package policy

import (
	"fmt"

	"github.com/sshbastion/bastion/store"
)

// BenchData is the benchmark data set: the default model and about a
// million tuples over 10 domains, 100 projects, 10k resources, 10k users
// and 1k groups nested three deep. Another program (an OpenFGA comparison)
// can load exactly the same data by calling GenerateBenchData with the same
// seed.
type BenchData struct {
	Model  string        // the model, in the OpenFGA DSL (DefaultModel)
	Tuples []store.Tuple // no tuple expires
	// Checks is a sample of Check questions: about half are allowed,
	// reached directly, through nested groups or down the tenancy tree.
	Checks []CheckQuery
	// ListObjects(ListSubject, "view", "resource") reaches about ListTarget
	// resources; ListExpected is that answer, computed by the generator
	// itself from how it built the data, independently of the engine.
	ListSubject  string
	ListExpected []string
}

// CheckQuery is one Check question.
type CheckQuery struct {
	Subject, Relation, Object string
}

// ListTarget is how many resources the ListObjects subject should reach.
const ListTarget = 1000

// benchShape sizes the data set; tests use a smaller one.
type benchShape struct {
	domains, projects, resources, users int
	groupsTop, groupsMid, groupsLeaf    int // three levels: top > mid > leaf
	leavesPerUser                       int // direct group memberships of each user
	actPerResource                      int // direct act tuples per resource
	listTarget                          int
}

var fullShape = benchShape{domains: 10, projects: 100, resources: 10000, users: 10000,
	groupsTop: 50, groupsMid: 200, groupsLeaf: 750, leavesPerUser: 8, actPerResource: 90, listTarget: ListTarget}

// GenerateBenchData builds the benchmark data set deterministically from
// seed. Shape:
//   - every user is in 8 leaf groups; each leaf group is in one mid group
//     (a fifth of them in two), each mid group in one top group;
//   - each project belongs to a domain (2 admin users each) and has 2 mid
//     groups as members, 1 leaf group as reviewer, 1 admin user, and in
//     3 of 10 projects a leaf group as viewer;
//   - each resource belongs to one project (100 per project) and has 90
//     users and 1 leaf group with act.
func GenerateBenchData(seed int64) BenchData { return generateBenchData(seed, fullShape) }

// splitmix64: a tiny PRNG whose sequence never changes between Go
// releases, so the data set stays the same for other programs.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix) intn(n int) int { return int(s.next() % uint64(n)) }

// distinct returns k distinct numbers in [0, n).
func (s *splitmix) distinct(k, n int) []int {
	seen := make(map[int]bool, k)
	out := make([]int, 0, k)
	for len(out) < k && len(out) < n {
		if v := s.intn(n); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// benchWorld remembers the structure, for the ListObjects oracle.
type benchWorld struct {
	shape                            benchShape
	users, groups, projects, domains []string
	resources                        []string
	userLeaves                       [][]int // user -> leaf group indexes (into groups)
	groupParents                     [][]int // group -> parent groups
	domainAdmins                     [][]int // domain -> users
	projDomain, projAdmin, projViewr []int   // projViewr: -1 if none
	projMembers                      [][]int
	resProject, resGroup             []int
	resUsers                         [][]int
}

func generateBenchData(seed int64, sh benchShape) BenchData {
	rng := splitmix(seed)
	w, ts := buildBenchWorld(&rng, sh)
	d := BenchData{Model: DefaultModel, Tuples: ts, Checks: w.checks(&rng, 1000)}
	d.ListSubject, d.ListExpected = w.listSubject()
	return d
}

// buildBenchWorld draws the structure and its tuples from rng (the
// unconditional data set; benchcond.go makes a share of them conditional).
func buildBenchWorld(rng *splitmix, sh benchShape) (*benchWorld, []store.Tuple) {
	w := &benchWorld{shape: sh}
	name := func(prefix string, n, width int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%0*d", prefix, width, i)
		}
		return out
	}
	nGroups := sh.groupsTop + sh.groupsMid + sh.groupsLeaf
	w.users = name("user:u", sh.users, 5)
	w.groups = name("group:g", nGroups, 4)
	w.projects = name("project:p", sh.projects, 3)
	w.domains = name("domain:d", sh.domains, 2)
	w.resources = name("resource:r", sh.resources, 5)
	top, mid := 0, sh.groupsTop
	leaf := mid + sh.groupsMid
	var ts []store.Tuple
	add := func(obj, rel, subj string) { ts = append(ts, store.Tuple{Object: obj, Relation: rel, Subject: subj}) }
	member := func(g int) string { return w.groups[g] + "#member" }

	w.groupParents = make([][]int, nGroups)
	for g := leaf; g < nGroups; g++ {
		parents := []int{mid + rng.intn(sh.groupsMid)}
		if rng.intn(5) == 0 {
			if p := mid + rng.intn(sh.groupsMid); p != parents[0] {
				parents = append(parents, p)
			}
		}
		w.groupParents[g] = parents
	}
	for g := mid; g < leaf; g++ {
		w.groupParents[g] = []int{top + rng.intn(sh.groupsTop)}
	}
	for g, ps := range w.groupParents {
		for _, p := range ps {
			add(w.groups[p], "member", member(g))
		}
	}
	w.userLeaves = make([][]int, sh.users)
	for u := range w.users {
		for _, l := range rng.distinct(sh.leavesPerUser, sh.groupsLeaf) {
			w.userLeaves[u] = append(w.userLeaves[u], leaf+l)
			add(w.groups[leaf+l], "member", w.users[u])
		}
	}
	w.domainAdmins = make([][]int, sh.domains)
	for d := range w.domains {
		w.domainAdmins[d] = rng.distinct(2, sh.users)
		for _, u := range w.domainAdmins[d] {
			add(w.domains[d], "admin", w.users[u])
		}
		add(w.domains[d], "reviewer", member(leaf+rng.intn(sh.groupsLeaf)))
	}
	for p := range w.projects {
		w.projDomain = append(w.projDomain, p%sh.domains)
		add(w.projects[p], "domain", w.domains[p%sh.domains])
		ms := rng.distinct(2, sh.groupsMid)
		for i := range ms {
			ms[i] += mid
			add(w.projects[p], "member", member(ms[i]))
		}
		w.projMembers = append(w.projMembers, ms)
		add(w.projects[p], "reviewer", member(leaf+rng.intn(sh.groupsLeaf)))
		w.projAdmin = append(w.projAdmin, rng.intn(sh.users))
		add(w.projects[p], "admin", w.users[w.projAdmin[p]])
		viewer := -1
		if rng.intn(10) < 3 {
			viewer = leaf + rng.intn(sh.groupsLeaf)
			add(w.projects[p], "viewer", member(viewer))
		}
		w.projViewr = append(w.projViewr, viewer)
	}
	for r := range w.resources {
		p := r % sh.projects
		w.resProject = append(w.resProject, p)
		add(w.resources[r], "project", w.projects[p])
		us := rng.distinct(sh.actPerResource, sh.users)
		w.resUsers = append(w.resUsers, us)
		for _, u := range us {
			add(w.resources[r], "act", w.users[u])
		}
		g := leaf + rng.intn(sh.groupsLeaf)
		w.resGroup = append(w.resGroup, g)
		add(w.resources[r], "act", member(g))
	}
	return w, ts
}
