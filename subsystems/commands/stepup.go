package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/stepup"
)

// StepUp is the step-up service as the commands use it (stepup.Service).
type StepUp interface {
	Last(ctx context.Context, p authn.Principal) (stepup.Login, error)
	Remember(ctx context.Context, p authn.Principal, l stepup.Login) (until time.Time, perConn bool, err error)
	Config() stepup.Config
}

// StepUpLogin runs the device flow of a step-up (authn.DeviceFlow).
type StepUpLogin interface {
	StartStepUp(ctx context.Context, acr []string, maxAge time.Duration) (*oauth2.DeviceAuthResponse, error)
	Wait(ctx context.Context, da *oauth2.DeviceAuthResponse) (authn.Identity, error)
}

// stepUpResult is `step-up -o json`.
type stepUpResult struct {
	User     string    `json:"user"`
	Method   string    `json:"method"`
	AuthTime time.Time `json:"auth_time"`
	ACR      string    `json:"acr,omitempty"`
	AMR      []string  `json:"amr"`
	MFA      bool      `json:"mfa"`
	Until    time.Time `json:"until"`
	// Scope says who it counts for: "key SHA256:..." (every new
	// connection with that key) or "connection" (this one only).
	Scope string `json:"scope"`
}

func newStepUp(e *env) *cobra.Command {
	var acr []string
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "step-up [RESOURCE]",
		Short: "Log in again at your identity provider, for the sessions that need a recent strong login",
		Long: "step-up runs a device login inside this ssh session (open the URL, enter the code). Once it succeeds, the key you " +
			"logged in with carries that login for step_up.remember, so the next ssh -L, shell or kubeconfig on a new connection " +
			"satisfies a step-up requirement. With RESOURCE, it asks the identity provider for the acr values that Resource accepts.",
		Example: "  ssh bastion step-up\n  ssh bastion step-up prod --max-age 0",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			res := ""
			if len(args) == 1 {
				res = args[0]
			}
			return stepUp(e, res, acr, maxAge)
		},
	}
	cmd.Flags().StringSliceVar(&acr, "acr", nil, "acr values to ask the identity provider for (default: those RESOURCE's step-up accepts)")
	cmd.Flags().DurationVar(&maxAge, "max-age", 0, "max_age to ask the identity provider for (0: authenticate again now)")
	return cmd
}

func stepUp(e *env, res string, acr []string, maxAge time.Duration) error {
	if e.deps.StepUp == nil || e.deps.StepUpLogin == nil {
		return fmt.Errorf("step-up needs an identity provider, and this bastion has none configured (the oidc section); log in with your security key instead")
	}
	if maxAge < 0 {
		return fmt.Errorf("--max-age must not be negative")
	}
	if res != "" && len(acr) == 0 {
		// Ask for what the Resource accepts, so that the IdP can do the
		// right login rather than one that will be refused.
		r, err := e.deps.Resources.GetResource(e.ctx, res)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%q is not a Resource (list them with `%s resources list`)", res, e.deps.Host)
		} else if err != nil {
			return err
		}
		if ok, _ := subsystems.CanView(e.ctx, e.deps.Policy, e.p, r.Name); !ok {
			return fmt.Errorf("%q is not a Resource (list them with `%s resources list`)", res, e.deps.Host)
		}
		kind := stepup.KindOf(r)
		need, err := e.deps.StepUp.Config().For(kind, r.Name, r.Project, r.StepUp)
		if err != nil {
			return err
		}
		acr = need.ACR
	}
	for _, a := range acr {
		if a == "" || strings.ContainsAny(a, " \t") {
			return fmt.Errorf("--acr %q is not an acr value", a)
		}
	}
	details := map[string]string{"source": e.p.SourceAddr, "conn": e.p.SessionID, "max_age": maxAge.String()}
	if len(acr) > 0 {
		details["acr_values"] = strings.Join(acr, " ")
	}
	da, err := e.deps.StepUpLogin.StartStepUp(e.ctx, acr, maxAge)
	if err != nil {
		e.recordRefusal(store.Event{Action: "stepup.fail", Target: e.p.User, Decision: "deny", Reason: err.Error(), Details: details})
		return fmt.Errorf("cannot start the step-up: %v", err)
	}
	// The code is shown only once its start is on record.
	if err := e.record(store.Event{Action: "stepup.start", Target: e.p.User, Details: details}); err != nil {
		return fmt.Errorf("the audit log cannot record this step-up now (%v); try again later", err)
	}
	fmt.Fprintf(e.errOut, "\nbastion: step up: log in again with your identity provider.\n\n%s\nWaiting for you to approve the login (Ctrl-C to give up)...\n",
		subsystems.DeviceCodeText(da))
	wctx, cancel := context.WithDeadline(e.ctx, stepup.WaitDeadline(da, time.Now()))
	defer cancel()
	fail := func(why string) error {
		e.recordRefusal(store.Event{Action: "stepup.fail", Target: e.p.User, Decision: "deny", Reason: why, Details: details})
		return errors.New("step-up failed: " + why)
	}
	id, err := e.deps.StepUpLogin.Wait(wctx, da)
	switch {
	case errors.Is(err, authn.ErrDeviceDenied):
		return fail("the login was denied at the identity provider")
	case errors.Is(err, authn.ErrDeviceExpired), errors.Is(err, context.DeadlineExceeded):
		return fail("the code expired before the login was approved; run step-up again")
	case err != nil:
		return fail(err.Error())
	}
	l, err := stepup.LoginOf(e.p, id, e.deps.Clock())
	if err != nil {
		return fail(err.Error())
	}
	if len(acr) > 0 && !slices.Contains(acr, id.ACR) {
		// Kept all the same: the requirements decide what it is worth,
		// and the message says what was asked for.
		fmt.Fprintf(e.errOut, "bastion: the identity provider answered with acr %q, not one of %s asked for\n", id.ACR, strings.Join(acr, ", "))
	}
	scope := "key " + e.p.KeyFingerprint
	done := stepup.CompleteDetails(e.p, l)
	// No step-up counts before its event is durable.
	if err := e.record(store.Event{Action: "stepup.complete", Target: e.p.User, Details: done}); err != nil {
		return fmt.Errorf("the audit log cannot record this step-up now (%v); try again later", err)
	}
	until, perConn, err := e.deps.StepUp.Remember(e.ctx, e.p, l)
	if err != nil {
		return err
	}
	if perConn {
		scope = "connection"
	}
	out := stepUpResult{User: e.p.User, Method: l.Method, AuthTime: l.At, ACR: l.ACR, AMR: l.AMR, MFA: l.MFA, Until: until, Scope: scope}
	if out.AMR == nil {
		out.AMR = []string{}
	}
	if e.output == "json" {
		return e.render(out, nil, nil)
	}
	acrText := ""
	if l.ACR != "" {
		acrText = ", acr " + l.ACR
	}
	if perConn {
		fmt.Fprintf(e.out, "step-up done (login at %s%s). Your key has no record here (a certificate or keyless login), so it counts for this connection only, until %s.\n",
			l.At.Format(time.RFC3339), acrText, until.Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(e.out, "step-up done (login at %s%s). New connections with key %s satisfy step-up requirements until %s (step_up.remember), within each one's maximum age.\n",
		l.At.Format(time.RFC3339), acrText, e.p.KeyFingerprint, until.Format(time.RFC3339))
	return nil
}
