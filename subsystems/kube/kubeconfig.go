package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// kubeconfig is `ssh bastion kubeconfig NAME [--port 6443]`: it checks act,
// opens a kube session and prints a kubeconfig (stdout) whose token is
// bound to the user, the Resource and that session, and the tunnel to run
// (stderr, so that `> kc` captures only the kubeconfig).
func (m *Module) kubeconfig(ctx context.Context, sess ssh.Session, args []string) int {
	p, ok := authn.FromContext(ctx)
	if !ok {
		return 1
	}
	var port int
	cmd := &cobra.Command{
		Use:   "kubeconfig NAME [--port 6443]",
		Short: "Print a kubeconfig for a kube Resource; the tunnel command goes to stderr",
		Example: fmt.Sprintf("  %s kubeconfig prod > kc\n  %s -N -L 6443:prod:443 &\n  kubectl --kubeconfig kc get ns",
			m.cfg.Host, m.cfg.Host),
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(_ *cobra.Command, a []string) error {
			return m.issue(ctx, p, a[0], port, sess, sess.Stderr())
		},
	}
	cmd.Flags().IntVar(&port, "port", 6443, "local port of the tunnel (kubectl connects to 127.0.0.1:PORT)")
	cmd.SetArgs(args[1:])
	cmd.SetOut(sess)
	cmd.SetErr(sess.Stderr())
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(sess.Stderr(), "bastion: kubeconfig: "+err.Error())
		return 1
	}
	return 0
}

func (m *Module) issue(ctx context.Context, p authn.Principal, name string, port int, out, errOut io.Writer) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("--port %d is out of range", port)
	}
	notKube := fmt.Errorf("%q is not a kube Resource (list them with `%s resources list`)", name, m.cfg.Host)
	r, err := m.resources.GetResource(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.Kind != "kube") {
		return notKube
	} else if err != nil {
		return err
	}
	dctx := subsystems.DecisionContextFor(ctx, p, subsystems.KindKube, time.Now()) // what model conditions read
	if ok, why := subsystems.CanView(dctx, m.policy, p, r.Name); !ok {
		// Read like a name that does not exist (see CanView).
		denied := store.Event{Actor: p.User, Action: "kube.deny", Target: r.Name, Decision: "deny", Reason: why}
		if _, aerr := m.audit.Append(ctx, denied); aerr != nil {
			subsystems.AuditLost(m.log, m.audit, denied, aerr)
		}
		return notKube
	}
	ok, err := m.policy.Check(dctx, p.Subject(), "act", "resource:"+r.Name)
	if err != nil || !ok {
		why := fmt.Sprintf("%s lacks act on resource:%s", p.Subject(), r.Name) +
			subsystems.UnmetConditions(dctx, m.policy, p.Subject(), "act", "resource:"+r.Name)
		if err != nil {
			// Fail closed: an unanswerable policy question is a refusal.
			why = "the policy could not be evaluated (" + err.Error() + ")"
		}
		denied := store.Event{Actor: p.User, Action: "kube.deny", Target: r.Name, Decision: "deny", Reason: why}
		if _, aerr := m.audit.Append(ctx, denied); aerr != nil {
			subsystems.AuditLost(m.log, m.audit, denied, aerr)
		}
		return fmt.Errorf("refused: %s. Ask for access with: %s request create %s --reason \"...\"", why, m.cfg.Host, r.Name)
	}
	var su stepup.Verdict
	if m.cfg.StepUp != nil {
		// A recent strong login where one is required, checked after
		// act: the session this kubeconfig opens ends when it outlives
		// that login (step_up_expired), unless a newer step-up renews it.
		if su = m.cfg.StepUp.Open(ctx, p, "kube", r, "kubeconfig "+r.Name); !su.OK {
			denied := store.Event{Actor: p.User, Action: "kube.deny", Target: r.Name, Decision: "deny", Reason: su.Reason, Details: su.Details}
			if _, aerr := m.audit.Append(ctx, denied); aerr != nil {
				subsystems.AuditLost(m.log, m.audit, denied, aerr)
			}
			return errors.New(su.Message)
		}
	}
	if _, err := m.upstream(r); err != nil {
		return fmt.Errorf("%s is not usable: %v; an admin must fix the Resource", r.Name, err)
	}
	tok := newToken()
	g := &grant{p: p, r: r, hash: store.TokenHash(tok)}
	live, err := m.sessions.Open(ctx, sessions.Request{Principal: p, Resource: r, Kind: "kube", Target: "kubeconfig", Closer: m.closer(g),
		StepUpUntil: su.Until, StepUpRenew: su.Renew})
	if err != nil {
		return fmt.Errorf("cannot open a session: %v", err)
	}
	g.live, g.session = live, live.ID()
	exp := live.Snapshot().Expires
	// The token exists only once its kube.token event is durable.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "kube.token", Target: r.Name, Decision: "allow",
		Details: map[string]string{"session": live.ID(), "expires": exp.Format(time.RFC3339), "port": fmt.Sprint(port)}}); err != nil {
		m.sessions.End(live, "audit unavailable")
		return fmt.Errorf("refused: the audit log cannot record this kubeconfig now (%v); try again later", err)
	}
	// Other replicas accept the token once the store keeps its hash.
	if err := m.storeToken(ctx, g, exp); err != nil {
		m.sessions.End(live, "store unavailable")
		return fmt.Errorf("refused: the store cannot keep this kubeconfig's token now (%v); try again later", err)
	}
	m.tokens.add(tok, g)

	cluster := "bastion-" + r.Name
	kc := clientcmdapi.NewConfig()
	kc.Clusters[cluster] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://127.0.0.1:%d", port), CertificateAuthorityData: m.caPEM}
	kc.AuthInfos[p.User+"@"+cluster] = &clientcmdapi.AuthInfo{Token: tok}
	kc.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: p.User + "@" + cluster}
	kc.CurrentContext = cluster
	raw, err := clientcmd.Write(*kc)
	if err != nil {
		return err
	}
	tunnel := fmt.Sprintf("%s -N -L %d:%s:443", m.cfg.Host, port, r.Name)
	fmt.Fprintf(out, "# kubeconfig for %s through the bastion, issued to %s; session %s, expires %s.\n# Run the tunnel first: %s\n%s",
		r.Name, p.User, live.ID(), exp.Format(time.RFC3339), tunnel, raw)
	fmt.Fprintf(errOut, "Run the tunnel, then kubectl with this kubeconfig:\n    %s\n    kubectl --kubeconfig FILE get ns\n"+
		"The token works only on your tunnel and ends with session %s (%s; revoke: %s sessions kill %s).\n",
		tunnel, live.ID(), exp.Format(time.RFC3339), m.cfg.Host, live.ID())
	return nil
}
