package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sshbastion/bastion/store"
)

var (
	fieldMarker   = regexp.MustCompile(`…\[truncated: (\d+) bytes, sha256:([0-9a-f]{64})\]$`)
	droppedMarker = regexp.MustCompile(`^…\[truncated: (\d+) details, (\d+) bytes, sha256:([0-9a-f]{64})\]$`)
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// within reports the first bound out breaks, or "".
func within(out store.Event) string {
	total := 0
	for _, f := range []struct {
		name, v string
		limit   int
	}{
		{"actor", out.Actor, MaxFieldSize}, {"target", out.Target, MaxFieldSize}, {"reason", out.Reason, MaxFieldSize},
		{"action", out.Action, MaxNameSize}, {"decision", out.Decision, MaxNameSize},
	} {
		if len(f.v) > f.limit {
			return fmt.Sprintf("%s of %d bytes", f.name, len(f.v))
		}
		if !utf8.ValidString(f.v) {
			return f.name + " is not valid UTF-8"
		}
		total += len(f.v)
	}
	if len(out.Details) > MaxDetails {
		return fmt.Sprintf("%d details", len(out.Details))
	}
	for k, v := range out.Details {
		if len(k) > MaxNameSize || len(v) > MaxFieldSize {
			return fmt.Sprintf("detail %.20q: key %d, value %d bytes", k, len(k), len(v))
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Sprintf("detail %.20q is not valid UTF-8", k)
		}
		total += len(k) + len(v)
	}
	if total > MaxEventSize {
		return fmt.Sprintf("event of %d bytes", total)
	}
	return ""
}

// checkClipped checks that out is in (made valid UTF-8), or a prefix of it
// followed by a marker giving in's length and SHA-256.
func checkClipped(t *testing.T, what, in, out string) {
	t.Helper()
	v := strings.ToValidUTF8(in, "\uFFFD")
	if out == v {
		return
	}
	m := fieldMarker.FindStringSubmatchIndex(out)
	if m == nil {
		t.Fatalf("%s changed without a marker: %.80q -> %.80q", what, in, out)
	}
	n, _ := strconv.Atoi(out[m[2]:m[3]])
	if n != len(in) || out[m[4]:m[5]] != sha(in) {
		t.Fatalf("%s: marker says %d bytes, sha256 %s; original has %d, %s", what, n, out[m[4]:m[5]], len(in), sha(in))
	}
	if !strings.HasPrefix(v, out[:m[0]]) {
		t.Fatalf("%s: kept text %.40q is not a prefix of the original", what, out[:m[0]])
	}
}

// checkBound checks every promise of Bound for one input.
func checkBound(t *testing.T, in store.Event) store.Event {
	t.Helper()
	out := Bound(in)
	if why := within(out); why != "" {
		t.Fatalf("Bound left %s", why)
	}
	if again := Bound(out); !reflect.DeepEqual(again, out) {
		t.Fatal("Bound is not idempotent")
	}
	if within(in) == "" && !reflect.DeepEqual(out, in) {
		t.Fatal("Bound changed an event that was within bounds")
	}
	checkClipped(t, "actor", in.Actor, out.Actor)
	checkClipped(t, "action", in.Action, out.Action)
	checkClipped(t, "target", in.Target, out.Target)
	checkClipped(t, "decision", in.Decision, out.Decision)
	checkClipped(t, "reason", in.Reason, out.Reason)
	if (in.Details == nil) != (out.Details == nil) {
		t.Fatalf("Details nil %v -> %v", in.Details == nil, out.Details == nil)
	}
	// Map every stored detail back to the caller's; the rest must be
	// accounted for by the dropped-details marker.
	raws := slices.Sorted(func(yield func(string) bool) {
		for k := range in.Details {
			if !yield(k) {
				return
			}
		}
	})
	sums := map[string]string{}
	for _, r := range raws {
		sums[r] = sha(r)
	}
	used := map[string]bool{}
	marker := ""
	for k, v := range out.Details {
		if _, own := in.Details[k]; k == DroppedDetailsKey && droppedMarker.MatchString(v) && (!own || in.Details[k] != v) {
			marker = v
			continue
		}
		raw, found := "", false
		if m := fieldMarker.FindStringSubmatch(k); m != nil {
			for _, r := range raws {
				if n, _ := strconv.Atoi(m[1]); n == len(r) && sums[r] == m[2] && !used[r] {
					raw, found = r, true
					break
				}
			}
		}
		for _, r := range raws {
			if !found && !used[r] && strings.ToValidUTF8(r, "\uFFFD") == k {
				raw, found = r, true
			}
		}
		if !found {
			t.Fatalf("stored detail key %.40q matches no original key", k)
		}
		used[raw] = true
		checkClipped(t, "detail key", raw, k)
		checkClipped(t, "detail value", in.Details[raw], v)
	}
	var dropped []string
	size, buf := 0, []byte(nil)
	for _, r := range raws {
		if !used[r] {
			dropped = append(dropped, r)
			size += len(r) + len(in.Details[r])
			buf = appendStr(appendStr(buf, r), in.Details[r])
		}
	}
	switch m := droppedMarker.FindStringSubmatch(marker); {
	case len(dropped) == 0 && marker != "":
		t.Fatalf("dropped-details marker %q with nothing dropped", marker)
	case len(dropped) > 0 && m == nil:
		t.Fatalf("%d details dropped without a marker", len(dropped))
	case len(dropped) > 0 && (m[1] != strconv.Itoa(len(dropped)) || m[2] != strconv.Itoa(size) || m[3] != sha(string(buf))):
		t.Fatalf("marker %q; dropped %d details of %d bytes, sha256 %s", marker, len(dropped), size, sha(string(buf)))
	}
	// Stored as JSON and read back, the bounded event hashes the same
	// (invalid UTF-8 would not), and encodedSize bounds its encoding.
	out.Seq, out.Time = math.MaxUint64, time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
	out.PrevHash, out.Hash = Genesis, Genesis
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := encodedSize(out); n < len(b) {
		t.Fatalf("encodedSize %d < JSON length %d", n, len(b))
	}
	var back store.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if Hash(back) != Hash(out) {
		t.Fatal("the bounded event does not hash the same after a JSON round trip")
	}
	return Bound(in)
}

func TestBoundLeavesSmallEventsAlone(t *testing.T) {
	in := store.Event{Actor: "user:alice", Action: "forward.open", Target: "resource:web-1", Decision: "allow",
		Reason: "act via group:ops#member", Details: map[string]string{"port": "5432", DroppedDetailsKey: "mine"}}
	out := checkBound(t, in)
	if reflect.ValueOf(out.Details).UnsafePointer() != reflect.ValueOf(in.Details).UnsafePointer() {
		t.Fatal("Bound copied the details of an event within bounds")
	}
}

func TestBoundTruncatesLongFields(t *testing.T) {
	long := strings.Repeat("a", 70000)
	out := checkBound(t, store.Event{Actor: long, Action: "auth.fail", Target: long, Details: map[string]string{"cmd": long}})
	want := "…[truncated: 70000 bytes, sha256:" + sha(long) + "]"
	for _, f := range []string{out.Actor, out.Target, out.Details["cmd"]} {
		if !strings.HasSuffix(f, want) || len(f) > MaxFieldSize || len(f) < MaxFieldSize-4 {
			t.Fatalf("field of %d bytes ending %q", len(f), f[max(0, len(f)-120):])
		}
	}
	// Multi-byte text is cut at a rune boundary.
	out = checkBound(t, store.Event{Actor: strings.Repeat("é", 6000), Action: strings.Repeat("ü", 200)})
	if !utf8.ValidString(out.Actor) || !utf8.ValidString(out.Action) || len(out.Action) > MaxNameSize {
		t.Fatalf("cut inside a rune: %q", out.Action)
	}
}

func TestBoundWholeEvent(t *testing.T) {
	d := map[string]string{}
	for i := range 60 {
		d[fmt.Sprintf("k%02d", i)] = strings.Repeat(string(rune('a'+i%26)), 8000) // 480 KB, each within MaxFieldSize
	}
	out := checkBound(t, store.Event{Action: "x", Details: d})
	// One common level: every value is cut to (about) the same length.
	lo, hi := MaxFieldSize, 0
	for _, v := range out.Details {
		lo, hi = min(lo, len(v)), max(hi, len(v))
	}
	if hi-lo > 4 || hi < 900 {
		t.Fatalf("values cut to between %d and %d bytes", lo, hi)
	}
}

func TestBoundDetails(t *testing.T) {
	d := map[string]string{DroppedDetailsKey: "caller's own"}
	for i := range 100 {
		d[fmt.Sprintf("k%03d", i)] = fmt.Sprint(i)
	}
	d[strings.Repeat("K", 1000)] = "long key"
	d["\xff"], d["\xfe"] = "collides", "with it" // both become U+FFFD
	out := checkBound(t, store.Event{Action: "x", Details: d})
	if len(out.Details) != MaxDetails || !droppedMarker.MatchString(out.Details[DroppedDetailsKey]) {
		t.Fatalf("%d details, marker %q", len(out.Details), out.Details[DroppedDetailsKey])
	}
	out = checkBound(t, store.Event{Action: "x", Details: map[string]string{"\xff": "a", "\xfe": "b"}})
	if len(out.Details) != 2 || out.Details["\uFFFD"] != "b" { // "\xfe" sorts first and is kept
		t.Fatalf("colliding keys: %q", out.Details)
	}
}

// TestBoundWorstCase: every field at its largest; the common level still
// leaves every field its minimum, so the bound always holds.
func TestBoundWorstCase(t *testing.T) {
	long, name := strings.Repeat("é", 10000), strings.Repeat("n", 20000)
	d := map[string]string{}
	for i := range 200 {
		d[fmt.Sprintf("%04d", i)+name] = long
	}
	checkBound(t, store.Event{Actor: long, Action: name, Target: strings.Repeat("\xffz", 10000),
		Decision: name, Reason: long, Details: d})
}

func TestJSONLenIsAnUpperBound(t *testing.T) {
	for _, s := range []string{"", "plain", "<&>\"\\", "\x00\x01\n\t\b\f\r", "\u2028\u2029", "\xff\xfe", "é€𝄞", "\u007f"} {
		b, _ := json.Marshal(s)
		if n := jsonLen(s) + 2; n < len(b) {
			t.Errorf("jsonLen(%q)+2 = %d < %d", s, n, len(b))
		}
	}
}

// FuzzBound checks Bound's promises on arbitrary events: within every
// bound, valid UTF-8, idempotent, small events unchanged, and every marker
// naming the length and SHA-256 of what it replaced. rep repeats the
// actor, target and first detail values (up to 80 KiB) so small inputs
// reach the bounds; details holds "key=value" lines; extra adds numbered
// details.
func FuzzBound(f *testing.F) {
	f.Add("user:alice", "forward.open", "resource:web-1", "allow", "ok", "port=22", uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, actor, action, target, decision, reason, details string, rep, extra uint16) {
		// Past 80 KiB (more than any bound) growing adds only time.
		grow := func(s string) string {
			n := 1 + int(rep)
			if len(s) > 0 {
				n = min(n, (80<<10)/len(s))
			}
			return strings.Repeat(s, max(n, 1))
		}
		e := store.Event{Actor: grow(actor), Action: action, Target: grow(target), Decision: decision, Reason: reason}
		if details != "" || extra > 0 {
			e.Details = map[string]string{}
		}
		grown := 0
		for line := range strings.SplitSeq(details, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				if grown++; grown <= 4 {
					v = grow(v)
				}
				e.Details[k] = v
			}
		}
		for i := range int(extra % 300) {
			e.Details["x"+strconv.Itoa(i)] = details
		}
		checkBound(t, e)
	})
}
