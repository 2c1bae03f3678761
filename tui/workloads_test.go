package tui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// kubeBackend lists workloads and runs step-ups, counting the calls.
type kubeBackend struct {
	fakeBackend
	mu       sync.Mutex
	listed   []string
	named    []string
	list     []Namespace
	err      error
	block    bool // Workloads waits for its context
	items    []Item
	stepUps  []string
	stepErr  error
	released chan struct{}
}

func (k *kubeBackend) Resources(context.Context) ([]Item, error) { return k.items, nil }

func (k *kubeBackend) Workloads(ctx context.Context, resource string, named []string) ([]Namespace, error) {
	k.mu.Lock()
	k.listed = append(k.listed, resource)
	k.named = named
	k.mu.Unlock()
	if k.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return k.list, k.err
}

func (k *kubeBackend) StartStepUp(_ context.Context, resource string) (StepUpPrompt, error) {
	k.stepUps = append(k.stepUps, resource)
	return StepUpPrompt{Text: "  Open:  https://idp.example/device\n  Code:  ABCD-EFGH\n", Wait: func(ctx context.Context) (string, error) {
		if k.released != nil {
			select {
			case <-k.released:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return "step-up done", k.stepErr
	}}, nil
}

var kubeItems = []Item{
	{Name: "host-1", Kind: "ssh", Reachable: true},
	{Name: "prod", Kind: "kube", Project: "platform", Reachable: true},
	{Name: "stage", Kind: "kube", Reachable: true},
}

func newKubeModel(t *testing.T, k *kubeBackend, env ...string) model {
	t.Helper()
	if k.items == nil {
		k.items = kubeItems
	}
	m := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: 120, Height: 30, Env: env,
		User: "bob", Host: "ssh -p 2222 localhost", Backend: k})
	m.setItems(k.items)
	return m
}

func selectName(t *testing.T, m model, name string) model {
	t.Helper()
	for i, l := range m.shown {
		if l.sub < 0 && m.items[l.item].Name == name {
			m.cursor = i
			return m
		}
	}
	t.Fatalf("%s is not shown", name)
	return m
}

func TestWorkloadsListLazilyUnderTheResource(t *testing.T) {
	k := &kubeBackend{list: []Namespace{{Name: "default",
		Pods:     []Pod{{Name: "web", Status: "Running", Ready: "1/1", Ports: []int{8080}}},
		Services: []Service{{Name: "web-svc", Type: "ClusterIP", Ports: []int{80}, Forwardable: true}}}}}
	m := newKubeModel(t, k)
	if len(k.listed) != 0 {
		t.Fatalf("listed at start: %v", k.listed)
	}
	m = selectName(t, m, "prod")
	m, cmd := press(m, tea.KeyEnter)
	if !strings.Contains(m.View(), "loading the workloads") {
		t.Fatalf("no loading row:\n%s", m.View())
	}
	m, _ = do(t, m, cmd)
	if len(k.listed) != 1 || k.listed[0] != "prod" {
		t.Fatalf("listed %v, want only prod", k.listed)
	}
	v := m.View()
	for _, want := range []string{"└ default", "web", "Running 1/1", "ports 8080", "web-svc", "ClusterIP"} {
		if !strings.Contains(v, want) {
			t.Fatalf("the tree lacks %q:\n%s", want, v)
		}
	}
	// Down to the pod: its detail is the exact ssh -L, and enter picks it.
	m, _ = press(m, tea.KeyDown)
	m, _ = press(m, tea.KeyDown)
	if r, ok := m.subRow(m.lineAt(m.cursor)); !ok || r.name != "web" {
		t.Fatalf("the cursor is not on the pod: %+v", r)
	}
	if v := m.View(); !strings.Contains(v, "ssh -p 2222 localhost -N -L 8080:prod/pods/default/web:8080") {
		t.Fatalf("the pod's detail lacks its forward:\n%s", v)
	}
	nm, _ := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("l")})
	if c := nm.(model).choice; !c.Logs || c.Pod != (PodRef{"prod", "default", "web"}) || len(c.Expanded) != 1 {
		t.Fatalf("l chose %+v", c)
	}
	m, _ = press(m, tea.KeyDown)
	if v := m.View(); !strings.Contains(v, "-N -L 80:prod/services/default/web-svc:80") {
		t.Fatalf("the service's detail lacks its forward:\n%s", v)
	}
	m, _ = press(m, tea.KeyUp)
	m, _ = press(m, tea.KeyEnter)
	if c := m.choice; c.Logs || c.Pod.Name != "web" || !m.quitting {
		t.Fatalf("enter on the pod chose %+v", c)
	}
}

