package hostshell

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/stepup"
	"github.com/sshbastion/bastion/tui"
)

// StepUpLogin runs the device flow of a step-up (authn.DeviceFlow).
type StepUpLogin interface {
	StartStepUp(ctx context.Context, acr []string, maxAge time.Duration) (*oauth2.DeviceAuthResponse, error)
	Wait(ctx context.Context, da *oauth2.DeviceAuthResponse) (authn.Identity, error)
}

// SetStepUpLogin lets the TUI run step-ups (nil: it tells the user to
// log in with a security key). Call it before the server serves.
func (m *Module) SetStepUpLogin(l StepUpLogin) { m.login = l }

// stepUpNote is what the TUI shows of r's step-up for the Principal:
// what it needs and what they have, or "" when their logins satisfy it
// now (or it needs none).
func (b *backend) stepUpNote(ctx context.Context, r store.Resource) string {
	su := b.m.cfg.StepUp
	if su == nil {
		return ""
	}
	d := su.Check(ctx, b.p, stepup.KindOf(r), r)
	switch {
	case d.Err != nil:
		return "the step-up could not be checked: " + d.Err.Error()
	case d.OK:
		return ""
	}
	return "it needs " + stepup.Describe(d.Need) + "; " + stepup.Have(d.Have, time.Now())
}

// StartStepUp starts the device flow of a step-up for what resource
// needs, as `ssh bastion step-up RESOURCE` does: audited stepup.start
// before the code shows, then, in Wait, the same-user check,
// stepup.complete, and the step-up kept for the key (step_up.remember).
func (b *backend) StartStepUp(ctx context.Context, resource string) (tui.StepUpPrompt, error) {
	m, p := b.m, b.p
	if m.cfg.StepUp == nil || m.login == nil {
		return tui.StepUpPrompt{}, fmt.Errorf("step-up needs an identity provider, and this bastion has none configured; log in with your security key instead")
	}
	r, err := m.resources.GetResource(ctx, resource)
	if err != nil {
		return tui.StepUpPrompt{}, err
	}
	if ok, _ := subsystems.CanView(ctx, m.policy, p, r.Name); !ok {
		return tui.StepUpPrompt{}, fmt.Errorf("%q is not a Resource", resource)
	}
	// Ask for what the Resource accepts, so that the IdP does the login
	// that will count.
	need, err := m.cfg.StepUp.Config().For(stepup.KindOf(r), r.Name, r.Project, r.StepUp)
	if err != nil {
		return tui.StepUpPrompt{}, err
	}
	acr := need.ACR
	details := map[string]string{"source": p.SourceAddr, "conn": p.SessionID, "max_age": "0s", "resource": r.Name, "via": "tui"}
	if len(acr) > 0 {
		details["acr_values"] = strings.Join(acr, " ")
	}
	fail := func(why string) error {
		m.recordRefusal(ctx, store.Event{Actor: p.User, Action: "stepup.fail", Target: p.User, Decision: "deny", Reason: why, Details: details})
		return errors.New(why)
	}
	da, err := m.login.StartStepUp(ctx, acr, 0)
	if err != nil {
		return tui.StepUpPrompt{}, fail("cannot start the step-up: " + err.Error())
	}
	// The code is shown only once its start is on record.
	if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "stepup.start", Target: p.User, Decision: "allow", Details: details}); err != nil {
		return tui.StepUpPrompt{}, fmt.Errorf("the audit log cannot record this step-up now (%v); try again later", err)
	}
	wait := func(ctx context.Context) (string, error) {
		wctx, cancel := context.WithDeadline(ctx, stepup.WaitDeadline(da, time.Now()))
		defer cancel()
		id, err := m.login.Wait(wctx, da)
		switch {
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			return "", fail("given up in the menu")
		case errors.Is(err, authn.ErrDeviceDenied):
			return "", fail("the login was denied at the identity provider")
		case errors.Is(err, authn.ErrDeviceExpired), errors.Is(err, context.DeadlineExceeded):
			return "", fail("the code expired before the login was approved; try again")
		case err != nil:
			return "", fail(err.Error())
		}
		l, err := stepup.LoginOf(p, id, time.Now())
		if err != nil {
			return "", fail(err.Error())
		}
		done := stepup.CompleteDetails(p, l)
		done["via"] = "tui"
		// No step-up counts before its event is durable.
		if _, err := m.audit.Append(ctx, store.Event{Actor: p.User, Action: "stepup.complete", Target: p.User, Decision: "allow", Details: done}); err != nil {
			return "", fmt.Errorf("the audit log cannot record this step-up now (%v); try again later", err)
		}
		until, perConn, err := m.cfg.StepUp.Remember(ctx, p, l)
		if err != nil {
			return "", err
		}
		msg := fmt.Sprintf("step-up done (acr %q); it counts until %s", l.ACR, until.Local().Format("15:04"))
		if len(acr) > 0 && !slices.Contains(acr, id.ACR) {
			msg = fmt.Sprintf("step-up done, but the identity provider answered with acr %q, not one of %s", id.ACR, strings.Join(acr, ", "))
		}
		if perConn {
			msg += " (for this connection only)"
		}
		return msg, nil
	}
	return tui.StepUpPrompt{Text: subsystems.DeviceCodeText(da), Wait: wait}, nil
}
