package policy

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sshbastion/bastion/store"
)

// TestListObjectsConditionErrorOnPath: a condition that cannot be
// evaluated on a tuple the reverse walk follows toward the target fails
// the whole ListObjects, as OpenFGA v1.22.1 answers it (below its result
// limit), even when every object it would list is also reached another
// way. A failing condition on a tuple that cannot lead to the target does
// not. Found by the conditional OpenFGA comparison (bench/policycmp -cond).
func TestListObjectsConditionErrorOnPath(t *testing.T) {
	m, err := LoadModel(`model
  schema 1.1
type user
type group
  relations
    define member: [user, user with shift]
type folder
  relations
    define owner: [user with shift]
type doc
  relations
    define viewer: [user, group#member]
    define blocked: [user with shift]
    define reader: viewer but not blocked

condition shift(current_time: timestamp, start: timestamp) {
  current_time >= start
}
`)
	if err != nil {
		t.Fatal(err)
	}
	shift := func(obj, rel string) store.Tuple {
		return store.Tuple{Object: obj, Relation: rel, Subject: "user:u", Condition: "shift",
			Context: map[string]any{"start": "2025-01-01T00:00:00Z"}}
	}
	base := []store.Tuple{
		{Object: "doc:1", Relation: "viewer", Subject: "user:u"},
		{Object: "doc:1", Relation: "viewer", Subject: "group:g#member"},
	}
	for _, tc := range []struct {
		name    string
		extra   store.Tuple
		rel     string
		want    []string // nil: a condition error
		ctx     map[string]any
		wantErr bool
	}{
		{name: "on the path, unevaluable", extra: shift("group:g", "member"), rel: "viewer", wantErr: true},
		{name: "on the path, evaluable", extra: shift("group:g", "member"), rel: "viewer",
			ctx: map[string]any{"current_time": "2025-06-01T00:00:00Z"}, want: []string{"doc:1"}},
		{name: "off the path", extra: shift("folder:f", "owner"), rel: "viewer", want: []string{"doc:1"}},
		{name: "subtracted side, not walked", extra: shift("folder:f", "owner"), rel: "reader", want: []string{"doc:1"}},
		{name: "subtracted side, confirmed by check", extra: shift("doc:1", "blocked"), rel: "reader", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(m, newMemReader(append(slices.Clone(base), tc.extra)))
			ctx := WithRequest(context.Background(), Request{Context: tc.ctx})
			got, err := e.ListObjects(ctx, "user:u", tc.rel, "doc")
			if tc.wantErr {
				if !errors.Is(err, ErrCondition) {
					t.Fatalf("ListObjects = %v, %v; want an ErrCondition error", got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ListObjects = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
