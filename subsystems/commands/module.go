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
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/tui/termsafe"
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

// Policy is the ReBAC engine as the commands use it.
type Policy interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
	Explain(ctx context.Context, subject, relation, object string) (policy.Explanation, error)
	ListObjects(ctx context.Context, subject, relation, objectType string) ([]string, error)
	Model() *policy.Model
	SetModel(m *policy.Model)
}

// Sessions are the live and recent access sessions.
type Sessions interface {
	List(ctx context.Context, user string, includeEnded bool) ([]store.Session, error)
	Get(id string) (store.Session, bool)
	Kill(id string) (store.Session, error)
}

// Deps are the services the commands use.
type Deps struct {
	Accounts  Accounts
	Audit     AuditLog
	Policy    Policy
	Tuples    store.Tuples
	Resources store.Resources
	Models    ModelStore
	Sessions  Sessions
	// Records and SessionRecords serve `recordings`.
	Records        store.Recordings
	SessionRecords store.Sessions
	// Requests serves `request` (just-in-time access).
	Requests Requests
	// CertRevocations serves `certs` (revoked user-certificate serials).
	CertRevocations CertRevocations
	// CAPublicKey is the user CA line targets trust (`ca` prints it).
	CAPublicKey string
	// Certs serves `cert`: certificates from that CA for the key a user
	// logged in with (a nil Signer: `cert` is unavailable).
	Certs CertIssuing
	// Domain is the tenancy root whose admins administer the bastion
	// (default "default"): admin rights are the relation admin on it.
	Domain string
	Clock  func() time.Time
	// Host is how users reach the bastion, for the examples in messages
	// (e.g. "ssh -p 2222 localhost").
	Host string
	// ResourceRules limit what `resources add` accepts (resources_rules.go).
	ResourceRules ResourceRules
	// StepUp and StepUpLogin serve `step-up` and the step-up facts of
	// `whoami` (nil: step-up is unavailable).
	StepUp      StepUp
	StepUpLogin StepUpLogin
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
	if d.Domain == "" {
		d.Domain = "default"
	}
	return &Module{deps: d}
}

type builder struct {
	name, summary string
	build         func(e *env) *cobra.Command
}

// rawOutput names the commands whose stdout is not sanitised: they write
// terminal control sequences on purpose. Only `recordings`: its replay is
// what was on a screen, and its export a file for asciinema. Their tables
// and errors are still sanitised.
var rawOutput = map[string]bool{"recordings": true}

func (m *Module) builders() []builder {
	return []builder{
		{"whoami", "show who you are and how you authenticated", newWhoami},
		{"audit", "query and verify the audit log", newAudit},
		{"users", "manage users (admin)", newUsers},
		{"keys", "manage public keys", newKeys},
		{"tuples", "add, remove and list relationship tuples", newTuples},
		{"check", "check (and explain) whether a subject has a relation on an object", newCheck},
		{"list", "list the objects of a type a subject has a relation on", newList},
		{"resources", "add, list, show and remove Resources", newResources},
		{"groups", "manage group members", newGroups},
		{"model", "show or load the authorization model", newModel},
		{"sessions", "list your sessions; sessions kill ID revokes one", newSessions},
		{"config", "print an ~/.ssh/config block for the bastion and your ssh Resources", newSSHConfig},
		{"ca", "print the user CA public key that target hosts trust", newCA},
		{"cert", "sign the key you logged in with: a short-lived certificate for your ssh Resources", newCert},
		{"recordings", "list, replay and export shell recordings", newRecordings},
		{"certs", "revoke user certificates, list revoked serials (admin)", newCerts},
		{"request", "just-in-time access: search, create, list, approve, deny, drop", newRequest},
		{"step-up", "log in again at your identity provider, for sessions that need a recent strong login", newStepUp},
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
	// Everything a command prints goes through the sanitiser (keeping line
	// feeds and tabs): messages interpolate what others wrote (names,
	// reasons, addresses), and a raw ESC sequence from them must never
	// reach the caller's terminal. Tables and JSON are made safe before
	// this, so it changes nothing there.
	var out io.Writer = termsafe.NewWriter(s, termsafe.Multiline)
	if rawOutput[b.name] {
		out = s
	}
	errOut := termsafe.NewWriter(s.Stderr(), termsafe.Multiline)
	// The command's policy decisions carry the caller's request context
	// (source_ip, current_time, ...), which model conditions read.
	e := &env{ctx: subsystems.DecisionContext(ctx, subsystems.KindSSH), p: p, deps: m.deps, in: s, out: out, errOut: errOut,
		raw: s.RawCommand()}
	cmd := b.build(e)
	cmd.Use = b.name + trimUse(cmd.Use)
	cmd.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format: table or json")
	cmd.SilenceUsage = true
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.SilenceErrors = true
	cmd.SetArgs(joinTextFlags(args[1:]))
	cmd.SetIn(s)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetContext(ctx)
	if err := cmd.Execute(); err != nil {
		var ee *exitError
		// Errors quote what the caller or others typed (cobra's "unknown
		// flag", a refused name): they are sanitised line by line, so our
		// own multi-line messages keep their lines but nothing in them
		// can drive the terminal.
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(errOut, termsafe.Lines(ee.msg))
			}
			return ee.code
		}
		fmt.Fprintf(errOut, "bastion %s: %s\n", b.name, termsafe.Lines(err.Error()))
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
	// raw is the command line as the client sent it, before the server
	// split it into words (see jsonflag.go).
	raw string
}

// domainObject is the tenancy root, "domain:<name>".
func (e *env) domainObject() string { return "domain:" + e.deps.Domain }

// requireAdmin refuses callers without admin on the domain. Every
// state-changing admin command calls it (or requireRelation) first.
func (e *env) requireAdmin(what string) error {
	return e.requireRelation(what, "admin", e.domainObject())
}

// requireRelation refuses the caller unless the policy grants relation on
// object, naming what was refused, the relation lacking, and how to get it.
// It fails closed: a policy error refuses.
func (e *env) requireRelation(what, relation, object string) error {
	ok, err := e.deps.Policy.Check(e.ctx, e.p.Subject(), relation, object)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("permission denied: %s: cannot evaluate %s on %s: %v", what, relation, object, err)}
	}
	if !ok {
		e.recordRefusal(store.Event{Action: "command.deny", Target: what,
			Decision: "deny", Reason: fmt.Sprintf("lacks %s on %s", relation, object)})
		return &exitError{code: 1, msg: fmt.Sprintf("permission denied: %s needs the relation %s on %s, which %s lacks. "+
			"Ask an admin to grant it: %s tuples add %s#%s@%s", what, relation, object, e.p.Subject(), e.deps.Host, object, relation, e.p.Subject())}
	}
	return nil
}

func (e *env) isAdmin() bool {
	ok, err := e.deps.Policy.Check(e.ctx, e.p.Subject(), "admin", e.domainObject())
	return err == nil && ok
}

// recordRefusal audits a refusal; the refusal stands either way, and a
// lost event is logged and counted.
func (e *env) recordRefusal(ev store.Event) {
	if err := e.record(ev); err != nil {
		subsystems.AuditLost(nil, e.deps.Audit, ev, err)
	}
}

func (e *env) record(ev store.Event) error {
	ev.Actor = e.p.User
	if ev.Decision == "" {
		ev.Decision = "allow"
	}
	_, err := e.deps.Audit.Append(e.ctx, ev)
	return err
}
