package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

var base = time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)

// minute returns the time of the event appended i-th by appendN.
func minute(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }

// appendN appends events from..to, event i at minute(i).
func appendN(t *testing.T, l *audit.Log, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		e := store.Event{Time: minute(i), Actor: "user:alice", Action: "forward.open", Target: "resource:web-1",
			Details: map[string]string{"i": fmt.Sprint(i)}}
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
}

func archive(t *testing.T, l *audit.Log, before time.Time) (audit.ArchiveReport, []byte) {
	t.Helper()
	var seg bytes.Buffer
	rep, err := l.Archive(ctx, before, &seg)
	if err != nil {
		t.Fatalf("Archive(before %s): %v", before, err)
	}
	return rep, seg.Bytes()
}

func verifySeg(t *testing.T, st store.AuditLog, seg ...[]byte) audit.SegmentReport {
	t.Helper()
	r, err := audit.VerifySegment(ctx, st, bytes.NewReader(bytes.Join(seg, nil)))
	if err != nil {
		t.Fatalf("VerifySegment: %v", err)
	}
	return r
}

func TestArchiveAndVerify(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	appendN(t, l, 1, 100)

	rep, seg1 := archive(t, l, minute(40))
	if rep.FirstSeq != 1 || rep.LastSeq != 39 || rep.Count != 39 || rep.Removed != 39 || rep.Checkpoint.Seq != 39 {
		t.Fatalf("first archive: %+v", rep)
	}
	if r := verify(t, st); !r.OK || r.From != 39 || r.FromHash != rep.LastHash || r.Count != 61 || r.LastSeq != 100 {
		t.Fatalf("Verify after archiving: %+v", r)
	}
	if r := verifySeg(t, st, seg1); !r.OK || r.Link != audit.LinkCheckpoint || r.Count != 39 || r.FirstSeq != 1 ||
		r.PrevHash != audit.Genesis || r.LastSeq != 39 || r.Segments != 1 {
		t.Fatalf("VerifySegment(first): %+v", r)
	}
	if evs, err := l.Query(ctx, store.EventFilter{}); err != nil || len(evs) != 61 || evs[0].Seq != 40 {
		t.Fatalf("stored after archiving: %d events from %v, %v", len(evs), evs[0].Seq, err)
	}

	appendN(t, l, 101, 110)
	rep2, seg2 := archive(t, l, minute(80))
	if rep2.FirstSeq != 40 || rep2.LastSeq != 79 || rep2.Count != 40 {
		t.Fatalf("second archive: %+v", rep2)
	}
	if r := verifySeg(t, st, seg2); !r.OK || r.Link != audit.LinkCheckpoint {
		t.Fatalf("VerifySegment(second): %+v", r)
	}
	// The first segment now precedes the checkpoint; with the second
	// after it, the pair links.
	if r := verifySeg(t, st, seg1); !r.OK || r.Link != audit.LinkOlder || r.Checkpoint != 79 {
		t.Fatalf("VerifySegment(first, after the second archive): %+v", r)
	}
	if r := verifySeg(t, st, seg1, seg2); !r.OK || r.Link != audit.LinkCheckpoint || r.Segments != 2 || r.Count != 79 {
		t.Fatalf("VerifySegment(first+second): %+v", r)
	}
	if r := verifySeg(t, st, seg2, seg1); r.OK || !strings.Contains(r.Reason, "segment 2 starts at seq 1") {
		t.Fatalf("VerifySegment(second+first): %+v", r)
	}
	// On its own, without a live log.
	if r, err := audit.VerifySegment(ctx, nil, bytes.NewReader(seg2)); err != nil || !r.OK || r.Link != "" {
		t.Fatalf("VerifySegment without a live log: %+v, %v", r, err)
	}

	// Everything before the far future: all but the last event.
	rep3, seg3 := archive(t, l, minute(1e6))
	if rep3.FirstSeq != 80 || rep3.LastSeq != 109 {
		t.Fatalf("archive of everything: %+v", rep3)
	}
	if r := verify(t, st); !r.OK || r.Count != 1 || r.LastSeq != 110 || r.From != 109 {
		t.Fatalf("Verify after archiving all but the last: %+v", r)
	}
	if r := verifySeg(t, st, seg1, seg2, seg3); !r.OK || r.Count != 109 || r.Link != audit.LinkCheckpoint {
		t.Fatalf("VerifySegment(all three): %+v", r)
	}
	var none bytes.Buffer
	if _, err := l.Archive(ctx, minute(1e6), &none); !errors.Is(err, audit.ErrNothingToArchive) || none.Len() != 0 {
		t.Fatalf("archive with nothing left: %v, %d bytes written", err, none.Len())
	}
	// The log goes on after the checkpoint, and a new Log continues it.
	appendN(t, l, 111, 111)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := newLog(t, st, audit.Options{})
	if e, err := l2.Append(ctx, store.Event{Action: "x"}); err != nil || e.Seq != 112 {
		t.Fatalf("Append after reopening: %d, %v", e.Seq, err)
	}
	if r := verify(t, st); !r.OK || r.Count != 3 || r.LastSeq != 112 {
		t.Fatalf("final Verify: %+v", r)
	}
}

