package sftp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/charmbracelet/ssh"
	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// Resources finds and lists Resources.
type Resources interface {
	GetResource(ctx context.Context, name string) (store.Resource, error)
	ListResources(ctx context.Context) ([]store.Resource, error)
}

// Checker is the policy gate.
type Checker interface {
	Check(ctx context.Context, subject, relation, object string) (bool, error)
	ListObjects(ctx context.Context, subject, relation, objectType string) ([]string, error)
}

// Auditor records audit events.
type Auditor interface {
	Append(ctx context.Context, e store.Event) (store.Event, error)
}

// HostDialer logs in to an ssh Resource with a short-lived certificate
// (the hostshell module).
type HostDialer interface {
	DialHost(ctx context.Context, p authn.Principal, r store.Resource, sessionID string) (*gossh.Client, error)
}

// Config of the module.
type Config struct {
	Host string // how users reach the bastion, for messages
	// Metrics, if set, counts file operations and bytes (nil: nothing).
	Metrics *Metrics
	// StepUp, if set, checks the step-up requirements of each host the
	// tree opens (session kind sftp; nil: none).
	StepUp StepUp
	// Pods, if set, serves the containers of kube Resources as
	// /NAME/NAMESPACE/POD/CONTAINER/... (the kube module; nil: kube
	// Resources have no files here).
	Pods Pods
}

// StepUp checks step-up requirements (stepup.Service).
type StepUp interface {
	Open(ctx context.Context, p authn.Principal, kind string, r store.Resource, what string) stepup.Verdict
}

// Module serves the sftp subsystem.
type Module struct {
	cfg       Config
	resources Resources
	policy    Checker
	sessions  *sessions.Manager
	audit     Auditor
	dialer    HostDialer
	log       *slog.Logger
}

// New returns the module.
func New(cfg Config, res Resources, p Checker, sm *sessions.Manager, a Auditor, d HostDialer, log *slog.Logger) *Module {
	if cfg.Host == "" {
		cfg.Host = "ssh bastion"
	}
	if log == nil {
		log = slog.Default()
	}
	return &Module{cfg: cfg, resources: res, policy: p, sessions: sm, audit: a, dialer: d, log: log}
}

// Register implements subsystems.Module.
func (m *Module) Register(t *subsystems.Table) error {
	if err := t.Subsystem("sftp", m.serve); err != nil {
		return err
	}
	return t.Command(subsystems.Command{Name: "scp", Summary: "legacy scp (-O) is refused: plain scp uses sftp", Run: m.legacySCP})
}

// legacySCP answers `scp -O`, whose remote end runs `scp -t/-f`. The old
// protocol lets the server name the files it sends and has no per-file
// operations to gate and audit, so it is refused with what to do instead.
func (m *Module) legacySCP(_ context.Context, sess ssh.Session, _ []string) int {
	fmt.Fprintf(sess.Stderr(), "bastion: the legacy scp protocol (scp -O) is not supported; drop -O: scp (OpenSSH 9 and newer) uses SFTP, which this bastion serves (e.g. %s)\n",
		scpExample(m.cfg.Host))
	return 1
}

// scpExample turns how users reach the bastion ("ssh -p 2222 localhost")
// into the scp command for it: scp's port flag is -P, and flags go before
// the files.
func scpExample(host string) string {
	f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(host), "ssh"))
	if len(f) == 0 {
		return "scp FILE bastion:host-1/tmp/"
	}
	dest, flags := f[len(f)-1], f[:len(f)-1]
	out := []string{"scp"}
	for _, fl := range flags {
		if fl == "-p" {
			fl = "-P"
		}
		out = append(out, fl)
	}
	return strings.Join(append(out, "FILE", dest+":host-1/tmp/"), " ")
}

func (m *Module) serve(ctx context.Context, sess ssh.Session, _ []string) int {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := newFS(ctx, m, p, sess)
	srv := sftp.NewRequestServer(sess, sftp.Handlers{FileGet: f, FilePut: f, FileCmd: f, FileList: f}, sftp.WithStartDirectory("/"))
	f.closeChannel = func() { _ = srv.Close() }
	err := srv.Serve()
	f.closeAll(sessions.ReasonClientClosed)
	if err != nil && err != io.EOF {
		m.log.Debug("sftp ended", "user", p.User, "err", err)
	}
	return 0
}

// lost reports an audit event that could not be made durable: logged as
// an error and counted, never passed over in silence.
func (m *Module) lost(e store.Event, err error) {
	subsystems.AuditLost(m.log, m.audit, e, err)
}
