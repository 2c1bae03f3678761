package policy

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sshbastion/bastion/store"
)

// TupleReader is what the engine reads relationship tuples through.
// store.Tuples satisfies it. Implementations hide expired tuples; the
// engine drops expired ones it is handed anyway.
type TupleReader interface {
	// TuplesByObject returns the live tuples on object with relation.
	TuplesByObject(ctx context.Context, object, relation string) ([]store.Tuple, error)
	// TuplesBySubject returns the live tuples whose subject is exactly
	// subject and whose object has type objectType.
	TuplesBySubject(ctx context.Context, subject, objectType string) ([]store.Tuple, error)
}

// DefaultMaxDepth is how many relation hops one evaluation may follow
// before it gives up with ErrDepthExceeded.
const DefaultMaxDepth = 25

// ErrDepthExceeded is returned (wrapped) when resolving a question needs
// more hops than the engine's depth limit: the answer is unknown, and
// callers must treat it as a denial.
var ErrDepthExceeded = errors.New("policy: depth limit exceeded")

// Engine answers authorization questions over a model and a tuple reader.
// All methods are safe for concurrent use, including SetModel.
type Engine struct {
	model    atomic.Pointer[Model]
	reader   TupleReader
	maxDepth int
	now      func() time.Time
	metrics  *Metrics
}

// Option configures an Engine.
type Option func(*Engine)

// WithMaxDepth sets the depth limit (DefaultMaxDepth if n <= 0).
func WithMaxDepth(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.maxDepth = n
		}
	}
}

// WithClock sets the clock used to drop expired tuples the reader returns.
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// New returns an engine evaluating model over r. model must not be nil.
func New(model *Model, r TupleReader, opts ...Option) *Engine {
	if model == nil {
		panic("policy.New: nil model")
	}
	e := &Engine{reader: r, maxDepth: DefaultMaxDepth, now: time.Now}
	for _, o := range opts {
		o(e)
	}
	e.model.Store(model)
	return e
}

// SetModel swaps the model (hot reload). Calls already running finish with
// the model they started with; later calls use the new one. A nil model is
// ignored.
func (e *Engine) SetModel(m *Model) {
	if m != nil {
		e.model.Store(m)
	}
}

// Model returns the model in use.
func (e *Engine) Model() *Model { return e.model.Load() }

// Check reports whether subject has relation on object, for example
// Check(ctx, "user:alice", "act", "resource:web-1"). A subject may also be
// a userset ("group:ops#member") or a wildcard ("user:*", meaning: is it
// granted to everyone). An error means the answer is unknown.
func (e *Engine) Check(ctx context.Context, subj, relation, object string) (ok bool, err error) {
	if e.metrics != nil {
		defer func(start time.Time) { e.metrics.observe(start, ok, err) }(time.Now())
	}
	c, err := e.newChecker(ctx, subj, relation, object, false)
	if err != nil {
		return false, err
	}
	out, err := c.relation(object, relation, 1)
	if err != nil {
		return false, err
	}
	return out.ok, nil
}

// Explain answers like Check and says why: on success the chain of tuples
// and rules that grants access, otherwise what was tried.
func (e *Engine) Explain(ctx context.Context, subj, relation, object string) (Explanation, error) {
	x := Explanation{Subject: subj, Relation: relation, Object: object}
	c, err := e.newChecker(ctx, subj, relation, object, true)
	if err != nil {
		return x, err
	}
	out, err := c.relation(object, relation, 1)
	x.Tried = c.tried
	x.Conditions = c.conds
	if err != nil {
		return x, err
	}
	x.Allowed = out.ok
	if out.ok {
		x.Path = out.path
	}
	return x, nil
}

// newChecker validates a question and prepares its evaluation. As in
// OpenFGA, a type, relation or subject type the model does not have is an
// error, not a "no".
func (e *Engine) newChecker(ctx context.Context, subj, relation, object string, explain bool) (*checker, error) {
	m := e.model.Load()
	typ, _, err := ParseObject(object)
	if err != nil {
		return nil, err
	}
	if err := m.checkTarget(typ, relation); err != nil {
		return nil, err
	}
	s, err := parseSubject(subj)
	if err != nil {
		return nil, err
	}
	if err := m.checkSubject(s, "question"); err != nil {
		return nil, err
	}
	q, err := e.newQuery(ctx, m)
	if err != nil {
		return nil, err
	}
	c := q.checker(ctx, e, s, subj, e.now())
	c.explain = explain
	return c, nil
}

// checkTarget refuses an object type or relation the model lacks.
func (m *Model) checkTarget(typ, relation string) error {
	if m.types[typ] == nil {
		return fmt.Errorf("%w question: type %q is not in the model", ErrInvalid, typ)
	}
	if m.relation(typ, relation) == nil {
		return fmt.Errorf("%w question: type %q has no relation %q", ErrInvalid, typ, relation)
	}
	return nil
}

// live reports whether a tuple from the reader may be used. The store
// already hides expired tuples; checking again here means a backend bug or
// a clock skew between store and engine cannot resurrect an expired grant.
func live(t *store.Tuple, now time.Time) bool {
	return t.Expires.IsZero() || now.Before(t.Expires)
}

func depthError(max int, obj, rel string) error {
	return fmt.Errorf("%w: more than %d hops needed at %s#%s", ErrDepthExceeded, max, obj, rel)
}