func TestArchiveNothingBefore(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	var out bytes.Buffer
	if _, err := l.Archive(ctx, minute(5), &out); !errors.Is(err, audit.ErrNothingToArchive) {
		t.Fatalf("archive of an empty log: %v", err)
	}
	appendN(t, l, 10, 20)
	if _, err := l.Archive(ctx, minute(5), &out); !errors.Is(err, audit.ErrNothingToArchive) || out.Len() != 0 {
		t.Fatalf("archive before the first event: %v, %q", err, out.String())
	}
	if _, err := audit.Archive(ctx, &flaky{AuditLog: st}, minute(50), &out, base); !errors.Is(err, audit.ErrNoArchive) {
		t.Fatalf("archive on a store without the role: %v", err)
	}
}

func TestSegmentTampering(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	appendN(t, l, 1, 20)
	_, seg := archive(t, l, minute(11))
	lines := strings.SplitAfter(string(seg), "\n")
	lines = lines[:len(lines)-1] // after the last newline
	if len(lines) != 12 {
		t.Fatalf("segment of 10 events has %d lines:\n%s", len(lines), seg)
	}
	edit := func(i int, f func(string) string) string {
		c := append([]string{}, lines...)
		c[i] = f(c[i])
		return strings.Join(c, "")
	}
	drop := func(i int) string {
		return strings.Join(append(append([]string{}, lines[:i]...), lines[i+1:]...), "")
	}
	swap := func(i, j int) string {
		c := append([]string{}, lines...)
		c[i], c[j] = c[j], c[i]
		return strings.Join(c, "")
	}
	cases := map[string]struct{ seg, reason string }{
		"actor changed":     {edit(4, func(s string) string { return strings.Replace(s, "user:alice", "user:mallo", 1) }), "content does not match"},
		"hash recomputed":   {edit(4, func(s string) string { return strings.Replace(s, `"i":"4"`, `"i":"5"`, 1) }), "event 4"},
		"event removed":     {drop(5), "event 5 expected, found seq 6"},
		"events swapped":    {swap(3, 4), "event 3 expected"},
		"header changed":    {edit(0, func(s string) string { return strings.Replace(s, "2030-01-02T03:11", "2030-01-02T03:12", 1) }), "sha256"},
		"trailer changed":   {edit(11, func(s string) string { return strings.Replace(s, `"count":10`, `"count":9`, 1) }), "trailer says 9 events"},
		"truncated":         {strings.Join(lines[:8], ""), "truncated"},
		"no header":         {strings.Join(lines[1:], ""), "starts with a header"},
		"empty":             {"", "no segment"},
		"not json":          {"hello\n", "starts with a header"},
		"other format":      {edit(0, func(s string) string { return strings.Replace(s, "segment.v1", "segment.v9", 1) }), "format"},
		"two headers":       {lines[0] + string(seg), "a \"header\" line inside a segment"},
		"trailing garbage":  {string(seg) + "x\n", "starts with a header"},
		"first not genesis": {edit(0, func(s string) string { return strings.Replace(s, audit.Genesis, strings.Repeat("1", 64), 1) }), "genesis"},
	}
	for name, c := range cases {
		r, err := audit.VerifySegment(ctx, st, strings.NewReader(c.seg))
		if err != nil || r.OK || !strings.Contains(r.Reason, c.reason) || r.Line == 0 && c.seg != "" {
			t.Errorf("%s: %+v, %v; want a failure naming %q", name, r, err, c.reason)
		}
	}
	if r := verifySeg(t, st, seg); !r.OK {
		t.Fatalf("the original segment: %+v", r)
	}
	// CRLF line ends (a copy through another system) still verify: the
	// digest is of the bytes, so they must not have been rewritten.
	if r := verifySeg(t, st, []byte(strings.ReplaceAll(string(seg), "\n", "\r\n"))); r.OK {
		t.Fatalf("a segment with rewritten line ends verified: %+v", r)
	}
}

func TestSegmentIsASCII(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	hostile := "ünï 😀 \u009b[2J \u202e \x7f \x1b[31m <&> \u2028"
	if _, err := l.Append(ctx, store.Event{Time: minute(1), Actor: hostile, Action: "auth.fail",
		Details: map[string]string{hostile: hostile}}); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2, 3)
	_, seg := archive(t, l, minute(3))
	for i, c := range seg {
		if c >= 0x7f || c < 0x20 && c != '\n' {
			t.Fatalf("byte %d of the segment is %#x", i, c)
		}
	}
	if r := verifySeg(t, st, seg); !r.OK || r.Count != 2 {
		t.Fatalf("VerifySegment: %+v", r)
	}
}

