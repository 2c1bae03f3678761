package commands

import (
	"slices"
	"testing"
)

func TestJoinTextFlags(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"create", "web-1", "--reason", "INC-7", "look", "at", "logs"}, []string{"create", "web-1", "--reason=INC-7 look at logs"}},
		{[]string{"create", "web-1", "--reason", "INC-7 quoted", "--ttl", "30m"}, []string{"create", "web-1", "--reason=INC-7 quoted", "--ttl", "30m"}},
		{[]string{"create", "a", "--reason=two", "words", "-w"}, []string{"create", "a", "--reason=two words", "-w"}},
		{[]string{"create", "a", "--reason"}, []string{"create", "a", "--reason"}},
		{[]string{"create", "a", "--ttl", "5m"}, []string{"create", "a", "--ttl", "5m"}},
		{[]string{"x", "--", "--reason", "a", "b"}, []string{"x", "--", "--reason", "a", "b"}},
	} {
		if got := joinTextFlags(c.in); !slices.Equal(got, c.want) {
			t.Errorf("joinTextFlags(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}
