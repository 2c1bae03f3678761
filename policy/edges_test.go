package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The edge cases where the OpenFGA server answers an error, or a "no",
// that a looser engine would get wrong (issue 17, part 5).

const edgeModel = `model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define viewer: [user] but not restricted
    define restricted: [user, document#viewer]
    define editor: [user, group#member]
    define both: editor and viewer
`

func edgeEngine(t *testing.T, tuples ...string) *Engine {
	t.Helper()
	m, err := LoadModel(edgeModel)
	if err != nil {
		t.Fatal(err)
	}
	return New(m, newMemReader(mustTuples(t, tuples...)))
}

// wantInvalid asserts err is an ErrInvalid naming want.
func wantInvalid(t *testing.T, what string, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want ErrInvalid naming %q", what, err, want)
	}
}

// A subject whose type, or userset relation, the model lacks is an error
// in Check and ListObjects, not a "no" or an empty list.
func TestUnknownSubjectIsAnError(t *testing.T) {
	e := edgeEngine(t, "document:1#editor@user:u", "group:g#member@user:u")
	ctx := context.Background()
	for _, c := range []struct{ subj, want string }{
		{"usr:u", `subject type "usr" is not in the model`},
		{"group:g#owner", `type "group" has no relation "owner"`},
		{"usr:u#member", `subject type "usr" is not in the model`},
		{"usr:*", `subject type "usr" is not in the model`},
	} {
		ok, err := e.Check(ctx, c.subj, "editor", "document:1")
		wantInvalid(t, "Check("+c.subj+")", err, c.want)
		if ok {
			t.Errorf("Check(%s) allowed", c.subj)
		}
		_, err = e.Explain(ctx, c.subj, "editor", "document:1")
		wantInvalid(t, "Explain("+c.subj+")", err, c.want)
		got, err := e.ListObjects(ctx, c.subj, "editor", "document")
		wantInvalid(t, "ListObjects("+c.subj+")", err, c.want)
		if len(got) != 0 {
			t.Errorf("ListObjects(%s) = %v", c.subj, got)
		}
	}
	// The object's type is an error too (it always was), now named as such.
	_, err := e.Check(ctx, "user:u", "editor", "doc:1")
	wantInvalid(t, "Check(doc:1)", err, `type "doc" is not in the model`)
	_, err = e.ListObjects(ctx, "user:u", "editor", "doc")
	wantInvalid(t, "ListObjects(doc)", err, `type "doc" is not in the model`)
}

// A ListUsers filter naming a type, or a userset relation, the model
// lacks is an error, not an empty list.
func TestUnknownListUsersFilterIsAnError(t *testing.T) {
	e := edgeEngine(t, "document:1#editor@group:g#member", "group:g#member@user:u")
	ctx := context.Background()
	for _, c := range []struct{ filter, want string }{
		{"usr", `type "usr" is not in the model`},
		{"group#owner", `type "group" has no relation "owner"`},
		{"grp#member", `type "grp" is not in the model`},
	} {
		got, err := e.ListUsers(ctx, "document:1", "editor", c.filter)
		wantInvalid(t, "ListUsers("+c.filter+")", err, c.want)
		if len(got) != 0 {
			t.Errorf("ListUsers(%s) = %v", c.filter, got)
		}
	}
	if got, err := e.ListUsers(ctx, "document:1", "editor", "group#member"); err != nil || len(got) != 1 {
		t.Errorf("ListUsers(group#member) = %v, %v; want [group:g#member]", got, err)
	}
}

