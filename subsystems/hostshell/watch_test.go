package hostshell

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/tui"
)

// testFeed hands out watches whose changes the test sends, and counts the
// watches open.
type testFeed struct {
	mu     sync.Mutex
	open   int
	opened int
	ch     chan store.Change // of the newest watch
	ended  chan struct{}     // receives when a watch's context ends
}

func newTestFeed() *testFeed { return &testFeed{ended: make(chan struct{}, 8)} }

func (f *testFeed) Rev(context.Context) (uint64, error) { return 1, nil }

func (f *testFeed) Watch(ctx context.Context, _ uint64) (<-chan store.Change, error) {
	ch := make(chan store.Change)
	out := make(chan store.Change)
	f.mu.Lock()
	f.open++
	f.opened++
	f.ch = ch
	f.mu.Unlock()
	go func() {
		defer func() {
			f.mu.Lock()
			f.open--
			f.mu.Unlock()
			close(out)
			f.ended <- struct{}{}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case c := <-ch:
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func (f *testFeed) send(t *testing.T, c store.Change) {
	t.Helper()
	f.mu.Lock()
	ch := f.ch
	f.mu.Unlock()
	select {
	case ch <- c:
	case <-time.After(5 * time.Second):
		t.Fatalf("the feed's consumer did not take %+v within 5 s", c)
	}
}

func recv(t *testing.T, ch <-chan tui.What, what string) tui.What {
	t.Helper()
	select {
	case w, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the channel closed", what)
		}
		return w
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing within 5 s", what)
	}
	return 0
}

// Every TUI of the process shares one watch; a TUI that does not read
// never holds the feed up, and finds what it missed ORed in one value;
// the last TUI to go ends the watch.
func TestWatchersShareOneWatchAndNeverBlock(t *testing.T) {
	f := newTestFeed()
	w := &watchers{feed: f, log: slog.Default()}
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	a, b := w.subscribe(ctxA), w.subscribe(ctxB)
	if got := recv(t, a, "A when the watch opened"); got != tui.ChangedAll {
		t.Fatalf("A on open: %b, want everything", got)
	}
	if got := recv(t, b, "B when the watch opened"); got != tui.ChangedAll {
		t.Fatalf("B on open: %b, want everything", got)
	}
	f.mu.Lock()
	if f.opened != 1 {
		t.Fatalf("%d watches for two TUIs, want 1", f.opened)
	}
	f.mu.Unlock()

	// A reads; B does not. Many changes pass all the same.
	f.send(t, store.Change{Kind: store.KindRequest, Key: "r-1"})
	if got := recv(t, a, "A after a request"); got != tui.ChangedRequests {
		t.Fatalf("A after a request: %b", got)
	}
	for i := 0; i < 50; i++ {
		f.send(t, store.Change{Kind: store.KindSession, Key: "s-1"})
	}
	// Nothing a TUI shows; the second one is taken only once the
	// consumer is done with everything before it.
	f.send(t, store.Change{Kind: store.KindUser, Key: "carol"})
	f.send(t, store.Change{Kind: store.KindUser, Key: "dave"})
	got := recv(t, b, "B after the burst")
	if want := tui.ChangedRequests | tui.ChangedSessions; got != want {
		t.Fatalf("B after the burst: %b, want %b", got, want)
	}
	select {
	case v := <-b:
		t.Fatalf("B has a second value %b: the burst was not coalesced", v)
	default:
	}

	// A grant is told twice: now, and once the caches have settled.
	drain(a)
	f.send(t, store.Change{Kind: store.KindTuple, Key: "resource:web-1#act@user:alice"})
	if got := recv(t, a, "A after a grant"); got&tui.ChangedResources == 0 {
		t.Fatalf("A after a grant: %b lacks the Resources", got)
	}
	if got := recv(t, a, "A once the grant settled"); got&tui.ChangedResources == 0 {
		t.Fatalf("A after the settle: %b lacks the Resources", got)
	}

	cancelA()
	waitClosed(t, a, "A")
	f.mu.Lock()
	if f.open != 1 {
		t.Fatalf("%d watches open with B still there, want 1", f.open)
	}
	f.mu.Unlock()
	cancelB()
	waitClosed(t, b, "B")
	select {
	case <-f.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch outlived the last TUI")
	}

	// A TUI after that opens a new watch.
	ctxC, cancelC := context.WithCancel(context.Background())
	defer cancelC()
	c := w.subscribe(ctxC)
	if got := recv(t, c, "C when the new watch opened"); got != tui.ChangedAll {
		t.Fatalf("C on open: %b", got)
	}
}

func drain(ch <-chan tui.What) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitClosed(t *testing.T, ch <-chan tui.What, who string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("%s's channel stays open after its context ended", who)
		}
	}
}

func TestWhatOf(t *testing.T) {
	for kind, want := range map[string]tui.What{
		store.KindTuple:    tui.ChangedResources | tui.ChangedRequests,
		store.KindModel:    tui.ChangedResources | tui.ChangedRequests,
		store.KindResource: tui.ChangedResources | tui.ChangedRequests,
		store.KindRequest:  tui.ChangedRequests,
		store.KindSession:  tui.ChangedSessions,
		store.KindReset:    tui.ChangedAll,
		store.KindKey:      0,
		store.KindCert:     0,
	} {
		if got := whatOf(store.Change{Kind: kind}); got != want {
			t.Errorf("whatOf(%s) = %b, want %b", kind, got, want)
		}
	}
}

// Without a feed the backend offers none, and the TUI polls.
func TestNoFeedNoChanges(t *testing.T) {
	b := &backend{m: New(Config{}, nil, nil, nil, nil, nil, nil, nil, nil)}
	if ch := b.Changes(context.Background()); ch != nil {
		t.Fatal("Changes without a feed is not nil")
	}
}
