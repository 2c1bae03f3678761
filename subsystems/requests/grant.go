package requests

import (
	"context"
	"fmt"
	"time"

	"github.com/sshbastion/bastion/store"
)

// A grant from an approved request is its own record, never the user's
// direct tuple. Writing resource:R#act@user:U would replace the expiry of
// a standing tuple the user already holds (WriteTuples replaces it), and
// deleting it at expiry or drop would destroy that standing access. So a
// request writes only tuples named after itself:
//
//	group:request-<ID>#member@user:<U>              (expires with the grant)
//	resource:<R>#act@group:request-<ID>#member      (one per Resource, same expiry)
//
// The default model admits group#member on resource#act, so this needs
// no model change; Approve checks that the model in force admits it.
// Dropping or expiring the request deletes exactly these tuples, which
// nothing else writes.

// grantGroup is the group that holds one request's grant.
func grantGroup(id string) string { return "group:request-" + id }

// grants are the tuples an approved request adds (and later removes).
func grants(r store.AccessRequest, expires time.Time) []store.Tuple {
	g := grantGroup(r.ID)
	ts := []store.Tuple{{Object: g, Relation: "member", Subject: "user:" + r.User, Expires: expires}}
	for _, name := range r.Resources {
		ts = append(ts, store.Tuple{Object: "resource:" + name, Relation: "act", Subject: g + "#member", Expires: expires})
	}
	return ts
}

// TupleReader reads tuples; the service uses it, when its TupleWriter
// also implements it, to clean up grants written before grants had their
// own record.
type TupleReader interface {
	TuplesByObject(ctx context.Context, object, relation string) ([]store.Tuple, error)
}

// legacyGrants are direct act tuples that an older version wrote for r:
// resource:R#act@user:U with exactly r's expiry. A tuple with any other
// expiry (none, above all) was written by someone else and is kept.
func (s *Service) legacyGrants(ctx context.Context, r store.AccessRequest) []store.Tuple {
	rd, ok := s.tuples.(TupleReader)
	if !ok || r.Expires.IsZero() {
		return nil
	}
	var out []store.Tuple
	for _, name := range r.Resources {
		ts, err := rd.TuplesByObject(ctx, "resource:"+name, "act")
		if err != nil {
			continue
		}
		for _, t := range ts {
			if t.Subject == "user:"+r.User && !t.Expires.IsZero() && absDuration(t.Expires.Sub(r.Expires)) < time.Second {
				out = append(out, t)
			}
		}
	}
	return out
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// removeGrant deletes what r's approval added, and nothing else.
func (s *Service) removeGrant(ctx context.Context, r store.AccessRequest) error {
	del := append(grants(r, time.Time{}), s.legacyGrants(ctx, r)...)
	return s.tuples.WriteTuples(ctx, nil, del)
}

// checkGrantHolds makes sure the grant just written gives act on every
// Resource: a custom model that does not admit group#member on act would
// otherwise approve a request that grants nothing.
func (s *Service) checkGrantHolds(ctx context.Context, r store.AccessRequest) error {
	for _, name := range r.Resources {
		ok, err := s.policy.Check(ctx, "user:"+r.User, "act", "resource:"+name)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("the policy model does not give act on resource:%s through %s#member; "+
				"the model must admit group#member on resource#act (as examples/model.fga does)", name, grantGroup(r.ID))
		}
	}
	return nil
}
