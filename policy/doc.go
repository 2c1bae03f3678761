// Package policy decides who may do what: a Zanzibar-style relationship
// (ReBAC) engine.
//
// The model is written in the OpenFGA DSL and parsed with
// github.com/openfga/language; LoadModel validates it and rejects what the
// engine does not support (conditions, modular models) with the line at
// fault. The engine is ours. It reads relationship tuples through the
// TupleReader interface declared here, which store.Tuples satisfies, and
// supports direct types and usersets (group#member, nested to any depth),
// computed relations, tuple-to-userset ("admin from project"), "or",
// "and", "but not", and wildcards (user:*).
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
// GenerateBenchData builds the benchmark data set.
package policy
