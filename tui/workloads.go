package tui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Workloads may be implemented by a Backend that reaches kube Resources:
// the picker then lists, under each kube Resource the user expands, the
// namespaces, pods and services the user's own Kubernetes RBAC lets them
// list. Nothing is listed before the user expands a Resource.
type Workloads interface {
	// Workloads lists them for the kube Resource resource, in the
	// namespaces it may list and in those the user named (n), for users
	// who may not list namespaces. An error with a listing is a partial
	// answer (e.g. namespaces may not be listed): both show.
	Workloads(ctx context.Context, resource string, named []string) ([]Namespace, error)
}

// Namespace is what the user may list of one namespace.
type Namespace struct {
	Name      string
	Pods      []Pod
	Services  []Service
	Forbidden []string // what the user's RBAC did not let them list
}

// Pod is one pod, with its status as kubectl shows it.
type Pod struct {
	Name, Status, Ready string
	Ports               []int
}

// Service is one Service; Forwardable is false when no tunnel reaches it.
type Service struct {
	Name, Type  string
	Ports       []int
	Forwardable bool
}

// PodRef names a pod below a kube Resource.
type PodRef struct{ Resource, Namespace, Name string }

// workloadTimeout bounds one listing, whatever the backend does: a
// cluster that does not answer must not keep the row loading forever.
const workloadTimeout = 15 * time.Second

// wrow is one row below an expanded kube Resource.
type wrow struct {
	kind        string // "ns", "pod", "svc" or "note"
	ns, name    string
	status      string // a pod's status and readiness, a Service's type, a note's text
	ports       []int
	forwardable bool
	err         bool // a note that is an error
}

// kubeTree is what the picker knows of one kube Resource's workloads.
type kubeTree struct {
	loading bool
	rows    []wrow
	seq     int
	named   []string // namespaces the user named (n)
}

// nsPrompt asks for a namespace to list under a kube Resource.
type nsPrompt struct {
	active   bool
	resource string
	f        field
}

type workloadsMsg struct {
	resource string
	seq      int
	list     []Namespace
	err      error
}

// line is one row of the picker: a Resource (sub < 0) or a row of its
// workloads.
type line struct{ item, sub int }

// expand shows the workloads of the kube Resource it, listing them now.
func (m *model) expand(it Item) tea.Cmd {
	if m.expanded == nil {
		m.expanded, m.trees = map[string]bool{}, map[string]*kubeTree{}
	}
	m.expanded[it.Name] = true
	t := m.trees[it.Name]
	if t == nil {
		t = &kubeTree{}
		m.trees[it.Name] = t
	}
	t.seq++
	t.loading = true
	if len(t.rows) == 0 {
		t.rows = []wrow{{kind: "note", status: "loading the workloads…"}}
	}
	m.refilter()
	ctx, b, name, seq, limit, named := m.ctx, m.backend, it.Name, t.seq, m.listTimeout, append([]string(nil), t.named...)
	if limit <= 0 {
		limit = workloadTimeout
	}
	return func() tea.Msg {
		w, ok := b.(Workloads)
		if !ok {
			return workloadsMsg{resource: name, seq: seq, err: errors.New("this bastion lists no kube workloads")}
		}
		lctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		list, err := w.Workloads(lctx, name, named)
		if err != nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("the workloads of %s did not come within %s; ctrl-r tries again", name, limit)
		}
		return workloadsMsg{resource: name, seq: seq, list: list, err: err}
	}
}

// collapse hides the workloads of name.
func (m *model) collapse(name string) {
	delete(m.expanded, name)
	m.refilter()
}

// workloadsLoaded applies a listing.
func (m model) workloadsLoaded(msg workloadsMsg) (tea.Model, tea.Cmd) {
	t := m.trees[msg.resource]
	if t == nil || msg.seq != t.seq {
		return m, nil // an older listing, or one the user collapsed
	}
	t.loading = false
	t.rows = nil
	if msg.err != nil {
		t.rows = append(t.rows, wrow{kind: "note", status: msg.err.Error(), err: true})
	}
	for _, ns := range msg.list {
		t.rows = append(t.rows, wrow{kind: "ns", name: ns.Name, status: nsSummary(ns)})
		for _, p := range ns.Pods {
			t.rows = append(t.rows, wrow{kind: "pod", ns: ns.Name, name: p.Name, status: strings.TrimSpace(p.Status + " " + p.Ready), ports: p.Ports})
		}
		for _, s := range ns.Services {
			t.rows = append(t.rows, wrow{kind: "svc", ns: ns.Name, name: s.Name, status: s.Type, ports: s.Ports, forwardable: s.Forwardable})
		}
	}
	if len(t.rows) == 0 {
		t.rows = []wrow{{kind: "note", status: "no namespace with pods or services you may list"}}
	}
	m.refilter()
	if w := m.want; w.Name != "" && w.Resource == msg.resource {
		// Back from a pod's shell or logs: the pod is selected again.
		for i, l := range m.shown {
			if r, ok := m.subRow(l); ok && l.sub >= 0 && m.items[l.item].Name == w.Resource && r.kind == "pod" && r.ns == w.Namespace && r.name == w.Name {
				m.cursor = i
				m.scroll()
				break
			}
		}
		m.want = PodRef{}
	}
	return m, nil
}

