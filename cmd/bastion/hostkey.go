package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/store"
)

const hostKeySecret = "host-key-ed25519"

// loadOrCreateHostKey returns the persistent host key, creating it on the
// first start. Keeping it stable is what spares clients a known_hosts
// warning after a restart.
func loadOrCreateHostKey(ctx context.Context, st store.Secrets) (gossh.Signer, bool, error) {
	raw, err := st.GetSecret(ctx, hostKeySecret)
	if err == nil {
		s, err := gossh.ParsePrivateKey(raw)
		if err != nil {
			return nil, false, fmt.Errorf("stored host key is unreadable: %w", err)
		}
		return s, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "bastion host key")
	if err != nil {
		return nil, false, err
	}
	mine := pem.EncodeToMemory(block)
	// Create-if-absent: of replicas starting together, one key wins and
	// every replica presents it, so clients see no known_hosts change.
	stored, err := st.CreateSecret(ctx, hostKeySecret, mine)
	if err != nil {
		return nil, false, err
	}
	s, err := gossh.ParsePrivateKey(stored)
	return s, string(stored) == string(mine), err
}

func fingerprint(s gossh.Signer) string { return gossh.FingerprintSHA256(s.PublicKey()) }
