package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/store"
)

func testRecordings(t *testing.T, s store.Store, _ *Clock) {
	ctx := context.Background()
	if err := s.ReadRecording(ctx, "nope", func([]byte) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing recording: %v", err)
	}
	var want strings.Builder
	for i := 0; i < 300; i++ {
		chunk := fmt.Sprintf("[%d, \"o\", \"line %d\"]\n", i, i)
		want.WriteString(chunk)
		if err := s.AppendRecording(ctx, "s-1", []byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendRecording(ctx, "s-10", []byte("other")); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	if err := s.ReadRecording(ctx, "s-1", func(c []byte) error { got.Write(c); return nil }); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("recording came back out of order or mixed with another (%d vs %d bytes)", got.Len(), want.Len())
	}
	stop := errors.New("stop")
	if err := s.ReadRecording(ctx, "s-1", func([]byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error not returned: %v", err)
	}
}
