package commands

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// maxKeyInput bounds what `keys add` reads from stdin.
const maxKeyInput = 64 << 10

func newKeys(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage public keys", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	var skOpts skOptions
	add := &cobra.Command{
		Use: "add USER", Short: "Register the public keys read from stdin to USER (admin only)", Args: cobra.ExactArgs(1),
		Example: "  ssh bastion keys add alice < id_ed25519.pub\n  ssh bastion keys add alice < id_ed25519_sk.pub    # a FIDO2 security key: each login needs a touch",
		RunE: func(_ *cobra.Command, args []string) error {
			if err := e.requireAdmin("keys add"); err != nil {
				return err
			}
			return keysAdd(e, args[0], skOpts)
		},
	}
	add.Flags().BoolVar(&skOpts.noTouch, "no-touch-required", false,
		"security keys only: accept signatures without user presence (as the authorized_keys option; only for keys made with ssh-keygen -O no-touch-required)")
	add.Flags().BoolVar(&skOpts.verify, "verify-required", false,
		"security keys only: demand user verification (a PIN) in every signature")
	list := &cobra.Command{
		Use: "list [USER]", Short: "List keys (yours, or USER's for admins)", Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var ks []store.Key
			var err error
			switch {
			case len(args) == 1 && args[0] != e.p.User:
				if err := e.requireAdmin("keys list " + args[0]); err != nil {
					return err
				}
				ks, err = e.deps.Accounts.KeysOf(e.ctx, args[0])
			default:
				ks, err = e.deps.Accounts.KeysOf(e.ctx, e.p.User)
			}
			if err != nil {
				return err
			}
			if ks == nil {
				ks = []store.Key{}
			}
			now := e.deps.Clock()
			rows := [][]string{}
			for _, k := range ks {
				exp := "never"
				if !k.Expires.IsZero() {
					exp = k.Expires.UTC().Format(time.RFC3339)
					if k.Expired(now) {
						exp += " (expired)"
					}
				}
				rows = append(rows, []string{k.Fingerprint, k.User, k.Type, k.Comment, k.Source, exp})
			}
			return e.render(ks, []string{"FINGERPRINT", "USER", "TYPE", "COMMENT", "SOURCE", "EXPIRES"}, rows)
		},
	}
	rm := &cobra.Command{
		Use: "rm FINGERPRINT", Short: "Revoke a key (your own, or any for admins)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			k, err := e.deps.Accounts.KeyByFingerprint(e.ctx, args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no key with fingerprint %s (see `keys list`)", args[0])
			} else if err != nil {
				return err
			}
			// Users may revoke their own keys; anyone else's needs admin.
			if k.User != e.p.User {
				if err := e.requireAdmin("keys rm of another user's key"); err != nil {
					return err
				}
			}
			if err := e.deps.Accounts.DeleteKey(e.ctx, k.Fingerprint); err != nil {
				return err
			}
			if err := e.record(store.Event{Action: "key.rm", Target: k.User, Details: map[string]string{"fingerprint": k.Fingerprint}}); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "revoked %s (%s)\n", k.Fingerprint, k.User)
			return nil
		},
	}
	cmd.AddCommand(add, list, rm)
	return cmd
}

// skOptions are the security-key flags of `keys add`.
type skOptions struct{ noTouch, verify bool }

func keysAdd(e *env, user string, sk skOptions) error {
	if _, err := e.deps.Accounts.GetUser(e.ctx, user); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q; add it first with: %s users add %s", user, e.deps.Host, user)
	} else if err != nil {
		return err
	}
	// Parse everything before writing anything, so that bad input loses
	// nothing and adds nothing.
	var keys []store.Key
	sc := bufio.NewScanner(io.LimitReader(e.in, maxKeyInput))
	sc.Buffer(make([]byte, 0, 16<<10), maxKeyInput)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		pk, comment, _, _, err := gossh.ParseAuthorizedKey([]byte(text))
		if err != nil {
			return fmt.Errorf("stdin line %d: not an OpenSSH public key: %v", line, err)
		}
		if _, isCert := pk.(*gossh.Certificate); isCert {
			return fmt.Errorf("stdin line %d: that is a certificate; register the plain public key instead", line)
		}
		if (sk.noTouch || sk.verify) && !authn.IsSecurityKey(pk) {
			// The flags say what a security key's signatures must assert;
			// on another key they would mean nothing, and silently.
			return fmt.Errorf("stdin line %d: --no-touch-required and --verify-required apply to security keys (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256) only, and this is %s", line, pk.Type())
		}
		fp := gossh.FingerprintSHA256(pk)
		if other, err := e.deps.Accounts.KeyByFingerprint(e.ctx, fp); err == nil && other.User != user {
			// One key, one identity: a key registered to two users would
			// make the login identity ambiguous.
			return fmt.Errorf("stdin line %d: key %s is already registered to %s", line, fp, other.User)
		}
		keys = append(keys, store.Key{Fingerprint: fp, User: user, Type: pk.Type(),
			AuthorizedKey: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk))), Comment: comment,
			Source: "admin", Added: e.deps.Clock().UTC(), NoTouchRequired: sk.noTouch, VerifyRequired: sk.verify})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading stdin: %v", err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("no public key on stdin; usage: %s keys add %s < id_ed25519.pub", e.deps.Host, user)
	}
	for _, k := range keys {
		if err := e.deps.Accounts.PutKey(e.ctx, k); err != nil {
			return err
		}
		d := map[string]string{"fingerprint": k.Fingerprint, "type": k.Type}
		if k.NoTouchRequired {
			d["no_touch_required"] = "true"
		}
		if k.VerifyRequired {
			d["verify_required"] = "true"
		}
		if err := e.record(store.Event{Action: "key.add", Target: user, Details: d}); err != nil {
			return err
		}
		fmt.Fprintf(e.out, "added %s %s for %s\n", k.Type, k.Fingerprint, user)
	}
	if sk.verify {
		fmt.Fprintf(e.errOut, "note: %v\n", authn.ErrVerifyUnsupported)
	}
	return nil
}
