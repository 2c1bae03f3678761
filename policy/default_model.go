package policy

import (
	_ "embed" // for DefaultModel
)

// DefaultModel is the bastion's default authorization model in the
// OpenFGA DSL. policy/model.fga is a byte-identical copy of
// examples/model.fga (a test keeps them so); examples/ is not a Go package,
// hence the copy.
//
//go:embed model.fga
var DefaultModel string

// LoadDefaultModel loads DefaultModel.
func LoadDefaultModel() (*Model, error) { return loadModel("model.fga", DefaultModel) }
