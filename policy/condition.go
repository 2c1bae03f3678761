package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	openfgav1 "github.com/openfga/api/proto/openfga/v1"

	"github.com/sshbastion/bastion/store"
)

// ErrCondition is wrapped by every error evaluating a tuple's condition:
// a missing or ill-typed parameter, or an expression that fails. Such an
// answer is unknown, and callers deny.
var ErrCondition = errors.New("condition not evaluable")

// maxConditionCost bounds the work of one evaluation, in CEL's cost units:
// the OpenFGA server's default (100), so that an expression it refuses to
// finish is refused here too.
const maxConditionCost = 100

// condition is one compiled "condition NAME(p: T, ...) { EXPR }" block.
// It is built once, when the model loads, and shared by every evaluation.
type condition struct {
	name   string
	line   int
	expr   string
	params map[string]*paramType
	order  []string // parameter names, sorted
	prg    cel.Program
}

var (
	baseEnvOnce sync.Once
	baseEnv     *cel.Env
	baseEnvErr  error
)

// celBase is the environment every condition extends.
func celBase() (*cel.Env, error) {
	baseEnvOnce.Do(func() { baseEnv, baseEnvErr = cel.NewEnv(celEnvOptions()...) })
	return baseEnv, baseEnvErr
}

// compileCondition type-checks and compiles one condition. Problems are
// returned with the DSL line they are on: exprLine is the line on which
// the expression starts.
func compileCondition(c *openfgav1.Condition, line, exprLine int) (*condition, []*ModelError) {
	cd := &condition{name: c.GetName(), line: line, expr: c.GetExpression(), params: map[string]*paramType{}}
	var errs []*ModelError
	fail := func(ln int, format string, args ...any) {
		errs = append(errs, &ModelError{Line: ln, Msg: fmt.Sprintf("condition %s: ", cd.name) + fmt.Sprintf(format, args...)})
	}
	base, err := celBase()
	if err != nil {
		fail(line, "the CEL environment: %v", err)
		return nil, errs
	}
	var opts []cel.EnvOption
	for name, ref := range c.GetParameters() {
		pt, err := newParamType(ref)
		if err != nil {
			fail(line, "parameter %s: %v", name, err)
			continue
		}
		cd.params[name] = pt
		cd.order = append(cd.order, name)
		opts = append(opts, cel.Variable(name, pt.cel))
	}
	sort.Strings(cd.order)
	if len(errs) > 0 {
		return nil, errs
	}
	env, err := base.Extend(opts...)
	if err != nil {
		fail(line, "%v", err)
		return nil, errs
	}
	ast, iss := env.Compile(cd.expr)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			ln := exprLine
			if l := e.Location.Line(); l > 0 && exprLine > 0 {
				ln = exprLine + l - 1
			}
			fail(ln, "%s", e.Message)
		}
		return nil, errs
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		fail(exprLine, "the expression is of type %s; a condition must be a bool", ast.OutputType())
		return nil, errs
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize, cel.OptTrackCost),
		cel.CostLimit(maxConditionCost), cel.InterruptCheckFrequency(100))
	if err != nil {
		fail(exprLine, "%v", err)
		return nil, errs
	}
	cd.prg = prg
	return cd, nil
}

// condEval is the outcome of one evaluation, for explanations.
type condEval struct {
	met bool
	// values are the parameters the expression saw, by name.
	values map[string]any
}

// evaluate runs the condition over the tuple's context merged onto the
// request's: on a name in both, the tuple's value wins, as in OpenFGA,
// so that a grant's fixed parameters cannot be overridden by whoever
// asks. A parameter missing from both is an error, as in OpenFGA (whose
// Check answers it with an error, not a "no"); so is a value of the
// wrong type and an expression that fails or costs too much.
func (cd *condition) evaluate(t *store.Tuple, req map[string]any) (condEval, error) {
	vars := make(map[string]any, len(cd.order))
	var missing []string
	for _, name := range cd.order {
		v, ok := t.Context[name]
		if !ok {
			v, ok = req[name]
		}
		if !ok {
			missing = append(missing, name)
			continue
		}
		tv, err := cd.params[name].convert(v)
		if err != nil {
			return condEval{}, fmt.Errorf("%w: %s of %s: parameter %s: %v", ErrCondition, cd.name, t, name, err)
		}
		vars[name] = tv
	}
	if len(missing) > 0 {
		return condEval{values: vars}, fmt.Errorf("%w: %s of %s: missing context parameter(s) %s",
			ErrCondition, cd.name, t, strings.Join(missing, ", "))
	}
	out, _, err := cd.prg.Eval(vars)
	if err != nil {
		return condEval{values: vars}, fmt.Errorf("%w: %s of %s: %v", ErrCondition, cd.name, t, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return condEval{values: vars}, fmt.Errorf("%w: %s of %s: the expression gave %v, not a bool", ErrCondition, cd.name, t, out)
	}
	return condEval{met: b, values: vars}, nil
}

// formatValues renders the values an evaluation saw, sorted by name:
// "end=2025-01-02T17:00:00Z, source_ip=10.1.2.3".
func formatValues(vs map[string]any) string {
	names := make([]string, 0, len(vs))
	for n := range vs {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + formatValue(vs[n])
	}
	return strings.Join(parts, ", ")
}

// validateContext checks the context written with a conditional tuple:
// every key is a parameter of the condition, and every value has the
// parameter's type (as OpenFGA checks on write). Parameters may be left
// out, for the request to supply.
func (cd *condition) validateContext(ctx map[string]any) error {
	names := make([]string, 0, len(ctx))
	for k := range ctx {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		pt := cd.params[k]
		if pt == nil {
			return fmt.Errorf("condition %s has no parameter %q (it takes %s)", cd.name, k, strings.Join(cd.order, ", "))
		}
		if _, err := pt.convert(ctx[k]); err != nil {
			return fmt.Errorf("condition %s, parameter %s: %v", cd.name, k, err)
		}
	}
	return nil
}

// Signature renders the condition's head, "on_shift(current_time:
// timestamp, start: timestamp, end: timestamp)".
func (cd *condition) Signature() string {
	parts := make([]string, len(cd.order))
	for i, n := range cd.order {
		parts[i] = n + ": " + cd.params[n].String()
	}
	return cd.name + "(" + strings.Join(parts, ", ") + ")"
}