// Tuple writes: an unknown subject type or userset relation, and a
// subject type outside the relation's type restrictions, are refused,
// each with its own reason; so is a contextual tuple that could not be
// written.
func TestTupleWriteValidation(t *testing.T) {
	m, err := LoadModel(edgeModel + `type folder
  relations
    define viewer: [user with office]
    define parent: [document]
condition office(source_ip: ipaddress) {
  source_ip.in_cidr("10.0.0.0/8")
}
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tuple, want string }{
		{"document:1#editor@usr:u", `subject type "usr" is not in the model`},
		{"document:1#editor@group:g#owner", `type "group" has no relation "owner"`},
		{"document:1#editor@document:2", "document#editor accepts only [user, group#member]"},
		{"document:1#editor@group:g", "document#editor accepts only [user, group#member]"},
		{"document:1#editor@user:*", "document#editor accepts only [user, group#member]"},
		{"doc:1#editor@user:u", `type "doc" is not in the model`},
		{"document:1#owner@user:u", `type "document" has no relation "owner"`},
		// A restriction "[user with office]" takes no unconditional user.
		{"folder:1#viewer@user:u", "folder#viewer takes user only with a condition"},
	} {
		tp, err := ParseTuple(c.tuple)
		if err != nil {
			t.Fatalf("%s: %v", c.tuple, err)
		}
		wantInvalid(t, "ValidateTuple("+c.tuple+")", m.ValidateTuple(tp), c.want)
	}
	e := New(m, newMemReader(nil))
	ctx := WithRequest(context.Background(), Request{Tuples: mustTuples(t, "document:1#editor@usr:u")})
	_, err = e.Check(ctx, "user:u", "editor", "document:1")
	wantInvalid(t, "Check with a bad contextual tuple", err, `subject type "usr" is not in the model`)
}

// Ids follow OpenFGA's syntax: one ':' between type and id, and no '#',
// '*' or whitespace in the id.
func TestOpenFGAIDSyntax(t *testing.T) {
	e := edgeEngine(t, "document:1#editor@user:u")
	ctx := context.Background()
	for _, s := range []string{
		"document:a:b:c#editor@user:u", "document:1#editor@user:a:b", "document:a#b#editor@user:u",
		"document:a b#editor@user:u", "document:1#editor@user:a\tb", "document:1#editor@group:g:h#member",
	} {
		if tp, err := ParseTuple(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTuple(%q) = %+v, %v; want ErrInvalid", s, tp, err)
		}
	}
	for _, c := range []struct{ subj, obj string }{
		{"user:u", "document:a:b:c"}, {"user:a:b", "document:1"}, {"user:a b", "document:1"},
		{"user:u", "document:x y"}, {"group:g:h#member", "document:1"},
	} {
		if _, err := e.Check(ctx, c.subj, "editor", c.obj); !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%s, editor, %s): %v, want ErrInvalid", c.subj, c.obj, err)
		}
	}
	if _, err := e.ListObjects(ctx, "user:a:b", "editor", "document"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ListObjects(user:a:b): %v, want ErrInvalid", err)
	}
	if _, err := e.ListUsers(ctx, "document:a:b", "editor", "user"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ListUsers(document:a:b): %v, want ErrInvalid", err)
	}
}

// A cycle through "but not" never grants: viewer is [user] but not
// restricted, and restricted includes document:1#viewer itself. OpenFGA
// answers false; so must Check, Explain, ListObjects and ListUsers.
func TestCycleThroughButNotNeverGrants(t *testing.T) {
	e := edgeEngine(t, "document:1#viewer@user:u", "document:1#restricted@document:1#viewer",
		"document:2#viewer@user:u")
	ctx := context.Background()
	for _, c := range []struct {
		rel, obj string
		want     bool
	}{
		{"viewer", "document:1", false},
		{"restricted", "document:1", false},
		{"viewer", "document:2", true}, // no cycle there
	} {
		ok, err := e.Check(ctx, "user:u", c.rel, c.obj)
		if err != nil || ok != c.want {
			t.Errorf("Check(user:u, %s, %s) = %v, %v; want %v", c.rel, c.obj, ok, err, c.want)
		}
		x, err := e.Explain(ctx, "user:u", c.rel, c.obj)
		if err != nil || x.Allowed != c.want {
			t.Errorf("Explain(user:u, %s, %s) = %v, %v; want %v", c.rel, c.obj, x.Allowed, err, c.want)
		}
	}
	got, err := e.ListObjects(ctx, "user:u", "viewer", "document")
	if err != nil || !sameSet(got, []string{"document:2"}) {
		t.Errorf("ListObjects(user:u, viewer) = %v, %v; want [document:2]", got, err)
	}
	got, err = e.ListObjects(ctx, "user:u", "restricted", "document")
	if err != nil || len(got) != 0 {
		t.Errorf("ListObjects(user:u, restricted) = %v, %v; want []", got, err)
	}
	users, err := e.ListUsers(ctx, "document:1", "viewer", "user")
	if err != nil || len(users) != 0 {
		t.Errorf("ListUsers(document:1, viewer) = %v, %v; want []", users, err)
	}
}

// A cycle through "and" never grants either: both is editor and viewer;
// with the viewer cycle above, both fails even where editor holds.
func TestCycleThroughAndNeverGrants(t *testing.T) {
	e := edgeEngine(t, "document:1#viewer@user:u", "document:1#restricted@document:1#viewer",
		"document:1#editor@user:u")
	ctx := context.Background()
	ok, err := e.Check(ctx, "user:u", "both", "document:1")
	if err != nil || ok {
		t.Errorf("Check(user:u, both, document:1) = %v, %v; want false", ok, err)
	}
	got, err := e.ListObjects(ctx, "user:u", "both", "document")
	if err != nil || len(got) != 0 {
		t.Errorf("ListObjects(user:u, both) = %v, %v; want []", got, err)
	}
}
