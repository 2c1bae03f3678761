package subsystems

import (
	"log/slog"

	"github.com/sshbastion/bastion/store"
)

// lostCounter is what the audit log offers to count and log events that
// could not be written (audit.Log.Lost).
type lostCounter interface {
	Lost(reason string, e store.Event)
}

// AuditLost reports an audit event that could not be made durable for an
// action that already happened (a close, a response already sent, a
// refusal): it is logged as an error and counted in
// bastion_audit_lost_events_total when the auditor counts losses. Actions
// not yet taken are refused instead.
func AuditLost(log *slog.Logger, auditor any, e store.Event, err error) {
	if c, ok := auditor.(lostCounter); ok {
		c.Lost(err.Error(), e)
		return
	}
	if log == nil {
		log = slog.Default()
	}
	log.Error("audit: event lost", "action", e.Action, "actor", e.Actor, "target", e.Target, "err", err)
}
