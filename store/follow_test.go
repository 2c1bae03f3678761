package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// flakyFeed closes its first watch after one change, as a lost etcd
// connection would; the second watch stays open.
type flakyFeed struct {
	mu      sync.Mutex
	watches int
}

func (f *flakyFeed) Rev(context.Context) (uint64, error) { return 7, nil }

func (f *flakyFeed) Watch(ctx context.Context, from uint64) (<-chan Change, error) {
	f.mu.Lock()
	f.watches++
	n := f.watches
	f.mu.Unlock()
	ch := make(chan Change, 1)
	ch <- Change{Rev: from + 1, Kind: KindTuple, Key: "t"}
	if n == 1 {
		close(ch)
		return ch, nil
	}
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// Follow watches again after a watch ended, tells the consumer both times
// (so that it re-reads), and stops with its context.
func TestFollowWatchesAgain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	opened, closed, changes := 0, 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, &flakyFeed{}, Follower{
			Opened: func(context.Context) { mu.Lock(); opened++; mu.Unlock() },
			Closed: func() { mu.Lock(); closed++; mu.Unlock() },
			Change: func(_ context.Context, c Change) {
				mu.Lock()
				changes++
				mu.Unlock()
				if c.Rev != 8 {
					t.Errorf("change of rev %d, want 8", c.Rev)
				}
			},
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := opened == 2 && changes == 2
		mu.Unlock()
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if opened != 2 || closed != 1 || changes != 2 {
		t.Fatalf("opened %d, closed %d, changes %d; want 2, 1, 2", opened, closed, changes)
	}
}