func TestSegmentOfAnotherLog(t *testing.T) {
	a, b := memStore(t), memStore(t)
	la, lb := newLog(t, a, audit.Options{}), newLog(t, b, audit.Options{})
	appendN(t, la, 1, 20)
	appendN(t, lb, 1, 5)
	if _, err := lb.Append(ctx, store.Event{Action: "other", Time: minute(6)}); err != nil {
		t.Fatal(err)
	}
	appendN(t, lb, 7, 20)
	_, seg := archive(t, la, minute(10))
	if r := verifySeg(t, b, seg); r.OK || !strings.Contains(r.Reason, "different chains") {
		t.Fatalf("a segment of log a against log b: %+v", r)
	}
	_, segB := archive(t, lb, minute(10))
	// Same seqs and the same events up to 5, then another chain.
	if r := verifySeg(t, a, segB); r.OK {
		t.Fatalf("b's segment against a: %+v", r)
	}
	if r := verifySeg(t, a, seg); !r.OK || r.Link != audit.LinkCheckpoint {
		t.Fatalf("a's segment against a: %+v", r)
	}
}

// TestInterruptedRemoval: a checkpoint put without the removal (a crash
// between the two) still verifies; the next archive removes the rest.
func TestInterruptedRemoval(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	appendN(t, l, 1, 50)
	evs, err := l.Query(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	c := store.Checkpoint{Seq: 30, Hash: evs[29].Hash, Time: evs[29].Time}
	if err := st.PutCheckpoint(ctx, store.Checkpoint{}, c); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, st); !r.OK || r.From != 30 || r.Unremoved != 30 || r.Count != 20 {
		t.Fatalf("Verify with archived events left: %+v", r)
	}
	rep, seg := archive(t, l, minute(40))
	if rep.FirstSeq != 31 || rep.LastSeq != 39 || rep.Removed != 39 {
		t.Fatalf("archive after an interrupted removal: %+v", rep)
	}
	if r := verifySeg(t, st, seg); !r.OK || r.PrevHash != c.Hash {
		t.Fatalf("VerifySegment: %+v", r)
	}
	if r := verify(t, st); !r.OK || r.Unremoved != 0 || r.From != 39 {
		t.Fatalf("Verify after the archive: %+v", r)
	}
	// The event after the checkpoint must chain onto it.
	if err := st.TamperEventForTest(40, func(e *store.Event) { e.PrevHash = audit.Genesis }); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, st); r.OK || r.BrokenSeq != 40 || !strings.Contains(r.Reason, "checkpoint") {
		t.Fatalf("Verify with a first event that does not chain onto the checkpoint: %+v", r)
	}
}

// racing is a store whose PutCheckpoint always loses to another archive.
type racing struct{ *badger.Store }

func (r racing) PutCheckpoint(ctx context.Context, prev, c store.Checkpoint) error {
	return fmt.Errorf("fake: %w", store.ErrConflict)
}

func TestArchiveLosingTheRaceRemovesNothing(t *testing.T) {
	st := memStore(t)
	l := newLog(t, st, audit.Options{})
	appendN(t, l, 1, 10)
	var seg bytes.Buffer
	_, err := audit.Archive(ctx, racing{st}, minute(5), &seg, base)
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "discard the segment") {
		t.Fatalf("Archive losing the checkpoint race: %v", err)
	}
	if r := verify(t, st); !r.OK || r.Count != 10 || r.From != 0 {
		t.Fatalf("Verify after a lost race: %+v", r)
	}
	// Its segment still verifies, and overlaps the live log.
	if r := verifySeg(t, st, seg.Bytes()); !r.OK || r.Link != audit.LinkLive {
		t.Fatalf("VerifySegment of the discarded segment: %+v", r)
	}
}

// TestImportedLogContinues: a log that starts at a checkpoint (an archived
// log copied to a new store) continues from it.
func TestImportedLogContinues(t *testing.T) {
	st := memStore(t)
	c := store.Checkpoint{Seq: 500, Hash: strings.Repeat("ab", 32), Time: base}
	if err := st.PutCheckpoint(ctx, store.Checkpoint{}, c); err != nil {
		t.Fatal(err)
	}
	l := newLog(t, st, audit.Options{})
	e, err := l.Append(ctx, store.Event{Action: "x"})
	if err != nil || e.Seq != 501 || e.PrevHash != c.Hash {
		t.Fatalf("first append after an import: %+v, %v", e, err)
	}
	if r := verify(t, st); !r.OK || r.Count != 1 || r.From != 500 {
		t.Fatalf("Verify: %+v", r)
	}
}
