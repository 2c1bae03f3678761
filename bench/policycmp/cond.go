package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/tuplecache"
)

// answer is one Check outcome. A condition that cannot be evaluated (a
// missing parameter, a bad value, a failing CEL expression) is an error
// in both engines: OpenFGA answers it with its validation_error status,
// the bastion with policy.ErrCondition. Error against error agrees; an
// error against an answer does not.
type answer int8

const (
	denied answer = iota
	allowed
	condError
)

func (a answer) String() string { return [...]string{"denied", "allowed", "condition error"}[a] }

// condEngine answers the conditional questions; a non-nil error from it
// is a failure of the run (not a condition error, which is an answer).
type condEngine struct {
	name  string
	check func(ctx context.Context, q policy.CondQuery) (answer, string, error)
	list  func(ctx context.Context, l policy.CondList) ([]string, answer, error)
}

// condPhase is one pass over every question.
type condPhase struct {
	phase
	answers []answer
	notes   []string // the error text behind each condError, for the report
}

// runCond is -cond: the conditional data set on both engines, every
// answer compared. It fails (non-nil error) when any answer disagrees or
// OpenFGA cannot be run, since the comparison is the point.
func runCond(ofgaBin string, seed int64, out string, oo ofgaOptions) error {
	if ofgaBin == "" {
		return errors.New("-cond needs -openfga")
	}
	ctx := context.Background()
	d := policy.GenerateCondBenchData(seed)
	nCond := 0
	for _, t := range d.Tuples {
		if t.Condition != "" {
			nCond++
		}
	}
	logf("conditional data set: %d tuples (%d conditional), %d checks, %d lists", len(d.Tuples), nCond, len(d.Checks), len(d.Lists))
	model, err := policy.LoadModel(d.Model)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "policycmp-cond-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	st, err := badger.Open(dir+"/badger", badger.Options{Logger: quiet})
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := st.WriteTuples(ctx, d.Tuples, nil); err != nil {
		st.Close()
		return err
	}
	oursLoad := time.Since(t0)
	// Reopen, so conditions and contexts are read back from disk.
	if err := st.Close(); err != nil {
		return err
	}
	if st, err = badger.Open(dir+"/badger", badger.Options{Logger: quiet}); err != nil {
		return err
	}
	defer st.Close()
	ours := bastionCond(policy.New(model, tuplecache.New(st, tuplecache.Options{})))

	// OpenFGA with its default ListObjects result limit (1000): with no
	// limit (the 1M run's --listObjects-max-results 0) it drops condition
	// errors from ListObjects and returns what it found; with a limit it
	// answers them with an error unless the limit was reached, which these
	// lists (under 1000 objects) never are.
	oo.extra = append(slices.Clone(oo.extra), "--listObjects-max-results", "1000")
	s, err := startOpenFGA(ctx, ofgaBin, dir, oo)
	if err != nil {
		return err
	}
	defer s.stop()
	if err := s.setup(ctx, d.Model); err != nil {
		return errors.New(s.withLog(err))
	}
	t0 = time.Now()
	if err := s.load(ctx, d.Tuples, oo); err != nil {
		return errors.New(s.withLog(fmt.Errorf("loading %d tuples: %w", len(d.Tuples), err)))
	}
	theirsLoad := time.Since(t0)
	logf("loaded: badger %v, openfga %v", oursLoad.Round(time.Millisecond), theirsLoad.Round(time.Millisecond))
	theirs := openfgaCond(s)

	// Pass 1 of each warms it and gives the answers compared; passes 2
	// (1 caller) and 3 (16 callers) are measured and must give the same.
	res := map[string][3]condPhase{}
	for _, e := range []condEngine{ours, theirs} {
		var ps [3]condPhase
		for i, callers := range []int{1, 1, 16} {
			if ps[i], err = condPass(ctx, d.Checks, callers, e.check); err != nil {
				return errors.New(s.withLog(fmt.Errorf("%s: %w", e.name, err)))
			}
			logf("%s: pass %d, %2d callers: %d checks, p50 %v, p99 %v, %.0f checks/s", e.name, i+1, callers,
				ps[i].n, ps[i].p50, ps[i].p99, ps[i].rate)
		}
		res[e.name] = ps
	}
	ref := res[ours.name][0].answers
	var diffs []string
	var disagree int
	for _, e := range []string{ours.name, theirs.name} {
		for pi, p := range res[e] {
			for i, a := range p.answers {
				if a != ref[i] {
					disagree++
					if len(diffs) < 8 {
						q := d.Checks[i]
						diffs = append(diffs, fmt.Sprintf("check %s %s %s, context %s %v, contextual %v: bastion %v, %s pass %d %v (%s)",
							q.Subject, q.Relation, q.Object, q.ContextName, q.Context, q.Contextual, ref[i], e, pi+1, a, p.notes[i]))
					}
				}
			}
		}
	}

	// ListObjects with context: the same sets, or an error on both sides.
	var listLat [2][]time.Duration
	var listDisagree, listErrs int
	for _, l := range d.Lists {
		var got [2][]string
		var ans [2]answer
		for i, e := range []condEngine{ours, theirs} {
			t := time.Now()
			if got[i], ans[i], err = e.list(ctx, l); err != nil {
				return errors.New(s.withLog(fmt.Errorf("%s: list %v: %w", e.name, l, err)))
			}
			listLat[i] = append(listLat[i], time.Since(t))
			slices.Sort(got[i])
		}
		if ans[0] == condError {
			listErrs++
		}
		if ans[0] != ans[1] || !slices.Equal(got[0], got[1]) {
			listDisagree++
			if len(diffs) < 12 {
				diffs = append(diffs, fmt.Sprintf("list %s %s %s, context %s: bastion %v %d objects, openfga %v %d objects",
					l.Subject, l.Relation, l.Type, l.ContextName, ans[0], len(got[0]), ans[1], len(got[1])))
			}
		}
	}
	rep := condReport{d: d, nCond: nCond, res: res, ours: ours.name, theirs: theirs.name,
		disagree: disagree, listDisagree: listDisagree, listErrs: listErrs,
		oursList: percentiles(listLat[0]), theirsList: percentiles(listLat[1]),
		oursLoad: oursLoad, theirsLoad: theirsLoad, diffs: diffs, oo: oo}
	if err := rep.write(out); err != nil {
		return err
	}
	if disagree+listDisagree > 0 {
		return fmt.Errorf("%d check and %d list answers disagree with OpenFGA's", disagree, listDisagree)
	}
	return nil
}

