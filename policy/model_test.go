package policy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/store"
)

func TestDefaultModelMatchesExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "examples", "model.fga"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(example, []byte(DefaultModel)) {
		t.Fatal("policy/model.fga and examples/model.fga differ: copy examples/model.fga over policy/model.fga")
	}
}

func TestDefaultModelRelations(t *testing.T) {
	m, err := LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"user":     nil,
		"group":    {"member"},
		"domain":   {"admin", "reviewer", "member", "view"},
		"project":  {"domain", "admin", "reviewer", "member", "viewer", "view", "act"},
		"resource": {"project", "admin", "reviewer", "member", "act", "view", "requestable", "forward_agent", "egress"},
	}
	if got := m.Types(); !slices.Equal(got, []string{"user", "group", "domain", "project", "resource"}) {
		t.Errorf("Types() = %v", got)
	}
	for typ, rels := range want {
		if got := m.Relations(typ); !slices.Equal(got, rels) {
			t.Errorf("Relations(%s) = %v, want %v", typ, got, rels)
		}
	}
	if got := m.DirectTypes("project", "viewer"); len(got) != 3 || got[1].String() != "user:*" {
		t.Errorf("DirectTypes(project, viewer) = %v", got)
	}
	if m.Source() != DefaultModel {
		t.Error("Source() is not the loaded text")
	}
}

