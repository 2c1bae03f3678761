package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// The break-glass commands: repairs made on the bastion's own machine by
// whoever runs the server, when nobody can do them over ssh any more (no
// admin left, or a model that locks them out). They open the store
// directly, so the server must be stopped; every repair is audited in the
// same hash chain as everything else.

// adminUserName is what `users add` accepts (commands.validName).
var adminUserName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$`)

type adminFlags struct{ config, data, domain string }

func newAdminCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Break-glass repairs on the bastion's machine, with the server stopped: restore-model, grant-admin",
		Long: "Repairs for whoever runs the server, when nobody can make them over ssh: put the default model back, " +
			"or make a user domain admin. They open the store in the data directory directly, so stop the server first. " +
			"Each repair is written to the audit log as admin.break_glass.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.config, "config", "c", "", "the server's YAML configuration (for data_dir and domain)")
	pf.StringVar(&f.data, "data", "", "the server's data directory (default: the config's data_dir; env BASTION_DATA_DIR)")
	pf.StringVar(&f.domain, "domain", "", "the tenancy domain (default: the config's, else \"default\")")
	cmd.AddCommand(newRestoreModelCmd(&f), newGrantAdminCmd(&f))
	return cmd
}

func newRestoreModelCmd(f *adminFlags) *cobra.Command {
	var version uint64
	cmd := &cobra.Command{
		Use:   "restore-model [--version N]",
		Short: "Put the default model (or stored version N) back in force, as a new version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withOfflineStore(c.Context(), f, func(ctx context.Context, o offline) error {
				src, from := policy.DefaultModel, uint64(0)
				if version != 0 {
					old, err := o.st.ModelVersion(ctx, version)
					if err != nil {
						return fmt.Errorf("model version %d: %w", version, err)
					}
					src, from = old.Source, version
				}
				// The same check as `model load`: break-glass must not
				// put a model back that locks the admins out again.
				m, err := policy.LoadBastionModel(src)
				if err != nil {
					return fmt.Errorf("that model cannot be restored:\n%w", err)
				}
				mv, err := modelStore{o.st}.AppendModel(ctx, store.NewModelVersion(src, "bastion", "break-glass", from, time.Now()))
				if err != nil {
					return err
				}
				what := "the default model"
				if from != 0 {
					what = fmt.Sprintf("model version %d", from)
				}
				if err := o.breakGlass(ctx, "restore-model", "model", "restored "+what+" as version "+fmt.Sprint(mv.Version),
					map[string]string{"version": fmt.Sprint(mv.Version), "from": fmt.Sprint(from), "sha256": mv.SHA256}); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "restored %s as model version %d (%d types, sha256 %s); start the server again\n",
					what, mv.Version, len(m.Types()), mv.SHA256[:12])
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&version, "version", 0, "restore this stored version instead of the default model")
	return cmd
}

func newGrantAdminCmd(f *adminFlags) *cobra.Command {
	var keys []string
	cmd := &cobra.Command{
		Use:   "grant-admin USER [--key FILE]...",
		Short: "Make USER a domain admin (creating the user, and registering --key files, if given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			name := args[0]
			if !adminUserName.MatchString(name) {
				return fmt.Errorf("invalid user name %q", name)
			}
			return withOfflineStore(c.Context(), f, func(ctx context.Context, o offline) error {
				if err := bootstrapAdmin(ctx, o.st, o.alog, name, keys, o.log); err != nil {
					return err
				}
				t := store.Tuple{Object: "domain:" + o.domain, Relation: "admin", Subject: "user:" + name}
				if err := o.st.WriteTuples(ctx, []store.Tuple{t}, nil); err != nil {
					return err
				}
				if err := o.breakGlass(ctx, "grant-admin", name, "granted "+t.String(),
					map[string]string{"tuple": t.String(), "keys": strings.Join(keys, ",")}); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "granted %s; start the server again\n", t)
				// The grant only helps under a model with domain#admin: the
				// server starts on the default model when the stored one
				// lacks it, but say so rather than leave it to chance.
				if cur, ok, err := o.st.LatestModel(ctx); err == nil && ok {
					if _, err := policy.LoadBastionModel(cur.Source); err != nil {
						fmt.Fprintf(c.ErrOrStderr(), "note: stored model version %d is unusable, so the server will start on the default model; "+
							"`bastion admin restore-model` makes that permanent:\n%v\n", cur.Version, err)
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&keys, "key", nil, "public key file(s) to register to USER (repeatable)")
	return cmd
}

// offline is the store opened by a break-glass command.
type offline struct {
	st     *badger.Store
	alog   *audit.Log
	log    *slog.Logger
	domain string
}

// breakGlass audits a repair: who ran it on the machine, and what it did.
func (o offline) breakGlass(ctx context.Context, what, target, reason string, details map[string]string) error {
	d := map[string]string{"what": what}
	for k, v := range details {
		d[k] = v
	}
	if u, err := user.Current(); err == nil {
		d["os_user"] = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		d["host"] = h
	}
	_, err := o.alog.Append(ctx, store.Event{Actor: "bastion", Action: "admin.break_glass", Target: target,
		Decision: "allow", Reason: "break-glass " + what + " on the server's machine: " + reason, Details: d})
	if err != nil {
		return fmt.Errorf("auditing the repair: %w", err)
	}
	return nil
}

// withOfflineStore opens the data directory's store and audit log, runs
// fn, and closes them (the audit log first, so that its events are
// written).
func withOfflineStore(ctx context.Context, f *adminFlags, fn func(context.Context, offline) error) error {
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	cfg.applyEnv(os.Getenv)
	if f.data != "" {
		cfg.DataDir = f.data
	}
	if f.domain != "" {
		cfg.Domain = f.domain
	}
	// Refuse a directory without a store: a typo must not create a new,
	// empty one that the real server never reads.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "MANIFEST")); err != nil {
		return fmt.Errorf("no bastion store in %s (give the server's data directory with --data or --config)", cfg.DataDir)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := badger.Open(cfg.DataDir, badger.Options{Logger: log})
	if err != nil {
		// Badger takes a directory lock; the running server holds it.
		if errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "directory lock") {
			return fmt.Errorf("the store in %s is in use by a running bastion: stop the server first (bastion admin opens the store directly)", cfg.DataDir)
		}
		return fmt.Errorf("opening the store in %s: %w", cfg.DataDir, err)
	}
	defer st.Close()
	alog, err := audit.New(st, audit.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("opening the audit log: %w", err)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	err = fn(ctx, offline{st: st, alog: alog, log: log, domain: cfg.Domain})
	if cerr := alog.Close(); err == nil {
		err = cerr
	}
	return err
}
