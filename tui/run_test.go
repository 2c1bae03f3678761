package tui

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeBackend struct {
	mu     sync.Mutex
	killed []string

	pending   []Request
	requested []filed // RequestAccess calls
	decided   []decision
	refuse    error // what RequestAccess and Decide answer when set
}

type filed struct {
	resource, reason string
	ttl              time.Duration
}

type decision struct {
	id      string
	approve bool
	reason  string
}

func (f *fakeBackend) RequestAccess(_ context.Context, resource, reason string, ttl time.Duration) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return "", f.refuse
	}
	f.requested = append(f.requested, filed{resource, reason, ttl})
	return "r-test1", nil
}

func (f *fakeBackend) Pending(context.Context) ([]Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.pending...), nil
}

func (f *fakeBackend) Decide(_ context.Context, id string, approve bool, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.decided = append(f.decided, decision{id, approve, reason})
	var rest []Request
	for _, r := range f.pending {
		if r.ID != id {
			rest = append(rest, r)
		}
	}
	f.pending = rest
	return nil
}

func (f *fakeBackend) Resources(context.Context) ([]Item, error) { return sample, nil }
func (f *fakeBackend) Sessions(context.Context) ([]Session, error) {
	return []Session{{ID: "s1", Kind: "tcp", Resource: "db-1", Opened: time.Now(), Expires: time.Now().Add(time.Hour)}}, nil
}
func (f *fakeBackend) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.killed)
}

func (f *fakeBackend) Kill(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.killed = append(f.killed, id)
	return nil
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestRunPicksAResource drives Run over pipes as an SSH session would and
// checks that it returns promptly, without waiting on its pending Read.
func TestRunPicksAResource(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	out := &syncBuf{}
	done := make(chan Choice, 1)
	go func() {
		c, err := Run(context.Background(), Options{In: inR, Out: out, Width: 80, Height: 24, Env: []string{"TERM=xterm"}, Backend: &fakeBackend{}})
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	if _, err := io.WriteString(inW, "host-1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := io.WriteString(inW, "\r"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-done:
		if c.Open != "host-1" {
			t.Fatalf("choice %+v, want host-1", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after enter")
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if !strings.Contains(out.b.String(), "host-1") {
		t.Fatal("nothing rendered")
	}
}

func TestRunSessionsKill(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	b := &fakeBackend{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := Run(context.Background(), Options{In: inR, Out: &syncBuf{}, Width: 80, Height: 24, Backend: b}); err != nil {
			t.Error(err)
		}
	}()
	for _, k := range []string{"\t", "k"} {
		time.Sleep(150 * time.Millisecond)
		if _, err := io.WriteString(inW, k); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100 && b.count() == 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := io.WriteString(inW, "q"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("q did not quit")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.killed) != 1 || b.killed[0] != "s1" {
		t.Fatalf("killed %v, want [s1]", b.killed)
	}
}
