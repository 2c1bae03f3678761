package stepup

import (
	"context"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/subsystems/reasons"
)

// KindOf is the session kind of a forward to r: kube, ssh (ProxyJump and
// -W to an ssh Resource) or tcp.
func KindOf(r store.Resource) string {
	switch r.Kind {
	case "kube", "ssh":
		return r.Kind
	}
	return "tcp"
}

// Verdict is the step-up answer for a session about to open, in the
// shape the modules use.
type Verdict struct {
	OK bool
	// Message is the refusal for the user (what, why, how to fix it);
	// Reason and Details go into the refusal's audit event.
	Message string
	Reason  string
	Details map[string]string
	// Until and Renew go into sessions.Request (StepUpUntil,
	// StepUpRenew): the session is re-checked when it would outlive its
	// step-up.
	Until time.Time
	Renew func(ctx context.Context) (time.Time, bool)
	// Need is what was required (zero: nothing).
	Need Requirement
}

// Open checks a session of kind to r for p; what names it in messages
// ("forward to prod-db:5432").
func (s *Service) Open(ctx context.Context, p authn.Principal, kind string, r store.Resource, what string) Verdict {
	d := s.Check(ctx, p, kind, r)
	return s.verdict(p, d, what)
}

// OpenNeed is Open for a requirement already resolved.
func (s *Service) OpenNeed(ctx context.Context, p authn.Principal, need Requirement, what string) Verdict {
	return s.verdict(p, s.CheckNeed(ctx, p, need), what)
}

func (s *Service) verdict(p authn.Principal, d Decision, what string) Verdict {
	now := s.now()
	if d.OK && d.Err == nil {
		v := Verdict{OK: true, Until: d.Until, Need: d.Need}
		if !d.Until.IsZero() {
			need := d.Need
			v.Renew = func(ctx context.Context) (time.Time, bool) { return s.Renew(ctx, p, need) }
		}
		return v
	}
	details := map[string]string{
		reasons.DetailKey: reasons.StepUpRequired,
		"step_up_need":    d.Need.String(),
		"have_method":     d.Have.Method,
		"have_auth_time":  d.Have.At.UTC().Format(time.RFC3339),
	}
	if d.Have.ACR != "" {
		details["have_acr"] = d.Have.ACR
	}
	reason := "step-up required: needs " + Describe(d.Need) + "; " + Have(d.Have, now)
	if d.Err != nil {
		reason = "step-up could not be checked: " + d.Err.Error()
	}
	return Verdict{Message: Refusal(what, d, HowTo(s.host, s.cfg.IdentityProvider), now), Reason: reason, Details: details, Need: d.Need}
}
