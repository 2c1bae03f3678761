package stepup

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/sshbastion/bastion/authn"
)

// The parts of a step-up device flow that `ssh bastion step-up` and the
// TUI share: how long to wait for the IdP, what its answer is worth, and
// what the stepup.complete event says.

// MaxWait bounds how long a step-up waits for the IdP, whatever expiry
// the IdP gives its codes.
const MaxWait = 15 * time.Minute

// WaitDeadline is when a step-up with device code da stops waiting: the
// code's expiry, never more than MaxWait from now.
func WaitDeadline(da *oauth2.DeviceAuthResponse, now time.Time) time.Time {
	if da.Expiry.IsZero() || da.Expiry.Sub(now) > MaxWait {
		return now.Add(MaxWait)
	}
	return da.Expiry
}

// LoginOf is the step-up login the IdP answered with id for p, at now.
// The IdP must vouch for this very user: a step-up by another account
// would lend its freshness to someone it did not see, so that is refused.
// An auth_time missing or in the future counts as now.
func LoginOf(p authn.Principal, id authn.Identity, now time.Time) (Login, error) {
	if id.User != p.User {
		return Login{}, fmt.Errorf("the identity provider logged in %q, but you are %q; step up with your own account", id.User, p.User)
	}
	at := id.AuthTime
	if at.IsZero() || at.After(now) {
		at = now
	}
	return Login{Method: "step-up", At: at.UTC(), ACR: id.ACR, AMR: id.AMR, MFA: authn.AMRIsMFA(id.AMR), Strong: true}, nil
}

// CompleteDetails are the details of the stepup.complete event of l for p.
func CompleteDetails(p authn.Principal, l Login) map[string]string {
	d := map[string]string{"auth_time": l.At.Format(time.RFC3339), "fingerprint": p.KeyFingerprint, "conn": p.SessionID}
	if l.ACR != "" {
		d["acr"] = l.ACR
	}
	if len(l.AMR) > 0 {
		d["amr"] = strings.Join(l.AMR, ",")
	}
	return d
}
