package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
)

// AuditArchiver is what `audit archive` and `audit verify --segment` need
// of Deps.Audit besides AuditLog; *audit.Log has it.
type AuditArchiver interface {
	Archive(ctx context.Context, before time.Time, w io.Writer) (audit.ArchiveReport, error)
	VerifySegment(ctx context.Context, r io.Reader) (audit.SegmentReport, error)
}

func newAuditArchive(e *env) *cobra.Command {
	var before string
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Move the events before a date out of the store, as a self-verifying segment on stdout (admin)",
		Long: "Write the oldest events, those before --before, to stdout as a segment (JSON lines: a header, the events\n" +
			"with their hashes, a trailer with the head it ends on), then keep a checkpoint of that head and remove\n" +
			"the events from the store. `audit verify` then starts from the checkpoint. The last event always stays.\n\n" +
			"  " + e.deps.Host + " audit archive --before 2030-01-01 > 2029.jsonl\n" +
			"  " + e.deps.Host + " audit verify --segment - < 2029.jsonl\n\n" +
			"--before takes a date (2030-01-01, midnight UTC), an RFC 3339 time, or an age (90d, 720h).",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := e.requireAdmin("audit archive"); err != nil {
				return err
			}
			if before == "" {
				return &exitError{code: 1, msg: "audit archive needs --before DATE (a date, an RFC 3339 time, or an age such as 90d)"}
			}
			t, err := parseBefore(before, e.deps.Clock())
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if tty, ok := e.in.(interface {
				Pty() (ssh.Pty, <-chan ssh.Window, bool)
			}); ok {
				if _, _, isPty := tty.Pty(); isPty {
					return &exitError{code: 1, msg: "audit archive writes the segment to stdout: redirect it to a file, without -t: " +
						e.deps.Host + " audit archive --before " + before + " > segment.jsonl"}
				}
			}
			arch, ok := e.deps.Audit.(AuditArchiver)
			if !ok {
				return &exitError{code: 1, msg: "this bastion's audit log cannot archive"}
			}
			rep, err := arch.Archive(e.ctx, t, e.out)
			e.recordArchive(t, rep, err)
			if errors.Is(err, audit.ErrNothingToArchive) {
				return &exitError{code: 1, msg: fmt.Sprintf("nothing to archive: no event before %s follows the checkpoint (the last event always stays)",
					t.UTC().Format(time.RFC3339))}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.errOut, "archived %d events (seq %d..%d, ending on %s) and removed %d from the store; "+
				"the live log continues from checkpoint seq %d.\nKeep the segment, and check it: %s audit verify --segment - < FILE\n",
				rep.Count, rep.FirstSeq, rep.LastSeq, rep.LastHash, rep.Removed, rep.Checkpoint.Seq, e.deps.Host)
			return nil
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "archive the events before this: a date (2030-01-01), an RFC 3339 time, or an age (90d, 720h)")
	return cmd
}

// recordArchive audits an archive run as audit.archive, whatever became
// of it: the checkpoint it left, what it removed, or why it failed.
func (e *env) recordArchive(before time.Time, rep audit.ArchiveReport, err error) {
	ev := store.Event{Action: "audit.archive", Target: "audit", Details: map[string]string{
		"before":     before.UTC().Format(time.RFC3339Nano),
		"count":      strconv.FormatUint(rep.Count, 10),
		"removed":    strconv.Itoa(rep.Removed),
		"checkpoint": strconv.FormatUint(rep.Checkpoint.Seq, 10),
	}}
	if rep.Count > 0 {
		ev.Details["first_seq"] = strconv.FormatUint(rep.FirstSeq, 10)
		ev.Details["last_seq"] = strconv.FormatUint(rep.LastSeq, 10)
		ev.Details["last_hash"] = rep.LastHash
	}
	switch {
	case errors.Is(err, audit.ErrNothingToArchive):
		ev.Reason = "nothing to archive"
	case err != nil:
		ev.Decision, ev.Reason = "error", err.Error()
	}
	// Recorded, or else counted and logged as lost: the archive happened.
	e.recordRefusal(ev)
}

// parseBefore reads --before: a date (midnight UTC), an RFC 3339 time, or
// an age back from now (a Go duration, or whole days as "90d"). A time
// after now is refused: it would archive everything, which is rarely what
// was meant.
func parseBefore(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if d, err := time.ParseDuration(s); err == nil {
		t = now.Add(-d)
	} else if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return time.Time{}, fmt.Errorf("--before %q: an age in days is a whole number, such as 90d", s)
		}
		t = now.AddDate(0, 0, -days)
	} else if d, err := time.Parse(time.DateOnly, s); err == nil {
		t = d
	} else if d, err := time.Parse(time.RFC3339Nano, s); err == nil {
		t = d
	} else {
		return time.Time{}, fmt.Errorf("--before %q: use a date (2030-01-01), an RFC 3339 time, or an age (90d, 720h)", s)
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("--before %s is in the future", t.UTC().Format(time.RFC3339))
	}
	return t, nil
}
