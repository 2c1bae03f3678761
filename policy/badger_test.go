package policy_test

import (
	"context"
	"testing"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// The fixtures also run against the embedded badger store, which is what
// the bastion uses: the engine must agree with itself on every backend.
func TestFixturesOnBadger(t *testing.T) {
	policy.RunFixtures(t, func(t *testing.T, tuples []store.Tuple) policy.TupleReader {
		st, err := badger.Open("", badger.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.WriteTuples(context.Background(), tuples, nil); err != nil {
			t.Fatal(err)
		}
		return st
	})
}