func TestWorkloadErrorsShowInline(t *testing.T) {
	k := &kubeBackend{err: errors.New("refused by the Kubernetes RBAC of prod: user \"carol\" may not list namespaces" + hostile),
		list: []Namespace{{Name: "default", Forbidden: []string{"pods", "services"}}}}
	m := newKubeModel(t, k, "TERM=dumb")
	m = selectName(t, m, "prod")
	m, cmd := press(m, tea.KeyRight)
	m, _ = do(t, m, cmd)
	v := m.View()
	if !strings.Contains(v, "refused by the Kubernetes RBAC of prod") || !strings.Contains(v, "pods, services forbidden by your") {
		t.Fatalf("the refusal is not inline:\n%s", v)
	}
	m, _ = press(m, tea.KeyDown)
	noRawControls(t, "workload error", m.View())
	// left collapses
	m, _ = press(m, tea.KeyLeft)
	if strings.Contains(m.View(), "refused by") {
		t.Fatalf("left did not collapse:\n%s", m.View())
	}
}

func TestWorkloadsTimeOut(t *testing.T) {
	k := &kubeBackend{block: true}
	m := newKubeModel(t, k)
	m.listTimeout = 300 * time.Millisecond
	m = selectName(t, m, "prod")
	m, cmd := press(m, tea.KeyEnter)
	start := time.Now()
	m, _ = do(t, m, cmd)
	if d := time.Since(start); d < m.listTimeout || d > m.listTimeout+2*time.Second {
		t.Fatalf("the listing took %s, not the bound %s", d, m.listTimeout)
	}
	if v := m.View(); !strings.Contains(v, "did not come within 300ms") {
		t.Fatalf("no timeout row:\n%s", v)
	}
}

func TestWorkloadNamesAreDrawnSafely(t *testing.T) {
	k := &kubeBackend{list: []Namespace{{Name: "ns" + hostile, Pods: []Pod{{Name: "pod" + hostile, Status: "Running" + hostile, Ports: []int{80}}},
		Services: []Service{{Name: "svc" + hostile, Type: hostile}}}}}
	m := newKubeModel(t, k, "TERM=dumb")
	m.width = 250
	m = selectName(t, m, "prod")
	m, cmd := press(m, tea.KeyEnter)
	m, _ = do(t, m, cmd)
	for i := 0; i < 3; i++ {
		m, _ = press(m, tea.KeyDown)
		noRawControls(t, "workload rows and detail", m.View())
	}
	if strings.Count(m.View(), "\n") != m.height-1 {
		t.Fatalf("a line break in a name added a line")
	}
}

func TestFilterFindsPodsAndBackKeepsTheTree(t *testing.T) {
	k := &kubeBackend{list: []Namespace{{Name: "default", Pods: []Pod{{Name: "web"}, {Name: "db"}}}}}
	m := newKubeModel(t, k)
	m = selectName(t, m, "prod")
	m, cmd := press(m, tea.KeyEnter)
	m, _ = do(t, m, cmd)
	m = typeKeys(m, "db")
	v := m.View()
	if !strings.Contains(v, "prod") || !strings.Contains(v, " db ") || strings.Contains(v, " web ") || strings.Contains(v, "host-1") {
		t.Fatalf("the filter did not narrow to the pod db under prod:\n%s", v)
	}
	// Back from the pod: expanded again, the pod selected.
	m2 := newModel(context.Background(), Options{Out: &strings.Builder{}, Width: 120, Height: 30, Backend: k,
		Expanded: []string{"prod"}, Selected: PodRef{"prod", "default", "db"}, Notice: "left pod default/db"})
	m2.setItems(k.items)
	cmd = m2.Init()
	for _, msg := range runBatch(cmd) {
		if wm, ok := msg.(workloadsMsg); ok {
			nm, _ := m2.Update(wm)
			m2 = nm.(model)
		}
	}
	if r, ok := m2.subRow(m2.lineAt(m2.cursor)); !ok || r.name != "db" {
		t.Fatalf("back from the pod, the cursor is on %+v:\n%s", r, m2.View())
	}
	if !strings.Contains(m2.View(), "left pod default/db") {
		t.Fatalf("the notice is not shown:\n%s", m2.View())
	}
}

