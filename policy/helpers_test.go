package policy

import (
	"testing"

	"github.com/sshbastion/bastion/store"
)

func mustTuples(t testing.TB, ss ...string) []store.Tuple {
	t.Helper()
	out := make([]store.Tuple, len(ss))
	for i, s := range ss {
		tp, err := ParseTuple(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = tp
	}
	return out
}
