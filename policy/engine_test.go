package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

var tenancyTuples = []string{
	"domain:acme#admin@user:root",
	"project:payments#domain@domain:acme",
	"resource:web-1#project@project:payments",
	"project:payments#member@group:ops#member",
	"group:ops#member@group:oncall#member",
	"group:oncall#member@user:alice",
	"resource:web-1#act@user:alice",
}

func defaultEngine(t *testing.T, tuples []string, opts ...Option) *Engine {
	t.Helper()
	m, err := LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	return New(m, newMemReader(mustTuples(t, tuples...)), opts...)
}

func TestExplainAllowed(t *testing.T) {
	e := defaultEngine(t, tenancyTuples)
	x, err := e.Explain(context.Background(), "user:root", "act", "resource:web-1")
	if err != nil {
		t.Fatal(err)
	}
	want := `allowed: user:root act resource:web-1
  resource:web-1#act
  <- resource:web-1#admin (computed)
  <- project:payments#admin (via resource:web-1#project@project:payments)
  <- domain:acme#admin (via project:payments#domain@domain:acme)
  <- domain:acme#admin@user:root
`
	if x.String() != want {
		t.Errorf("got\n%s\nwant\n%s", x, want)
	}
	x, err = e.Explain(context.Background(), "user:alice", "member", "resource:web-1")
	if err != nil {
		t.Fatal(err)
	}
	want = `allowed: user:alice member resource:web-1
  resource:web-1#member
  <- project:payments#member (via resource:web-1#project@project:payments)
  <- project:payments#member@group:ops#member
  <- group:ops#member@group:oncall#member
  <- group:oncall#member@user:alice
`
	if x.String() != want {
		t.Errorf("got\n%s\nwant\n%s", x, want)
	}
}

func TestExplainDenied(t *testing.T) {
	e := defaultEngine(t, tenancyTuples)
	x, err := e.Explain(context.Background(), "user:bob", "act", "resource:web-1")
	if err != nil {
		t.Fatal(err)
	}
	s := x.String()
	for _, want := range []string{
		"denied: user:bob act resource:web-1",
		"resource:web-1#act = [user, group#member] or admin or act from project",
		"direct: 1 tuple(s), none grants user:bob",
		"domain:acme#admin = [user, group#member]",
		"project:payments#admin: already evaluated (no)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("explanation lacks %q:\n%s", want, s)
		}
	}
	if x.Allowed || len(x.Path) != 0 {
		t.Errorf("denied explanation has Allowed=%v, path %v", x.Allowed, x.Path)
	}
}

func TestExplainOperators(t *testing.T) {
	m, err := LoadModel(`model
  schema 1.1
type user
type doc
  relations
    define editor: [user]
    define approved: [user]
    define blocked: [user]
    define can_share: (editor and approved) but not blocked
`)
	if err != nil {
		t.Fatal(err)
	}
	e := New(m, newMemReader(mustTuples(t, "doc:1#editor@user:amy", "doc:1#approved@user:amy")))
	x, err := e.Explain(context.Background(), "user:amy", "can_share", "doc:1")
	if err != nil {
		t.Fatal(err)
	}
	want := `allowed: user:amy can_share doc:1
  doc:1#can_share
  <- doc:1#can_share: all of
    <- doc:1#editor (computed)
    <- doc:1#editor@user:amy
    <- doc:1#approved (computed)
    <- doc:1#approved@user:amy
  <- but not blocked: does not hold
`
	if x.String() != want {
		t.Errorf("got\n%s\nwant\n%s", x, want)
	}
}

// chain returns tuples nesting group g1 > g2 > ... > gn > user:deep, and
// doc:top#viewer@group:g1#member.
func chain(n int) []string {
	var ts []string
	for i := 1; i < n; i++ {
		ts = append(ts, fmt.Sprintf("group:g%d#member@group:g%d#member", i, i+1))
	}
	return append(ts, fmt.Sprintf("group:g%d#member@user:deep", n), "doc:top#viewer@group:g1#member")
}

