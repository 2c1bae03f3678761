package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
)

// bootstrapAdmin creates the admin user if missing and registers the given
// public key files to it. `make run` uses it to let the invoking user in.
func bootstrapAdmin(ctx context.Context, st store.Store, alog *audit.Log, name string, files []string, log *slog.Logger) error {
	if _, err := st.GetUser(ctx, name); errors.Is(err, store.ErrNotFound) {
		// The event comes first: no change without its durable record.
		if _, err := alog.Append(ctx, store.Event{Actor: "bastion", Action: "user.add", Target: name, Decision: "allow", Reason: "bootstrap admin"}); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		if err := st.PutUser(ctx, store.User{Name: name, Source: "bootstrap", Created: time.Now().UTC()}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--admin-key: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			pk, comment, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return fmt.Errorf("--admin-key %s: %w", f, err)
			}
			fp := gossh.FingerprintSHA256(pk)
			if k, err := st.KeyByFingerprint(ctx, fp); err == nil {
				if k.User != name {
					// Never move a key silently from one user to another.
					log.Warn("bootstrap key already belongs to another user; left alone", "fingerprint", fp, "user", k.User)
				}
				continue
			}
			k := store.Key{Fingerprint: fp, User: name, Type: pk.Type(), Comment: comment, Source: "bootstrap",
				AuthorizedKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk))), Added: time.Now().UTC()}
			if _, err := alog.Append(ctx, store.Event{Actor: "bastion", Action: "key.add", Target: name, Decision: "allow",
				Reason: "bootstrap admin key", Details: map[string]string{"fingerprint": fp, "file": f}}); err != nil {
				return fmt.Errorf("audit log: %w", err)
			}
			if err := st.PutKey(ctx, k); err != nil {
				return err
			}
			log.Info("registered bootstrap admin key", "user", name, "fingerprint", fp)
		}
	}
	return nil
}