// runBatch runs a command and, for a batch, its commands (not ticks).
func runBatch(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range b {
			if c == nil {
				continue
			}
			done := make(chan tea.Msg, 1)
			go func() { done <- c() }()
			select {
			case m := <-done:
				out = append(out, m)
			case <-time.After(time.Second):
			}
		}
		return out
	}
	return []tea.Msg{msg}
}

func TestStepUpMarkAndFlow(t *testing.T) {
	k := &kubeBackend{items: []Item{{Name: "host-1", Kind: "ssh", Reachable: true, StepUp: "it needs a strong login within 10m; your last strong login: none"}},
		released: make(chan struct{})}
	m := newKubeModel(t, k)
	v := m.View()
	if !strings.Contains(v, "^^ host-1") || !strings.Contains(v, "Needs a step-up: it needs a strong login within 10m") {
		t.Fatalf("the step-up is not marked:\n%s", v)
	}
	m, cmd := press(m, tea.KeyEnter)
	if m.quitting || !m.stepUp.active {
		t.Fatalf("enter did not start a step-up: %+v", m.choice)
	}
	m, cmd = do(t, m, cmd) // started: the prompt shows
	if v := m.View(); !strings.Contains(v, "ABCD-EFGH") || !strings.Contains(v, "Waiting for you to approve") {
		t.Fatalf("no prompt:\n%s", v)
	}
	close(k.released)
	m, _ = do(t, m, cmd)
	if !m.quitting || m.choice.Open != "host-1" {
		t.Fatalf("after the step-up, not on to host-1: %+v", m.choice)
	}
}

func TestStepUpEscGivesUpAndFailureShows(t *testing.T) {
	k := &kubeBackend{items: []Item{{Name: "prod", Kind: "kube", Reachable: true, StepUp: "needs it"}}, released: make(chan struct{})}
	m := newKubeModel(t, k)
	m, cmd := press(m, tea.KeyEnter)
	m, cmd = do(t, m, cmd)
	m, _ = press(m, tea.KeyEsc)
	if m.stepUp.active || !strings.Contains(m.View(), "given up") {
		t.Fatalf("esc did not give up:\n%s", m.View())
	}
	if msg := cmd(); msg.(stepUpDoneMsg).err == nil {
		t.Fatal("the wait did not end with the step-up")
	}
	k.stepErr = errors.New("the login was denied at the identity provider")
	close(k.released)
	m, cmd = press(m, tea.KeyEnter)
	m, cmd = do(t, m, cmd)
	m, _ = do(t, m, cmd)
	if v := m.View(); !strings.Contains(v, "step-up failed: the login was denied") {
		t.Fatalf("the failure is not shown:\n%s", v)
	}
}

func TestNamingANamespace(t *testing.T) {
	k := &kubeBackend{err: errors.New("may not list namespaces; press n to name yours")}
	m := newKubeModel(t, k)
	m = selectName(t, m, "prod")
	m, cmd := press(m, tea.KeyEnter)
	m, _ = do(t, m, cmd)
	m = typeKeys(m, "n")
	if !m.ns.active || !strings.Contains(m.View(), "Namespace to list in prod") {
		t.Fatalf("n did not ask for a namespace:\n%s", m.View())
	}
	m = typeKeys(m, "team-a")
	k.err, k.list = nil, []Namespace{{Name: "team-a", Pods: []Pod{{Name: "api", Status: "Running"}}}}
	m, cmd = press(m, tea.KeyEnter)
	m, _ = do(t, m, cmd)
	if len(k.named) != 1 || k.named[0] != "team-a" || !strings.Contains(m.View(), "└ team-a") || m.ns.active {
		t.Fatalf("named %v:\n%s", k.named, m.View())
	}
	// It is kept for the way back from a pod.
	m, _ = press(m, tea.KeyDown)
	m, _ = press(m, tea.KeyDown)
	m, _ = press(m, tea.KeyEnter)
	if got := m.choice.Named["prod"]; len(got) != 1 || got[0] != "team-a" {
		t.Fatalf("the choice lacks the named namespace: %+v", m.choice)
	}
}