// bastionCond asks the engine, with the request context and contextual
// tuples on the context as the bastion's subsystems pass them.
func bastionCond(eng *policy.Engine) condEngine {
	classify := func(err error) (answer, string, error) {
		if errors.Is(err, policy.ErrCondition) {
			return condError, err.Error(), nil
		}
		return 0, "", err
	}
	return condEngine{name: "bastion",
		check: func(ctx context.Context, q policy.CondQuery) (answer, string, error) {
			ok, err := eng.Check(policy.WithRequest(ctx, policy.Request{Context: q.Context, Tuples: q.Contextual}),
				q.Subject, q.Relation, q.Object)
			if err != nil {
				return classify(err)
			}
			return answerOf(ok), "", nil
		},
		list: func(ctx context.Context, l policy.CondList) ([]string, answer, error) {
			objs, err := eng.ListObjects(policy.WithRequest(ctx, policy.Request{Context: l.Context}), l.Subject, l.Relation, l.Type)
			if err != nil {
				a, _, err := classify(err)
				return nil, a, err
			}
			return objs, denied, nil
		},
	}
}

// openfgaCond asks OpenFGA over gRPC, with the context and contextual
// tuples in the request.
func openfgaCond(s *ofga) condEngine {
	classify := func(err error) (answer, string, error) {
		if status.Code(err) == codes.Code(openfgav1.ErrorCode_validation_error) {
			return condError, status.Convert(err).Message(), nil
		}
		return 0, "", err
	}
	return condEngine{name: "openfga",
		check: func(ctx context.Context, q policy.CondQuery) (answer, string, error) {
			rc, err := structpb.NewStruct(q.Context)
			if err != nil {
				return 0, "", err
			}
			req := &openfgav1.CheckRequest{StoreId: s.store, AuthorizationModelId: s.model, Context: rc,
				TupleKey: &openfgav1.CheckRequestTupleKey{User: q.Subject, Relation: q.Relation, Object: q.Object}}
			if len(q.Contextual) > 0 {
				if req.ContextualTuples, err = contextual(q.Contextual); err != nil {
					return 0, "", err
				}
			}
			res, err := s.c.Check(ctx, req)
			if err != nil {
				return classify(err)
			}
			return answerOf(res.GetAllowed()), "", nil
		},
		list: func(ctx context.Context, l policy.CondList) ([]string, answer, error) {
			rc, err := structpb.NewStruct(l.Context)
			if err != nil {
				return nil, 0, err
			}
			res, err := s.c.ListObjects(ctx, &openfgav1.ListObjectsRequest{StoreId: s.store, AuthorizationModelId: s.model,
				Type: l.Type, Relation: l.Relation, User: l.Subject, Context: rc})
			if err != nil {
				a, _, err := classify(err)
				return nil, a, err
			}
			return res.GetObjects(), denied, nil
		},
	}
}

func contextual(ts []store.Tuple) (*openfgav1.ContextualTupleKeys, error) {
	out := &openfgav1.ContextualTupleKeys{}
	for _, t := range ts {
		k, err := tupleKey(t)
		if err != nil {
			return nil, err
		}
		out.TupleKeys = append(out.TupleKeys, k)
	}
	return out, nil
}

func answerOf(ok bool) answer {
	if ok {
		return allowed
	}
	return denied
}

// condPass asks every question once, from callers goroutines, and
// returns the answers in question order with the latencies.
func condPass(ctx context.Context, qs []policy.CondQuery, callers int,
	check func(context.Context, policy.CondQuery) (answer, string, error)) (condPhase, error) {
	p := condPhase{answers: make([]answer, len(qs)), notes: make([]string, len(qs))}
	lat := make([]time.Duration, len(qs))
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(qs) {
					return
				}
				t := time.Now()
				a, note, err := check(ctx, qs[i])
				lat[i] = time.Since(t)
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("check %v: %w", qs[i].CheckQuery, err) })
					return
				}
				p.answers[i], p.notes[i] = a, note
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return p, firstErr
	}
	elapsed := time.Since(start)
	p.phase = percentiles(slices.Clone(lat))
	p.rate = float64(len(qs)) / elapsed.Seconds()
	return p, nil
}
