package commands

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/tui/termsafe"
)

func TestParseBefore(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"90d":                  now.AddDate(0, 0, -90),
		"720h":                 now.Add(-720 * time.Hour),
		"2030-01-01":           time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		"2030-05-01T10:00:00Z": time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC),
	} {
		if got, err := parseBefore(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseBefore(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "x d", "-3d", "2031-01-01", "-1h"} {
		if _, err := parseBefore(bad, now); err == nil {
			t.Errorf("parseBefore(%q) accepted", bad)
		}
	}
}

func TestAuditArchiveCommand(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := badger.Open("", badger.Options{InMemory: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := audit.New(st, audit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	base := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	for i := 1; i <= 20; i++ {
		if _, err := l.Append(context.Background(), store.Event{Time: base.Add(time.Duration(i) * time.Minute),
			Actor: "alice", Action: "forward.open"}); err != nil {
			t.Fatal(err)
		}
	}
	now := base.Add(time.Hour)
	d := Deps{Policy: adminPolicy{admins: map[string]bool{"user:root": true}}, Audit: l, Domain: "default",
		Host: "ssh bastion", Clock: func() time.Time { return now }}
	stdin := func(s string) func(*env) { return func(e *env) { e.in = strings.NewReader(s) } }

	if _, err := runCmd(t, newAudit, d, "bob", "archive", "--before", "2030-01-02T03:10:00Z"); err == nil ||
		!strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("non-admin archive: %v", err)
	}
	if _, err := runCmd(t, newAudit, d, "root", "archive"); err == nil || !strings.Contains(err.Error(), "--before") {
		t.Fatalf("archive without --before: %v", err)
	}
	seg, err := runCmd(t, newAudit, d, "root", "archive", "--before", "2030-01-02T03:10:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(seg, `{"kind":"header"`) || strings.Count(seg, "\n") != 11 {
		t.Fatalf("segment of 9 events:\n%s", seg)
	}
	// Over ssh, stdout goes through the terminal guard: it must pass the
	// segment unchanged, or its digest would break.
	if termsafe.Lines(seg) != seg {
		t.Fatal("the terminal guard changes the segment")
	}
	evs, err := l.Query(context.Background(), store.EventFilter{Action: "audit.archive"})
	if err != nil || len(evs) != 1 || evs[0].Actor != "root" || evs[0].Details["last_seq"] != "9" ||
		evs[0].Details["removed"] != "9" || evs[0].Decision != "allow" {
		t.Fatalf("audit.archive events: %+v, %v", evs, err)
	}

	out, err := runCmd(t, newAudit, d, "bob", "verify")
	if err != nil || !strings.Contains(out, "OK: 13 events, hash chain intact from checkpoint seq 9 (last seq 22)") {
		t.Fatalf("verify after archiving: %q, %v", out, err)
	}
	out, err = runCmdWith(t, newAudit, d, "bob", stdin(seg), "verify", "--segment", "-")
	if err != nil || !strings.Contains(out, "OK: 1 segment, 9 events (seq 1..9), hash chain intact; the live log continues from it") {
		t.Fatalf("verify --segment: %q, %v", out, err)
	}
	out, err = runCmdWith(t, newAudit, d, "bob", stdin(seg), "verify", "--segment", "-", "-o", "json")
	var rep audit.SegmentReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.Link != audit.LinkCheckpoint {
		t.Fatalf("verify --segment -o json: %q, %v", out, err)
	}
	bad := strings.Replace(seg, `"actor":"alice"`, `"actor":"alicf"`, 1)
	_, err = runCmdWith(t, newAudit, d, "bob", stdin(bad), "verify", "--segment", "-")
	if ee, ok := err.(*exitError); !ok || ee.code != 2 || !strings.Contains(ee.msg, "BROKEN at line 2 (seq 1)") {
		t.Fatalf("verify --segment of a tampered segment: %v", err)
	}
	if _, err := runCmd(t, newAudit, d, "bob", "verify", "--segment", "seg.jsonl"); err == nil ||
		!strings.Contains(err.Error(), "--segment - < seg.jsonl") {
		t.Fatalf("verify --segment FILE: %v", err)
	}
	if _, err := runCmd(t, newAudit, d, "root", "archive", "--before", "2030-01-02T03:05:00Z"); err == nil ||
		!strings.Contains(err.Error(), "nothing to archive") {
		t.Fatalf("archive with nothing to archive: %v", err)
	}
	if _, err := runCmd(t, newAudit, d, "root", "archive", "--before", "2031-01-01"); err == nil ||
		!strings.Contains(err.Error(), "future") {
		t.Fatalf("archive before a future date: %v", err)
	}
}
