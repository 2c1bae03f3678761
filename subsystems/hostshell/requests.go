package hostshell

import (
	"context"
	"errors"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/tui"
)

// Requests is the access-request service (subsystems/requests.Service).
type Requests interface {
	Create(ctx context.Context, p authn.Principal, names []string, reason string, ttl time.Duration) (store.AccessRequest, error)
	Reviewable(ctx context.Context, p authn.Principal) ([]store.AccessRequest, error)
	Approve(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error)
	Deny(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error)
}

// SetRequests lets the front door file and review access requests. Call it
// before the server serves.
func (m *Module) SetRequests(r Requests) { m.requests = r }

var errNoRequests = errors.New("access requests are not enabled on this bastion")

// RequestAccess files a request for act on one Resource as the session's
// Principal. The service decides who may ask for what (view or
// requestable on the Resource, not already act) and audits it; the TUI
// only names the Resource, never the requester.
func (b *backend) RequestAccess(ctx context.Context, resource, reason string, ttl time.Duration) (string, error) {
	if b.m.requests == nil {
		return "", errNoRequests
	}
	r, err := b.m.requests.Create(ctx, b.p, []string{resource}, reason, ttl)
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// Pending lists the requests the Principal may decide: the service keeps
// those of others on whose every Resource the Principal is a reviewer.
func (b *backend) Pending(ctx context.Context) ([]tui.Request, error) {
	if b.m.requests == nil {
		return nil, errNoRequests
	}
	list, err := b.m.requests.Reviewable(ctx, b.p)
	if err != nil {
		return nil, err
	}
	out := make([]tui.Request, 0, len(list))
	for _, r := range list {
		// Nobody reviews their own request; the service already leaves
		// them out, and the queue must never offer one.
		if r.User == b.p.User {
			continue
		}
		out = append(out, tui.Request{ID: r.ID, User: r.User, Resources: r.Resources, Reason: r.Reason, TTL: r.TTL, Created: r.Created})
	}
	return out, nil
}

// Decide approves or denies a request as the Principal. The service checks
// that they review every Resource of it and did not file it, whatever the
// TUI showed, and writes the grant and the audit event.
func (b *backend) Decide(ctx context.Context, id string, approve bool, reason string) error {
	if b.m.requests == nil {
		return errNoRequests
	}
	var err error
	if approve {
		_, err = b.m.requests.Approve(ctx, b.p, id, reason)
	} else {
		_, err = b.m.requests.Deny(ctx, b.p, id, reason)
	}
	return err
}
