package badger

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/sshbastion/bastion/store"
)

// TestWriteTuplesLargerThanOneTxn exercises the documented chunking path:
// a call whose index entries exceed one transaction still lands whole.
func TestWriteTuplesLargerThanOneTxn(t *testing.T) {
	s, err := Open("", Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Each tuple is two index entries, so this is twice the entry limit.
	n := int(s.db.MaxBatchCount())
	add := make([]store.Tuple, n)
	for i := range add {
		add[i] = store.Tuple{Object: fmt.Sprintf("resource:r%d", i%1000), Relation: "act", Subject: fmt.Sprintf("user:u%d", i)}
	}
	ctx := context.Background()
	if err := s.WriteTuples(ctx, add, nil); err != nil {
		t.Fatal(err)
	}
	ts, err := s.ListTuples(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != n {
		t.Fatalf("%d tuples stored, want %d", len(ts), n)
	}
	ts, err = s.TuplesBySubject(ctx, fmt.Sprintf("user:u%d", n-1), "resource")
	if err != nil || len(ts) != 1 {
		t.Fatalf("last tuple by subject: %v, %v", ts, err)
	}
}
