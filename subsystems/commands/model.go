package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/store"
)

// ModelStore keeps the versions of the model, so that the model in force
// (the newest version) survives restarts and an earlier one can be
// restored with `model rollback`.
type ModelStore interface {
	store.Models
}

// maxModelInput bounds what `model load` reads.
const maxModelInput = 1 << 20

func newModel(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Show, load, list and roll back the authorization model (OpenFGA DSL)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	cmd.AddCommand(newModelShow(e), newModelLoad(e), newModelHistory(e), newModelRollback(e))
	return cmd
}

func newModelShow(e *env) *cobra.Command {
	var version uint64
	show := &cobra.Command{
		Use: "show [--version N]", Short: "Print the model in force, or a stored version of it", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if version == 0 {
				src := e.deps.Policy.Model().Source()
				if e.output == "json" {
					return e.render(modelJSON{Source: src, InForce: true}, nil, nil)
				}
				fmt.Fprint(e.out, src)
				return nil
			}
			mv, err := e.modelVersion(strconv.FormatUint(version, 10))
			if err != nil {
				return err
			}
			if e.output == "json" {
				return e.render(modelJSON{Version: mv.Version, Source: mv.Source, Time: mv.Time, Actor: mv.Actor}, nil, nil)
			}
			fmt.Fprint(e.out, mv.Source)
			return nil
		},
	}
	show.Flags().Uint64Var(&version, "version", 0, "print this stored version (see `model history`)")
	return show
}

// modelVersion parses a version number and returns that version.
func (e *env) modelVersion(arg string) (store.ModelVersion, error) {
	v, err := strconv.ParseUint(arg, 10, 64)
	if err != nil || v == 0 {
		return store.ModelVersion{}, fmt.Errorf("%q is not a model version: give the number `model history` lists", arg)
	}
	if e.deps.Models == nil {
		return store.ModelVersion{}, errors.New("this bastion keeps no model history")
	}
	mv, err := e.deps.Models.ModelVersion(e.ctx, v)
	if errors.Is(err, store.ErrNotFound) {
		return store.ModelVersion{}, fmt.Errorf("there is no model version %d (see `%s model history`)", v, e.deps.Host)
	}
	return mv, err
}

// sourceHash is the hex SHA-256 of a model source, as history records it.
func sourceHash(src string) string {
	sum := sha256.Sum256([]byte(src))
	return hex.EncodeToString(sum[:])
}

// modelJSON is `model show -o json`: the model's DSL source, and which
// stored version it is (the one in force has in_force set).
type modelJSON struct {
	Version uint64    `json:"version,omitempty"`
	InForce bool      `json:"in_force,omitempty"`
	Time    time.Time `json:"time,omitzero"`
	Actor   string    `json:"actor,omitempty"`
	Source  string    `json:"source"`
}
