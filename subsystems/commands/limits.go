package commands

import (
	"fmt"
	"unicode/utf8"
)

// Input bounds for what users type into commands. They exist so that no
// one can fill other people's tables, terminals or the audit log with
// megabytes of text (audit events are truncated anyway, but a reason or a
// label is shown in full to reviewers and in the picker).
const (
	maxReason     = 1024
	maxLabelKey   = 63
	maxLabelValue = 256
	maxLabels     = 32
	maxAliases    = 16
)

// checkText refuses a value over max bytes or not valid UTF-8, naming the
// flag and the bound.
func checkText(flag, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s is %d bytes; the limit is %d", flag, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", flag)
	}
	return nil
}