func TestLoadModelErrors(t *testing.T) {
	const head = "model\n  schema 1.1\ntype user\n" // lines 1-3
	cases := []struct {
		name string
		dsl  string
		want []string // substrings, each of which the error must contain
	}{
		{"condition type error",
			head + "type doc\n  relations\n    define viewer: [user with nonempty]\n\ncondition nonempty(x: string) {\n  x != 1\n}\n",
			[]string{"model.fga:9: condition nonempty: found no matching overload for '_!=_'"}},
		{"condition not bool",
			head + "type doc\n  relations\n    define viewer: [user with c]\n\ncondition c(x: string) {\n  x + \"a\"\n}\n",
			[]string{"model.fga:9: condition c: the expression is of type string; a condition must be a bool"}},
		{"condition unknown variable on a later line",
			head + "type doc\n  relations\n    define viewer: [user with c]\n\ncondition c(x: string) {\n  x == \"a\" &&\n  y == \"b\"\n}\n",
			[]string{"model.fga:10: condition c: undeclared reference to 'y'"}},
		{"undefined condition",
			head + "type doc\n  relations\n    define viewer: [user with nope]\n",
			[]string{`model.fga:6: doc#viewer uses condition "nope", which the model does not define`}},
		{"syntax error",
			head + "type doc\n  relations\n    define viewer: [user] oor owner\n",
			[]string{"model.fga:6: syntax error"}},
		{"syntax error after comments keeps lines",
			"# a comment\n\n" + head + "type doc\n  relations\n    define : [user]\n",
			[]string{"model.fga:8: syntax error"}},
		{"unknown type", head + "type doc\n  relations\n    define viewer: [usr]\n",
			[]string{`model.fga:6: doc#viewer: type "usr" is not defined`}},
		{"unknown userset relation", head + "type doc\n  relations\n    define viewer: [user, doc#editor]\n",
			[]string{`model.fga:6: doc#viewer: type "doc" has no relation "editor"`}},
		{"unknown computed relation", head + "type doc\n  relations\n    define owner: [user]\n    define viewer: owner or editor\n",
			[]string{`model.fga:7: doc#viewer: relation "editor" is not defined`}},
		{"unknown tupleset", head + "type doc\n  relations\n    define viewer: [user] or viewer from parent\n",
			[]string{`model.fga:6: doc#viewer: relation "parent" (after from)`}},
		{"tupleset with userset", head + "type doc\n  relations\n    define parent: [doc#viewer]\n    define viewer: [user] or viewer from parent\n",
			[]string{"model.fga:7: doc#viewer: doc#parent, used after from, may only list plain types"}},
		{"tupleset not direct", head + "type doc\n  relations\n    define p: [doc]\n    define parent: p\n    define viewer: [user] or viewer from parent\n",
			[]string{`model.fga:8: doc#viewer: "parent" after from must be a direct relation`}},
		{"from relation nowhere", head + "type doc\n  relations\n    define parent: [doc]\n    define viewer: [user] or owner from parent\n",
			[]string{`model.fga:7: doc#viewer: no type in doc#parent has relation "owner"`}},
		{"no entry point", head + "type doc\n  relations\n    define a: b\n    define b: a and c\n    define c: [user]\n",
			[]string{"model.fga:6: doc#a can never hold", "model.fga:7: doc#b can never hold"}},
		{"duplicate relation", head + "type doc\n  relations\n    define a: [user]\n    define a: [user]\n",
			[]string{"model.fga:7: syntax error", "already defined"}},
		{"duplicate type", head + "type user\n", []string{`model.fga:4: type "user" is already defined at line 3`}},
		{"schema 1.0", "model\n  schema 1.0\ntype user\n", []string{`model.fga:2: schema "1.0" is not supported`}},
		{"modular", "module bastion\n\ntype user\n", []string{"model.fga:1: modular models are not supported"}},
		{"empty", "", []string{"model.fga:1: syntax error"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := LoadModel(c.dsl)
			if err == nil {
				t.Fatalf("loaded %v, want an error", m.Types())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var me *ModelError
			if !errors.As(err, &me) {
				t.Errorf("error %T is not a *ModelError", err)
			}
		})
	}
}

func TestLoadModelFileNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "custom.fga")
	if err := os.WriteFile(p, []byte("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define v: [nobody]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadModelFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), "custom.fga:6: ") {
		t.Fatalf("error %v, want it to start with custom.fga:6:", err)
	}
	if _, err := LoadModelFile(filepath.Join(t.TempDir(), "missing.fga")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestValidateTuple(t *testing.T) {
	m, err := LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	good := []string{
		"resource:web-1#act@user:alice",
		"project:p#member@group:ops#member",
		"project:p#viewer@user:*",
		"resource:web-1#project@project:p",
		"domain:default#admin@user:root",
	}
	bad := []string{
		"resource:web-1#act@user:*",         // act takes no wildcard
		"resource:web-1#project@group:ops",  // parent must be a project
		"resource:web-1#view@group:ops",     // a group, not its members
		"resource:web-1#admin@user:alice",   // admin is computed only
		"resource:web-1#nope@user:alice",    // no such relation
		"server:web-1#act@user:alice",       // no such type
		"project:p#member@group:ops#admin",  // group has no admin
		"resource:web-1#act@project:p#view", // not an allowed userset
	}
	for _, s := range good {
		tp, err := ParseTuple(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.ValidateTuple(tp); err != nil {
			t.Errorf("ValidateTuple(%s): %v", s, err)
		}
	}
	for _, s := range bad {
		tp, err := ParseTuple(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.ValidateTuple(tp); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateTuple(%s) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestParseTuple(t *testing.T) {
	good := map[string]store.Tuple{
		"resource:web-1#act@user:alice":          {Object: "resource:web-1", Relation: "act", Subject: "user:alice"},
		"project:p#member@group:ops#member":      {Object: "project:p", Relation: "member", Subject: "group:ops#member"},
		"project:p#viewer@user:*":                {Object: "project:p", Relation: "viewer", Subject: "user:*"},
		"resource:db#act@user:alice@example.com": {Object: "resource:db", Relation: "act", Subject: "user:alice@example.com"},
		"resource:a@b#act@user:x":                {Object: "resource:a@b", Relation: "act", Subject: "user:x"},
	}
	for s, want := range good {
		got, err := ParseTuple(s)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseTuple(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"", "resource:web-1", "resource:web-1#act", "#act@user:a", "resource:web-1#@user:a",
		"resource:web-1#act@", "web-1#act@user:a", "resource:#act@user:a", ":x#act@user:a",
		"resource:web-1#act@alice", "resource:web-1#act@user:", "resource:web-1#act@user:a#",
		"resource:*#act@user:a", "resource:web 1#act@user:a", "resource:web-1#a ct@user:a",
		"resource:web-1#act@user:*#member", "resource:web-1#act@user:a*", "resource:web-1#act@*:*",
		"resource:web-1#act@user:a\n", "resource:web-1#act:x@user:a",
		// OpenFGA's id syntax: no ':' inside an id, no whitespace.
		"resource:ns:pod/x#act@user:x", "resource:a#act@user:kube:system-1", "resource:a:b:c#act@user:x",
		"resource:a\tb#act@user:x", "resource:a#act@group:x:y#member",
	} {
		if tp, err := ParseTuple(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTuple(%q) = %+v, %v; want ErrInvalid", s, tp, err)
		}
	}
}

// The condition example commented in the default model loads once
// enabled as its comment says, and decides by the caller's address.
func TestDefaultModelConditionExample(t *testing.T) {
	const act = "define act: [user, group#member] or admin or act from project"
	var b strings.Builder
	for _, ln := range strings.Split(DefaultModel, "\n") {
		switch {
		case strings.Contains(ln, act):
			ln = strings.Replace(ln, act, "define act: [user, group#member, user with from_office] or admin or act from project", 1)
		case strings.HasPrefix(ln, "# condition ") || strings.HasPrefix(ln, "#   source_ip") || ln == "# }":
			ln = strings.TrimPrefix(ln, "# ")
		}
		b.WriteString(ln + "\n")
	}
	m, err := LoadBastionModel(b.String())
	if err != nil {
		t.Fatalf("the enabled example does not load: %v\n%s", err, b.String())
	}
	grant := store.Tuple{Object: "resource:web-1", Relation: "act", Subject: "user:alice",
		Condition: "from_office", Context: map[string]any{"cidr": "10.0.0.0/8"}}
	if err := m.ValidateTuple(grant); err != nil {
		t.Fatal(err)
	}
	e := New(m, newMemReader([]store.Tuple{grant}))
	for ip, want := range map[string]bool{"10.1.2.3": true, "192.168.1.1": false} {
		ctx := WithRequest(context.Background(), Request{Context: map[string]any{ParamSourceIP: ip}})
		if ok, err := e.Check(ctx, "user:alice", "act", "resource:web-1"); err != nil || ok != want {
			t.Errorf("from %s: %v, %v; want %v", ip, ok, err, want)
		}
	}
}