const docModel = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, group#member]
`

func docEngine(t *testing.T, tuples []string, opts ...Option) *Engine {
	t.Helper()
	m, err := LoadModel(docModel)
	if err != nil {
		t.Fatal(err)
	}
	return New(m, newMemReader(mustTuples(t, tuples...)), opts...)
}

func TestDepthLimit(t *testing.T) {
	ctx := context.Background()
	// doc:top#viewer, then one hop per group: 24 groups need 25 hops.
	ok, err := docEngine(t, chain(DefaultMaxDepth-1)).Check(ctx, "user:deep", "viewer", "doc:top")
	if err != nil || !ok {
		t.Fatalf("chain within the default limit: %v, %v", ok, err)
	}
	e := docEngine(t, chain(DefaultMaxDepth))
	if _, err := e.Check(ctx, "user:deep", "viewer", "doc:top"); !errors.Is(err, ErrDepthExceeded) {
		t.Fatalf("Check past the default limit: %v, want ErrDepthExceeded", err)
	}
	if _, err := e.Explain(ctx, "user:deep", "viewer", "doc:top"); !errors.Is(err, ErrDepthExceeded) {
		t.Errorf("Explain: %v, want ErrDepthExceeded", err)
	}
	if _, err := e.ListObjects(ctx, "user:deep", "viewer", "doc"); !errors.Is(err, ErrDepthExceeded) {
		t.Errorf("ListObjects: %v, want ErrDepthExceeded", err)
	}
	if _, err := e.ListUsers(ctx, "doc:top", "viewer", "user"); !errors.Is(err, ErrDepthExceeded) {
		t.Errorf("ListUsers: %v, want ErrDepthExceeded", err)
	}
	if _, err := e.Expand(ctx, "doc:top", "viewer"); !errors.Is(err, ErrDepthExceeded) {
		t.Errorf("Expand: %v, want ErrDepthExceeded", err)
	}
	ok, err = docEngine(t, chain(DefaultMaxDepth), WithMaxDepth(DefaultMaxDepth+1)).Check(ctx, "user:deep", "viewer", "doc:top")
	if err != nil || !ok {
		t.Fatalf("with a raised limit: %v, %v", ok, err)
	}
}

func TestDepthErrorDoesNotMaskAGrant(t *testing.T) {
	// doc:top reaches user:deep only past the limit, and user:near at once.
	ts := append(chain(DefaultMaxDepth+5), "doc:top#viewer@group:near#member", "group:near#member@user:near")
	e := docEngine(t, ts)
	ok, err := e.Check(context.Background(), "user:near", "viewer", "doc:top")
	if err != nil || !ok {
		t.Errorf("user:near: %v, %v; want true", ok, err)
	}
	// For anyone else the answer is unknown, not "no".
	if _, err := e.Check(context.Background(), "user:far", "viewer", "doc:top"); !errors.Is(err, ErrDepthExceeded) {
		t.Errorf("user:far: %v, want ErrDepthExceeded", err)
	}
}

// rawReader serves tuples as they are, expired ones included.
type rawReader struct{ *memReader }

func TestEngineDropsExpiredTuplesItself(t *testing.T) {
	ts := mustTuples(t, "doc:1#viewer@group:g#member", "group:g#member@user:ann", "doc:2#viewer@user:ann")
	ts[1].Expires = time.Now().Add(-time.Minute)
	ts[2].Expires = time.Now().Add(-time.Minute)
	r := newMemReader(ts)
	r.expiring = false // the reader no longer filters: the engine must
	m, err := LoadModel(docModel)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := New(m, rawReader{r})
	for _, obj := range []string{"doc:1", "doc:2"} {
		if ok, err := e.Check(ctx, "user:ann", "viewer", obj); ok || err != nil {
			t.Errorf("Check(ann, viewer, %s) = %v, %v; want false", obj, ok, err)
		}
	}
	if got, err := e.ListObjects(ctx, "user:ann", "viewer", "doc"); len(got) != 0 || err != nil {
		t.Errorf("ListObjects = %v, %v; want none", got, err)
	}
	if got, err := e.ListUsers(ctx, "doc:1", "viewer", "user"); len(got) != 0 || err != nil {
		t.Errorf("ListUsers = %v, %v; want none", got, err)
	}
	if tr, err := e.Expand(ctx, "doc:1", "viewer"); err != nil || strings.Contains(tr.String(), "user:ann") {
		t.Errorf("Expand shows an expired tuple: %v\n%s", err, tr)
	}
	// The engine's clock decides: an hour earlier the tuples were live.
	past := New(m, rawReader{r}, WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))
	if ok, err := past.Check(ctx, "user:ann", "viewer", "doc:1"); !ok || err != nil {
		t.Errorf("Check an hour ago = %v, %v; want true", ok, err)
	}
}

func TestInvalidQuestions(t *testing.T) {
	e := defaultEngine(t, tenancyTuples)
	ctx := context.Background()
	for _, q := range [][3]string{
		{"user:alice", "act", "resource"},
		{"user:alice", "act", "resource:web-1#act"},
		{"user:alice", "fly", "resource:web-1"},
		{"user:alice", "act", "server:web-1"},
		{"alice", "act", "resource:web-1"},
		{"user:alice#", "act", "resource:web-1"},
	} {
		if _, err := e.Check(ctx, q[0], q[1], q[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check%v: %v, want ErrInvalid", q, err)
		}
	}
	if _, err := e.ListObjects(ctx, "user:alice", "fly", "resource"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ListObjects with unknown relation: %v", err)
	}
	if _, err := e.ListObjects(ctx, "alice", "act", "resource"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ListObjects with bad subject: %v", err)
	}
	if _, err := e.ListUsers(ctx, "resource:web-1", "act", "us er"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ListUsers with bad subject type: %v", err)
	}
	if _, err := e.Expand(ctx, "resource:web-1", "fly"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Expand with unknown relation: %v", err)
	}
}

type failingReader struct{ err error }

func (f failingReader) TuplesByObject(context.Context, string, string) ([]store.Tuple, error) {
	return nil, f.err
}

func (f failingReader) TuplesBySubject(context.Context, string, string) ([]store.Tuple, error) {
	return nil, f.err
}

func TestReaderErrorsAndCancellation(t *testing.T) {
	m, err := LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	e := New(m, failingReader{boom})
	ctx := context.Background()
	if ok, err := e.Check(ctx, "user:a", "act", "resource:r"); ok || !errors.Is(err, boom) {
		t.Errorf("Check = %v, %v; want the reader's error", ok, err)
	}
	if _, err := e.ListObjects(ctx, "user:a", "act", "resource"); !errors.Is(err, boom) {
		t.Errorf("ListObjects: %v", err)
	}
	if _, err := e.ListUsers(ctx, "resource:r", "act", "user"); !errors.Is(err, boom) {
		t.Errorf("ListUsers: %v", err)
	}
	if _, err := e.Expand(ctx, "resource:r", "act"); !errors.Is(err, boom) {
		t.Errorf("Expand: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	e = defaultEngine(t, tenancyTuples)
	if ok, err := e.Check(cctx, "user:alice", "act", "resource:web-1"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Check with a cancelled context = %v, %v", ok, err)
	}
	if _, err := e.ListObjects(cctx, "user:alice", "act", "resource"); !errors.Is(err, context.Canceled) {
		t.Errorf("ListObjects with a cancelled context: %v", err)
	}
}

func TestSetModelWhileChecking(t *testing.T) {
	open, err := LoadModel(docModel)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := LoadModel(strings.Replace(docModel, "define viewer: [user, group#member]",
		"define viewer: [user, group#member] but not blocked\n    define blocked: [user]", 1))
	if err != nil {
		t.Fatal(err)
	}
	e := New(open, newMemReader(mustTuples(t, "doc:1#viewer@user:ann", "doc:1#blocked@user:ann")))
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seen [2]int
	var mu sync.Mutex
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ok, err := e.Check(ctx, "user:ann", "viewer", "doc:1")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if ok {
					seen[1]++
				} else {
					seen[0]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 200; i++ {
		if i%2 == 0 {
			e.SetModel(closed)
		} else {
			e.SetModel(open)
		}
		time.Sleep(50 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	e.SetModel(nil) // ignored
	if e.Model() != open {
		t.Error("SetModel(nil) replaced the model")
	}
	if ok, _ := e.Check(ctx, "user:ann", "viewer", "doc:1"); !ok {
		t.Error("with the open model ann should view")
	}
	e.SetModel(closed)
	if ok, _ := e.Check(ctx, "user:ann", "viewer", "doc:1"); ok {
		t.Error("with the closed model ann should not view")
	}
	t.Logf("answers while swapping: %d no, %d yes", seen[0], seen[1])
}

// The storage interface a backend provides is a TupleReader.
var _ TupleReader = store.Tuples(nil)
