package policy

import "sort"

// checks draws n Check questions of several kinds, about half allowed.
func (w *benchWorld) checks(rng *splitmix, n int) []CheckQuery {
	byLeaf := map[int][]int{} // leaf group -> resources it may act on
	for r, g := range w.resGroup {
		byLeaf[g] = append(byLeaf[g], r)
	}
	randUser := func() string { return w.users[rng.intn(len(w.users))] }
	randRes := func() int { return rng.intn(len(w.resources)) }
	out := make([]CheckQuery, 0, n)
	for i := 0; len(out) < n; i++ {
		switch i % 10 {
		case 0, 1, 2, 3: // mostly denied: the full walk
			out = append(out, CheckQuery{randUser(), "act", w.resources[randRes()]})
		case 4, 5: // a direct act tuple
			r := randRes()
			u := w.resUsers[r][rng.intn(len(w.resUsers[r]))]
			out = append(out, CheckQuery{w.users[u], "act", w.resources[r]})
		case 6: // act through a group the user is in
			u := rng.intn(len(w.users))
			rs := byLeaf[w.userLeaves[u][rng.intn(len(w.userLeaves[u]))]]
			if len(rs) > 0 {
				out = append(out, CheckQuery{w.users[u], "act", w.resources[rs[rng.intn(len(rs))]]})
			}
		case 7: // view: often through nested groups and the project
			out = append(out, CheckQuery{randUser(), "view", w.resources[randRes()]})
		case 8: // a domain admin, down the tenancy tree
			r := randRes()
			admins := w.domainAdmins[w.projDomain[w.resProject[r]]]
			out = append(out, CheckQuery{w.users[admins[0]], "act", w.resources[r]})
		case 9:
			out = append(out, CheckQuery{randUser(), "requestable", w.resources[randRes()]})
		}
	}
	return out
}

// listSubject picks, among the first few hundred users, the one whose
// view reach is closest to the target, and returns it with that reach.
func (w *benchWorld) listSubject() (string, []string) {
	candidates := min(300, len(w.users))
	actBy := make([]map[int]bool, candidates)
	for r, us := range w.resUsers {
		for _, u := range us {
			if u < candidates {
				if actBy[u] == nil {
					actBy[u] = map[int]bool{}
				}
				actBy[u][r] = true
			}
		}
	}
	best, bestDist := -1, 0
	var bestSet []string
	for u := 0; u < candidates; u++ {
		set := w.viewReach(u, actBy[u])
		dist := len(set) - w.shape.listTarget
		if dist < 0 {
			dist = -dist
		}
		if best < 0 || dist < bestDist {
			best, bestDist, bestSet = u, dist, set
		}
	}
	return w.users[best], bestSet
}

// viewReach computes, from the generator's own records, the resources user
// u may view under the default model: act (direct, through a group, or as
// project/domain admin) or view of the project (member, viewer, admin).
func (w *benchWorld) viewReach(u int, acts map[int]bool) []string {
	in := map[int]bool{} // groups u is in, transitively
	var climb func(g int)
	climb = func(g int) {
		if in[g] {
			return
		}
		in[g] = true
		for _, p := range w.groupParents[g] {
			climb(p)
		}
	}
	for _, l := range w.userLeaves[u] {
		climb(l)
	}
	domainAdmin := func(d int) bool {
		for _, a := range w.domainAdmins[d] {
			if a == u {
				return true
			}
		}
		return false
	}
	projAdmin := func(p int) bool { return w.projAdmin[p] == u || domainAdmin(w.projDomain[p]) }
	projView := func(p int) bool {
		for _, g := range w.projMembers[p] {
			if in[g] {
				return true
			}
		}
		return projAdmin(p) || (w.projViewr[p] >= 0 && in[w.projViewr[p]])
	}
	var out []string
	for r := range w.resources {
		p := w.resProject[r]
		if acts[r] || in[w.resGroup[r]] || projAdmin(p) || projView(p) {
			out = append(out, w.resources[r])
		}
	}
	sort.Strings(out)
	return out
}
