package requests

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// review loads a pending request and checks that p may decide it: a
// reviewer of every Resource's project, and not the requester.
func (s *Service) review(ctx context.Context, p authn.Principal, id, verb string) (store.AccessRequest, error) {
	r, err := s.st.GetAccessRequest(ctx, id)
	if err != nil {
		return r, fmt.Errorf("no request %q (see `%s request list`)", id, s.cfg.Host)
	}
	// Nobody grants themselves access: approval needs a second person.
	if r.User == p.User {
		return r, fmt.Errorf("refused: %s is your own request; a reviewer of its project must %s it", r.ID, verb)
	}
	if ok, name := s.reviews(ctx, p, r); !ok {
		project := ""
		if res, err := s.st.GetResource(ctx, name); err == nil {
			project = res.Project
		}
		return r, fmt.Errorf("refused: %s is not a reviewer of resource:%s (project %s), so cannot %s %s; reviewers are set with: tuples add project:%s#reviewer@user:NAME",
			p.Subject(), name, project, verb, r.ID, project)
	}
	if r.State != Pending {
		return r, fmt.Errorf("refused: %s is already %s (by %s)", r.ID, r.State, r.Reviewer)
	}
	return r, nil
}

// grantTTL caps the requested TTL by the config and each project's cap.
func (s *Service) grantTTL(ctx context.Context, r store.AccessRequest) time.Duration {
	ttl := r.TTL
	if ttl <= 0 {
		ttl = s.cfg.DefaultTTL
	}
	if ttl > s.cfg.MaxTTL {
		ttl = s.cfg.MaxTTL
	}
	for _, name := range r.Resources {
		if res, err := s.st.GetResource(ctx, name); err == nil {
			if c, ok := s.cfg.ProjectMaxTTL[res.Project]; ok && c > 0 && ttl > c {
				ttl = c
			}
		}
	}
	return ttl
}

// Approve grants the request: expiring tuples of its own, capped TTL.
func (s *Service) Approve(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error) {
	r, err := s.review(ctx, p, id, "approve")
	if err != nil {
		return r, err
	}
	now := s.now().UTC()
	ttl := s.grantTTL(ctx, r)
	r.State, r.Reviewer, r.ReviewReason, r.Reviewed, r.Expires, r.TTL = Approved, p.User, strings.TrimSpace(reason), now, now.Add(ttl), ttl
	// The grant is the request's own record (see grant.go): a standing
	// tuple the user already holds is never touched.
	if err := s.tuples.WriteTuples(ctx, grants(r, r.Expires), nil); err != nil {
		return r, fmt.Errorf("writing the grant: %v", err)
	}
	if err := s.checkGrantHolds(ctx, r); err != nil {
		_ = s.tuples.WriteTuples(ctx, nil, grants(r, time.Time{}))
		return r, fmt.Errorf("the grant would not give access: %v", err)
	}
	if err := s.st.PutAccessRequest(ctx, r); err != nil {
		_ = s.tuples.WriteTuples(ctx, nil, grants(r, time.Time{}))
		return r, err
	}
	s.event(ctx, p.User, "access_request.approved", r, r.ReviewReason, map[string]string{"expires": r.Expires.Format(time.RFC3339)})
	s.notify(r.ID)
	return r, nil
}

// Deny refuses the request, with the reviewer's reason.
func (s *Service) Deny(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error) {
	r, err := s.review(ctx, p, id, "deny")
	if err != nil {
		return r, err
	}
	r.State, r.Reviewer, r.ReviewReason, r.Reviewed = Denied, p.User, strings.TrimSpace(reason), s.now().UTC()
	if err := s.st.PutAccessRequest(ctx, r); err != nil {
		return r, err
	}
	s.event(ctx, p.User, "access_request.denied", r, r.ReviewReason, nil)
	s.notify(r.ID)
	return r, nil
}

// Drop ends an approved grant early: its own tuples go (never a standing
// one), and the tuple write makes the session manager cut what no longer
// holds.
func (s *Service) Drop(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error) {
	r, err := s.st.GetAccessRequest(ctx, id)
	if err != nil {
		return r, fmt.Errorf("no request %q (see `%s request list`)", id, s.cfg.Host)
	}
	if r.User != p.User {
		if ok, _ := s.reviews(ctx, p, r); !ok {
			return r, fmt.Errorf("refused: only %s or a reviewer of its project may drop %s", r.User, r.ID)
		}
	}
	if r.State != Approved {
		return r, fmt.Errorf("refused: %s is %s; only approved grants can be dropped", r.ID, r.State)
	}
	// Only what the approval added goes; a standing tuple stays.
	if err := s.removeGrant(ctx, r); err != nil {
		return r, fmt.Errorf("removing the grant: %v", err)
	}
	r.State, r.Ended, r.EndedBy = Dropped, s.now().UTC(), p.User
	if err := s.st.PutAccessRequest(ctx, r); err != nil {
		return r, err
	}
	s.event(ctx, p.User, "access_request.dropped", r, strings.TrimSpace(reason), nil)
	s.notify(r.ID)
	return r, nil
}

// Run marks approved grants expired once their TTL passed (the tuples
// already stopped counting then) until ctx ends. With Config.Feed it also
// follows the store's changes (see Wait and Changes).
func (s *Service) Run(ctx context.Context) {
	if s.cfg.Feed != nil {
		done := make(chan struct{})
		go func() { defer close(done); s.follow(ctx) }()
		defer func() { <-done }()
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		all, err := s.st.ListAccessRequests(ctx)
		if err != nil {
			continue
		}
		now := s.now().UTC()
		for _, r := range all {
			if r.State != Approved || now.Before(r.Expires) {
				continue
			}
			// The expired tuples are removed too, so that listings stay clean.
			_ = s.removeGrant(ctx, r)
			r.State, r.Ended, r.EndedBy = Expired, now, "bastion"
			if err := s.st.PutAccessRequest(ctx, r); err != nil {
				continue
			}
			s.event(ctx, "bastion", "access_request.expired", r, "the grant's TTL of "+r.TTL.String()+" passed", nil)
			s.notify(r.ID)
		}
	}
}

// Search lists the Resources p may request but cannot reach yet.
func (s *Service) Search(ctx context.Context, p authn.Principal, kind string, labels map[string]string, query string) ([]store.Resource, error) {
	set := func(rel string) (map[string]bool, error) {
		ids, err := s.policy.ListObjects(ctx, p.Subject(), rel, "resource")
		m := map[string]bool{}
		for _, id := range ids {
			m[strings.TrimPrefix(id, "resource:")] = true
		}
		return m, err
	}
	act, err := set("act")
	if err != nil {
		return nil, err
	}
	req, err := set("requestable")
	if err != nil {
		return nil, err
	}
	view, err := set("view")
	if err != nil {
		return nil, err
	}
	all, err := s.st.ListResources(ctx)
	if err != nil {
		return nil, err
	}
	query = strings.ToLower(query)
	var out []store.Resource
	for _, r := range all {
		if act[r.Name] || !(req[r.Name] || view[r.Name]) {
			continue
		}
		if kind != "" && r.Kind != kind {
			continue
		}
		match := true
		for k, v := range labels {
			if r.Labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(r.Name+" "+r.Project+" "+fmt.Sprint(r.Labels)), query) {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