func nsSummary(ns Namespace) string {
	s := fmt.Sprintf("%s, %s", plural(len(ns.Pods), "pod"), plural(len(ns.Services), "service"))
	if len(ns.Forbidden) > 0 {
		s += "; " + strings.Join(ns.Forbidden, ", ") + " forbidden by your Kubernetes RBAC"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// subRow is the workload row of l, if l is one.
func (m model) subRow(l line) (wrow, bool) {
	if l.sub < 0 {
		return wrow{}, false
	}
	t := m.trees[m.items[l.item].Name]
	if t == nil || l.sub >= len(t.rows) {
		return wrow{}, false
	}
	return t.rows[l.sub], true
}

// selectedLine is the row under the cursor.
func (m model) selectedLine() (line, bool) {
	if m.cursor < 0 || m.cursor >= len(m.shown) || m.shown[m.cursor].item >= len(m.items) {
		return line{}, false
	}
	return m.shown[m.cursor], true
}

// lineKey names a row across reloads.
func (m model) lineKey(l line) string {
	k := m.items[l.item].Name
	if r, ok := m.subRow(l); ok {
		k += "\x00" + r.kind + "\x00" + r.ns + "\x00" + r.name
	}
	return k
}

// matchesRow reports whether every word of the filter occurs in the row.
func (r wrow) matches(filter string) bool {
	hay := strings.ToLower(r.kind + " " + r.ns + " " + r.name + " " + r.status)
	for _, w := range strings.Fields(strings.ToLower(filter)) {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

// workloadCells are the NAME, KIND, PROJECT and LABELS cells of a
// workload row: the namespace stands in the project's column, the status
// and ports in the labels'.
func workloadCells(r wrow) []string {
	switch r.kind {
	case "ns":
		return []string{"  └ " + r.name, "ns", "", r.status}
	case "pod", "svc":
		rest := r.status
		if len(r.ports) > 0 {
			rest += " · " + portList(r.ports)
		}
		return []string{"      " + r.name, r.kind, r.ns, rest}
	}
	return []string{"  " + r.status, "", "", ""}
}

func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return "ports " + strings.Join(s, ",")
}

// workloadLines are the detail pane's lines of a workload row: what it is
// and the exact ssh -L that reaches it.
func workloadLines(host string, res string, r wrow) (info string, out []howto) {
	if host == "" {
		host = "ssh bastion"
	}
	a := parseHost(host)
	switch r.kind {
	case "pod", "svc":
		kind, path := "pod", "pods"
		if r.kind == "svc" {
			kind, path = "service", "services"
		}
		info = strings.Join([]string{kind, "namespace " + r.ns, r.status}, " · ")
		if len(r.ports) > 0 {
			info += " · " + portList(r.ports)
		}
		target := fmt.Sprintf("%s/%s/%s/%s", res, path, r.ns, r.name)
		switch {
		case r.kind == "svc" && !r.forwardable:
			out = append(out, howto{text: "This Service selects no pod (or has no port): no tunnel reaches it."})
		case len(r.ports) == 0:
			out = append(out, howto{label: "Forward", cmd: fmt.Sprintf("%s -N -L PORT:%s:PORT", host, target)})
		default:
			p := r.ports[0]
			out = append(out, howto{label: "Forward", cmd: fmt.Sprintf("%s -N -L %d:%s:%d", host, a.localPort(p), target, p)})
		}
		if r.kind == "pod" {
			out = append(out, howto{text: "Press enter for a shell in " + r.name + ", l for its logs (following)."})
		} else if r.forwardable && len(r.ports) > 0 {
			out = append(out, howto{text: fmt.Sprintf("Keep it open, then connect to localhost:%d; it reaches a ready pod behind %s.", a.localPort(r.ports[0]), r.name)})
		}
	case "ns":
		info = "namespace " + r.name + " · " + r.status
	default:
		info = r.status
	}
	return info, out
}
