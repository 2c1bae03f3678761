package sftp

import (
	"os"
	"testing"
)

func TestSplitPod(t *testing.T) {
	for hp, want := range map[string]podPath{
		"/":                      {inner: "/"},
		"/ns":                    {ns: "ns", inner: "/", depth: 1},
		"/ns/web/":               {ns: "ns", pod: "web", inner: "/", depth: 2},
		"/ns/web/main":           {ns: "ns", pod: "web", container: "main", inner: "/", depth: 3},
		"/ns/web/main/tmp/a b":   {ns: "ns", pod: "web", container: "main", inner: "/tmp/a b", depth: 4},
		"/ns/web/main/../other":  {ns: "ns", pod: "web", container: "other", inner: "/", depth: 3},
		"/ns/web/main/tmp/../..": {ns: "ns", pod: "web", inner: "/", depth: 2},
	} {
		if got := splitPod(hp); got != want {
			t.Errorf("splitPod(%q) = %+v, want %+v", hp, got, want)
		}
	}
}

func TestParseStat(t *testing.T) {
	out := "81a4 15 1700000000 0 0 index.html\n41ed 4096 1700000001 1000 1000 a dir\na1ff 7 1 0 0 link\nbroken line\n"
	got := parseStat(out)
	if len(got) != 3 {
		t.Fatalf("parseStat: %d entries, want 3: %+v", len(got), got)
	}
	if got[0].name != "index.html" || got[0].size != 15 || got[0].mode != 0o644 {
		t.Errorf("file: %+v", got[0])
	}
	if got[1].name != "a dir" || !got[1].IsDir() || got[1].mode.Perm() != 0o755 || got[1].uid != 1000 {
		t.Errorf("dir: %+v", got[1])
	}
	if got[2].mode&os.ModeSymlink == 0 {
		t.Errorf("link: %+v", got[2])
	}
	if p := unixPerm(os.ModeSetuid | os.ModeSticky | 0o750); p != 0o5750 {
		t.Errorf("unixPerm = %o", p)
	}
}
