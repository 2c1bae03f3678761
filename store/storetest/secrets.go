package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sshbastion/bastion/store"
)

// testCreateSecret: create-if-absent is atomic. Of writers racing on one
// name, exactly one value is stored, and every writer is told that value.
func testCreateSecret(t *testing.T, st store.Store, _ *Clock) {
	ctx := context.Background()
	got, err := st.CreateSecret(ctx, "first", []byte("a"))
	if err != nil || string(got) != "a" {
		t.Fatalf("create: %q, %v", got, err)
	}
	got, err = st.CreateSecret(ctx, "first", []byte("b"))
	if err != nil || string(got) != "a" {
		t.Fatalf("create over an existing secret must return it: %q, %v", got, err)
	}
	if v, err := st.GetSecret(ctx, "first"); err != nil || string(v) != "a" {
		t.Fatalf("the existing secret was replaced: %q, %v", v, err)
	}
	const n = 8
	var wg sync.WaitGroup
	answers := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v, err := st.CreateSecret(ctx, "raced", []byte(fmt.Sprint(i)))
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			answers[i] = string(v)
		}(i)
	}
	wg.Wait()
	stored, err := st.GetSecret(ctx, "raced")
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range answers {
		if a != string(stored) {
			t.Fatalf("writer %d was told %q, but %q is stored", i, a, stored)
		}
	}
}
