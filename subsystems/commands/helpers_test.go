package commands

import (
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	if got, err := parseSince("1h", now); err != nil || !got.Equal(now.Add(-time.Hour)) {
		t.Fatalf("1h: %v %v", got, err)
	}
	if got, err := parseSince("2030-01-01T00:00:00Z", now); err != nil || got.Hour() != 0 {
		t.Fatalf("RFC 3339: %v %v", got, err)
	}
	if _, err := parseSince("yesterday", now); err == nil {
		t.Fatal("nonsense accepted")
	}
}

func TestBastionEndpoint(t *testing.T) {
	for in, want := range map[string][2]string{
		"ssh -p 2222 localhost": {"localhost", "2222"},
		"ssh bastion.example":   {"bastion.example", "22"},
		"ssh bastion -p 2200":   {"bastion", "2200"},
		"":                      {"localhost", "22"},
	} {
		if n, p := bastionEndpoint(in); n != want[0] || p != want[1] {
			t.Errorf("bastionEndpoint(%q) = %s %s", in, n, p)
		}
	}
}

func TestMemberSubject(t *testing.T) {
	for in, want := range map[string]string{"alice": "user:alice", "group:ops": "group:ops#member",
		"group:ops#member": "group:ops#member", "user:bob": "user:bob"} {
		if got := memberSubject(in); got != want {
			t.Errorf("memberSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateResource(t *testing.T) {
	r := store.Resource{Name: "web-1", Kind: "ssh", Address: "10.0.0.5:2201"}
	if err := validateResource(&r, []string{"env=prod"}); err != nil {
		t.Fatal(err)
	}
	if r.Project != "default" || len(r.Ports) != 1 || r.Ports[0] != 22 || r.Labels["env"] != "prod" {
		t.Fatalf("defaults not applied: %+v", r)
	}
	bad := []store.Resource{
		{Name: "x", Kind: "ftp", Address: "a:1"},
		{Name: "x", Kind: "tcp", Address: "nohostport"},
		{Name: "x y", Kind: "tcp", Address: "a:1"},
		{Name: "x", Kind: "tcp", Address: "a:1", Ports: []int{70000}},
		{Name: "x", Kind: "tcp", Address: "[:1"},
	}
	for _, b := range bad {
		b := b
		if err := validateResource(&b, nil); err == nil {
			t.Errorf("accepted %+v", b)
		}
	}
	r2 := store.Resource{Name: "x", Kind: "tcp", Address: "a:1"}
	if err := validateResource(&r2, []string{"novalue"}); err == nil {
		t.Error("label without = accepted")
	}
}
