package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
)

// Accounts is the user and key storage the commands manage.
type Accounts interface {
	store.Users
	store.Keys
}

// AuditLog is the audit trail as the commands see it.
type AuditLog interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
	Query(ctx context.Context, f store.EventFilter) ([]store.Event, error)
	Verify(ctx context.Context) (audit.Report, error)
}

// Admins decides who is an administrator.
type Admins interface {
	IsAdmin(ctx context.Context, p authn.Principal) (bool, error)
	// HowToBecome says what grants admin rights, for refusal messages.
	HowToBecome() string
}

// Deps are the services the commands use.
type Deps struct {
	Accounts Accounts
	Audit    AuditLog
	Admins   Admins
	Clock    func() time.Time
	// Host is how users reach the bastion, for the examples in messages
	// (e.g. "ssh -p 2222 localhost").
	Host string
}

// Module registers the commands.
type Module struct {
	deps  Deps
	table *subsystems.Table
}

// New returns the commands module.
func New(d Deps) *Module {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Host == "" {
		d.Host = "ssh bastion"
	}
	return &Module{deps: d}
}

type builder struct {
	name, summary string
	build         func(e *env) *cobra.Command
}

func (m *Module) builders() []builder {
	return []builder{
		{"whoami", "show who you are and how you authenticated", newWhoami},
		{"audit", "query and verify the audit log", newAudit},
		{"users", "manage users (admin)", newUsers},
		{"keys", "manage public keys", newKeys},
		{"help", "list the commands", m.newHelp},
	}
}

// Register implements subsystems.Module.
func (m *Module) Register(t *subsystems.Table) error {
	m.table = t
	for _, b := range m.builders() {
		b := b
		err := t.Command(subsystems.Command{Name: b.name, Summary: b.summary, Run: func(ctx context.Context, s ssh.Session, args []string) int {
			return m.run(ctx, s, b, args)
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func (m *Module) run(ctx context.Context, s ssh.Session, b builder, args []string) int {
	p, _ := authn.FromContext(ctx)
	e := &env{ctx: ctx, p: p, deps: m.deps, in: s, out: s, errOut: s.Stderr()}
	cmd := b.build(e)
	cmd.Use = b.name + trimUse(cmd.Use)
	cmd.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format: table or json")
	cmd.SilenceUsage = true
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SilenceErrors = true
	cmd.SetArgs(args[1:])
	cmd.SetIn(s)
	cmd.SetOut(s)
	cmd.SetErr(s.Stderr())
	cmd.SetContext(ctx)
	if err := cmd.Execute(); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(s.Stderr(), ee.msg)
			}
			return ee.code
		}
		fmt.Fprintf(s.Stderr(), "bastion %s: %v\n", b.name, err)
		return 1
	}
	return 0
}

// trimUse keeps the argument part of a Use string ("x ARGS" -> " ARGS").
func trimUse(use string) string {
	for i, c := range use {
		if c == ' ' {
			return use[i:]
		}
	}
	return ""
}

// env is what one command invocation sees.
type env struct {
	ctx    context.Context
	p      authn.Principal
	deps   Deps
	in     io.Reader
	out    io.Writer
	errOut io.Writer
	output string
}

// requireAdmin refuses non-admins with what they lack and how to get it.
// Every state-changing admin command calls it before doing anything.
func (e *env) requireAdmin(what string) error {
	ok, err := e.deps.Admins.IsAdmin(e.ctx, e.p)
	if err != nil {
		return fmt.Errorf("cannot check admin rights: %w", err)
	}
	if !ok {
		_, _ = e.deps.Audit.Append(e.ctx, store.Event{Actor: e.p.User, Action: "command.deny", Target: what,
			Decision: "deny", Reason: "not an admin"})
		return &exitError{code: 1, msg: fmt.Sprintf("permission denied: %s needs admin rights, and %s is not an admin. %s",
			what, e.p.User, e.deps.Admins.HowToBecome())}
	}
	return nil
}

func (e *env) isAdmin() bool {
	ok, err := e.deps.Admins.IsAdmin(e.ctx, e.p)
	return err == nil && ok
}

func (e *env) record(ev store.Event) error {
	ev.Actor = e.p.User
	if ev.Decision == "" {
		ev.Decision = "allow"
	}
	_, err := e.deps.Audit.Append(e.ctx, ev)
	return err
}
