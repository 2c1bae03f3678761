package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// KubeToken is a kubeconfig token as the store keeps it: by its SHA-256,
// never the token itself, so that a copy of the store cannot replay it.
// It lets a tunnel on any replica accept a kubeconfig issued through
// another; the token lives as long as Session stays open.
type KubeToken struct {
	// Hash is TokenHash of the token: the record's key.
	Hash string `json:"hash"`
	User string `json:"user"`
	// Groups are the user's groups from their login (the Principal's),
	// impersonated with the token as on the replica that issued it.
	Groups   []string  `json:"groups,omitempty"`
	Resource string    `json:"resource"`
	Session  string    `json:"session"` // the session whose lifetime is the token's
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"` // the session's expiry
	// Used is when a replica other than the session's holder last served
	// a request with the token (written at most now and then): activity
	// that the holder counts against the session's idle timeout.
	Used time.Time `json:"used,omitzero"`
}

// TokenHash returns the key a token is kept under: hex SHA-256.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// KubeTokens keeps kube tokens by hash.
type KubeTokens interface {
	// PutKubeToken creates or replaces the record of t.Hash.
	PutKubeToken(ctx context.Context, t KubeToken) error
	// KubeToken returns the record of hash, or ErrNotFound.
	KubeToken(ctx context.Context, hash string) (KubeToken, error)
	// DeleteKubeToken removes the record of hash; a missing one is not an
	// error.
	DeleteKubeToken(ctx context.Context, hash string) error
}
