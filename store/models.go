package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// ModelVersion is one stored version of the authorization model. Versions
// are append-only: loading, rolling back and restoring each add one, and
// the newest is the model in force.
type ModelVersion struct {
	// Version numbers the versions from 1; the store assigns it.
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	// Actor is who made the version: a user, or "bastion" for the first
	// version and for break-glass restores.
	Actor string `json:"actor"`
	// Action is how it came to be: "initial", "load", "rollback" or
	// "break-glass".
	Action string `json:"action"`
	// From is the version a rollback or restore copied (0 otherwise).
	From uint64 `json:"from,omitempty"`
	// SHA256 is the hex SHA-256 of Source; Size its length in bytes.
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
	Source string `json:"source,omitempty"`
}

// Models keeps the versions of the authorization model.
type Models interface {
	// AppendModel stores m as the next version: its Version is the last
	// one plus 1 (1 on an empty history), whatever m.Version says. It
	// returns the version as stored.
	AppendModel(ctx context.Context, m ModelVersion) (ModelVersion, error)
	// ModelVersion returns one version, or ErrNotFound.
	ModelVersion(ctx context.Context, version uint64) (ModelVersion, error)
	// ModelVersions returns every version, oldest first.
	ModelVersions(ctx context.Context) ([]ModelVersion, error)
	// LatestModel returns the newest version; ok is false on an empty
	// history.
	LatestModel(ctx context.Context) (m ModelVersion, ok bool, err error)
}

// NewModelVersion describes source as a version to append: its hash and
// size are computed here, so that every writer records them alike.
func NewModelVersion(source, actor, action string, from uint64, t time.Time) ModelVersion {
	sum := sha256.Sum256([]byte(source))
	return ModelVersion{Time: t.UTC(), Actor: actor, Action: action, From: from,
		SHA256: hex.EncodeToString(sum[:]), Size: len(source), Source: source}
}
