// Package policy decides who may do what: a Zanzibar-style relationship
// (ReBAC) engine.
//
// The model is written in the OpenFGA DSL and parsed with
// github.com/openfga/language; LoadModel validates it and rejects what the
// engine does not support (modular models, inline $expressions) with the
// line at fault. The engine is ours. It reads relationship tuples through
// the TupleReader interface declared here, which store.Tuples satisfies,
// and supports direct types and usersets (group#member, nested to any
// depth), computed relations, tuple-to-userset ("admin from project"),
// "or", "and", "but not", wildcards (user:*), and conditions (schema 1.1:
// "[user with office]" and "condition office(source_ip: ipaddress) {...}").
//
// Conditions are CEL expressions, compiled once at load with
// github.com/google/cel-go, as the OpenFGA server compiles them, with the
// same parameter types, ipaddress type, cost limit and value conversions
// (condtypes.go, condition.go). A conditional tuple carries the
// condition's name and a context; a decision carries a request context
// and contextual tuples in its context.Context (WithRequest). The tuple's
// context wins over the request's; a missing parameter or failing
// expression is an error (ErrCondition), never an allow.
//
// At the edges the engine answers as OpenFGA: an unknown subject type,
// userset relation or list filter is an error (ErrInvalid), ids follow
// OpenFGA's syntax, and a "no" reached through a cycle fails the
// subtracted side of "but not" (a cycle through "but not" or "and" never
// grants).
//
// Engine answers Check, ListObjects (by walking the graph backwards from
// the subject, not by checking every object), ListUsers, Expand and
// Explain. Evaluation is guarded against cycles and bounded by a depth
// limit (ErrDepthExceeded). SetModel swaps the model while the engine
// serves.
//
// DefaultModel is the bastion's model: domain -> project -> resource, with
// nested groups; see model.fga. RunFixtures runs the YAML fixtures under
// testdata/ against any TupleReader, so store backends can reuse them, and
// GenerateBenchData builds the benchmark data set (GenerateCondBenchData
// its conditional variant, with request contexts).
package policy
