package policy

import (
	"context"
	"fmt"

	"github.com/sshbastion/bastion/store"
)

// The request context parameters the bastion supplies on every decision.
// A model's conditions may read any of them by declaring a parameter of
// the same name and type, e.g.
//
//	condition office(source_ip: ipaddress) { source_ip.in_cidr("10.0.0.0/8") }
const (
	ParamSourceIP    = "source_ip"    // ipaddress: the client's address
	ParamCurrentTime = "current_time" // timestamp: the time of the decision
	ParamAuthMethod  = "auth_method"  // string: publickey, cert, oidc, sk
	ParamAuthTime    = "auth_time"    // timestamp: when the caller logged in
	ParamAuthAge     = "auth_age"     // duration: current_time - auth_time
	ParamACR         = "acr"          // string: the OIDC acr of the login ("" without one)
	ParamMFA         = "mfa"          // bool: the login was a strong one
	ParamSessionKind = "session_kind" // string: ssh, tcp, kube, sftp
)

// Request is what a decision is asked with besides subject, relation and
// object: the request context that conditions read, and contextual tuples
// (OpenFGA's contextual_tuples), which count as if they were written, for
// this one question only. It is request data, carried by the context.
type Request struct {
	// Context holds parameter values by name: JSON values (strings,
	// float64, bool, []any, map[string]any) or the typed Go values
	// time.Time, time.Duration, netip.Addr.
	Context map[string]any
	// Tuples are the contextual tuples.
	Tuples []store.Tuple
}

type requestKey struct{}

// WithRequest returns ctx carrying r: the engine's Check, Explain,
// ListObjects, ListUsers and Expand read it. It replaces any Request ctx
// carried.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the Request ctx carries (the zero Request if none).
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// query is what one engine call evaluates with: the model, the reader
// (with the contextual tuples laid over the store's), the request context
// and the clock reading, fixed for the whole call.
type query struct {
	m      *Model
	reader TupleReader
	req    map[string]any
}

// newQuery reads the Request from ctx and validates its contextual tuples
// as OpenFGA does: each must be a tuple that could be written.
func (e *Engine) newQuery(ctx context.Context, m *Model) (*query, error) {
	r := RequestFrom(ctx)
	q := &query{m: m, reader: e.reader, req: r.Context}
	if len(r.Tuples) > 0 {
		for _, t := range r.Tuples {
			if err := m.ValidateTuple(t); err != nil {
				return nil, fmt.Errorf("contextual tuple: %w", err)
			}
		}
		q.reader = &contextualReader{base: e.reader, tuples: r.Tuples}
	}
	return q, nil
}

// contextualReader lays contextual tuples over a reader: they come first,
// so that for one exact tuple the contextual one is what is read (as in
// OpenFGA's combined reader).
type contextualReader struct {
	base   TupleReader
	tuples []store.Tuple
}

func (r *contextualReader) TuplesByObject(ctx context.Context, object, relation string) ([]store.Tuple, error) {
	ts, err := r.base.TuplesByObject(ctx, object, relation)
	if err != nil {
		return nil, err
	}
	var out []store.Tuple
	for _, t := range r.tuples {
		if t.Object == object && (relation == "" || t.Relation == relation) {
			out = append(out, t)
		}
	}
	if out == nil {
		return ts, nil
	}
	return append(out, ts...), nil
}

func (r *contextualReader) TuplesBySubject(ctx context.Context, subject, objectType string) ([]store.Tuple, error) {
	ts, err := r.base.TuplesBySubject(ctx, subject, objectType)
	if err != nil {
		return nil, err
	}
	var out []store.Tuple
	for _, t := range r.tuples {
		if t.Subject == subject && (objectType == "" || typeOf(t.Object) == objectType) {
			out = append(out, t)
		}
	}
	if out == nil {
		return ts, nil
	}
	return append(out, ts...), nil
}
