package commands

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/audit"
)

func newAuditVerify(e *env) *cobra.Command {
	var segment string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Walk the hash chain and report the first broken link; --segment - checks an archived segment read from stdin",
		Long: "Walk the hash chain of the live log, from its checkpoint (the last archived event) or from genesis, and report\n" +
			"the first broken link.\n\n" +
			"With --segment -, read one or more segments written by `audit archive` from stdin (concatenated oldest first)\n" +
			"and check each on its own, each against the one before, and the last against the live log:\n\n" +
			"  " + e.deps.Host + " audit verify --segment - < segment.jsonl\n" +
			"  cat 2030-01.jsonl 2030-02.jsonl | " + e.deps.Host + " audit verify --segment -",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if segment != "" {
				return e.verifySegment(segment)
			}
			rep, err := e.deps.Audit.Verify(e.ctx)
			if err != nil {
				return err
			}
			if e.output == "json" {
				if err := e.render(rep, nil, nil); err != nil {
					return err
				}
			} else if rep.OK {
				from := ""
				if rep.From > 0 {
					from = fmt.Sprintf(" from checkpoint seq %d", rep.From)
				}
				fmt.Fprintf(e.out, "OK: %d events, hash chain intact%s (last seq %d)\n", rep.Count, from, rep.LastSeq)
				if rep.Unremoved > 0 {
					fmt.Fprintf(e.out, "note: %d archived events at or below the checkpoint are still stored; the next audit archive removes them\n", rep.Unremoved)
				}
			}
			if !rep.OK {
				return &exitError{code: 2, msg: fmt.Sprintf("BROKEN at seq %d: %s (%d events verified before it)", rep.BrokenSeq, rep.Reason, rep.Count)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&segment, "segment", "", "check an archived segment instead; '-' reads it from stdin (the only source over ssh)")
	return cmd
}

// verifySegment runs `audit verify --segment -`.
func (e *env) verifySegment(source string) error {
	if source != "-" {
		return &exitError{code: 1, msg: fmt.Sprintf("--segment %q: the bastion reads the segment from your stdin: "+
			"%s audit verify --segment - < %s", source, e.deps.Host, source)}
	}
	arch, ok := e.deps.Audit.(AuditArchiver)
	if !ok {
		return &exitError{code: 1, msg: "this bastion's audit log cannot check segments"}
	}
	rep, err := arch.VerifySegment(e.ctx, e.in)
	if err != nil {
		return err
	}
	if e.output == "json" {
		if err := e.render(rep, nil, nil); err != nil {
			return err
		}
	} else if rep.OK {
		n := "1 segment"
		if rep.Segments != 1 {
			n = fmt.Sprintf("%d segments", rep.Segments)
		}
		fmt.Fprintf(e.out, "OK: %s, %d events (seq %d..%d), hash chain intact; %s\n", n, rep.Count, rep.FirstSeq, rep.LastSeq, linkText(rep))
	}
	if !rep.OK {
		at := fmt.Sprintf("line %d", rep.Line)
		if rep.BrokenSeq > 0 {
			at += fmt.Sprintf(" (seq %d)", rep.BrokenSeq)
		}
		if rep.Line == 0 {
			at = "the link to the live log"
		}
		var verified string
		if rep.Segments > 0 {
			verified = fmt.Sprintf(" (%d segments, %d events verified before it)", rep.Segments, rep.Count)
		}
		return &exitError{code: 2, msg: fmt.Sprintf("BROKEN at %s: %s%s", at, rep.Reason, verified)}
	}
	return nil
}

func linkText(rep audit.SegmentReport) string {
	var b strings.Builder
	switch rep.Link {
	case audit.LinkCheckpoint:
		fmt.Fprintf(&b, "the live log continues from it (its checkpoint is seq %d)", rep.Checkpoint)
	case audit.LinkLive:
		fmt.Fprintf(&b, "its last event (seq %d) is still in the live log, with the same hash", rep.LastSeq)
	case audit.LinkOlder:
		fmt.Fprintf(&b, "it ends before the live log's checkpoint (seq %d): check it together with the segments archived after it, "+
			"concatenated oldest first", rep.Checkpoint)
	default:
		b.WriteString("not compared with a live log")
	}
	return b.String()
}
