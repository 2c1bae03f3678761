package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
)

// `bastion migrate` copies a stopped bastion's whole store into a new,
// empty one (badger to etcd when going from one process to replicas; etcd
// to badger, or badger to badger, work the same way), the audit chain
// byte for byte, and then proves the copy: audit verify on the target,
// the same head, and per kind the same records (counts and digests).
//
// It writes no audit event of its own (no "admin.migrate"): the copied
// chain must stay byte-identical to the source, ending on the same head,
// so that `audit verify` on the old and the new store shows the same
// seq and hash, and so that segments archived from the source still link
// to the target's checkpoint. The proof of the migration is the summary
// it prints and logs; the first event the new replicas write chains onto
// the copied head.

type migrateFlags struct {
	from, to, prefix, fromPrefix, config string
}

func newMigrateCmd() *cobra.Command {
	var f migrateFlags
	cmd := &cobra.Command{
		Use:   "migrate --from badger:DIR --to etcd://HOST:PORT[,HOST:PORT...] [--prefix /bastion/]",
		Short: "Copy a stopped bastion's store into a new, empty one (badger to etcd, or back), audit chain included, and verify it",
		Long: "Copies users, keys, Resources, tuples, sessions, secrets (host key, user CA, pinned target keys, the model), " +
			"model versions, certificate revocations, access requests, kube tokens, recordings and the audit log " +
			"(checkpoint and events, hashes unchanged) from --from into --to, which must be empty. Then it runs audit verify " +
			"on the target and compares every kind with the source, prints a summary, and exits non-zero on any difference.\n\n" +
			"Stop the server first: a badger store is opened directly. Start the replicas on the target only after the migration. " +
			"Stores are named as in BASTION_STORE: badger:DIR or etcd://HOST:PORT[,HOST:PORT...]; --config supplies " +
			"store.etcd.tls, username, password and dial_timeout for an etcd side.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			return runMigrate(ctx, f, c.OutOrStdout(), log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "the source store: badger:DIR or etcd://HOST:PORT[,...] (required)")
	fl.StringVar(&f.to, "to", "", "the target store, which must be empty: etcd://HOST:PORT[,...] or badger:DIR (required)")
	fl.StringVar(&f.prefix, "prefix", "/bastion/", "the etcd key prefix of the target (and of the source, unless --from-prefix)")
	fl.StringVar(&f.fromPrefix, "from-prefix", "", "the etcd key prefix of the source (default: --prefix)")
	fl.StringVarP(&f.config, "config", "c", "", "a server configuration whose store.etcd section gives TLS, credentials and dial_timeout")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// inventory is what a store holds, read through store.Store, plus the
// names that store.Store cannot list (see migSide.extras).
type inventory struct {
	users     []store.User
	keys      []store.Key
	resources []store.Resource
	tuples    []store.Tuple
	sessions  []store.Session
	models    []store.ModelVersion
	certs     []store.CertRevocation
	requests  []store.AccessRequest
	names     extraNames
	head      store.Event
	hasHead   bool
	cp        store.Checkpoint
	hasCP     bool
}

func readInventory(ctx context.Context, s *migSide) (inv inventory, err error) {
	step := func(what string, e error) {
		if err == nil && e != nil {
			err = fmt.Errorf("%s: reading %s: %w", s.name, what, e)
		}
	}
	st := s.st
	inv.users, err = st.ListUsers(ctx)
	var e error
	inv.keys, e = st.ListKeys(ctx)
	step("keys", e)
	inv.resources, e = st.ListResources(ctx)
	step("resources", e)
	inv.tuples, e = st.ListTuples(ctx)
	step("tuples", e)
	inv.sessions, e = st.ListSessions(ctx)
	step("sessions", e)
	inv.models, e = st.ModelVersions(ctx)
	step("model versions", e)
	inv.certs, e = st.ListCertRevocations(ctx)
	step("certificate revocations", e)
	inv.requests, e = st.ListAccessRequests(ctx)
	step("access requests", e)
	inv.names, e = s.extras(ctx)
	step("secret, kube token and recording names", e)
	inv.head, inv.hasHead, e = st.LastEvent(ctx)
	step("the audit head", e)
	inv.cp, inv.hasCP, e = st.Checkpoint(ctx)
	step("the audit checkpoint", e)
	return inv, err
}

// nonEmpty lists what a store holds, "" if nothing.
func (inv inventory) nonEmpty() string {
	var held []string
	for _, c := range []struct {
		what string
		n    int
	}{{"users", len(inv.users)}, {"keys", len(inv.keys)}, {"resources", len(inv.resources)},
		{"tuples", len(inv.tuples)}, {"sessions", len(inv.sessions)}, {"model versions", len(inv.models)},
		{"cert revocations", len(inv.certs)}, {"access requests", len(inv.requests)},
		{"secrets", len(inv.names.secrets)}, {"kube tokens", len(inv.names.kubeTokens)},
		{"recordings", len(inv.names.recordings)}} {
		if c.n > 0 {
			held = append(held, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if inv.hasHead {
		held = append(held, fmt.Sprintf("audit events up to seq %d", inv.head.Seq))
	}
	if inv.hasCP {
		held = append(held, fmt.Sprintf("an audit checkpoint at seq %d", inv.cp.Seq))
	}
	return strings.Join(held, ", ")
}

func runMigrate(ctx context.Context, f migrateFlags, out io.Writer, log *slog.Logger) error {
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	if f.fromPrefix == "" {
		f.fromPrefix = f.prefix
	}
	if strings.TrimRight(f.from, "/") == strings.TrimRight(f.to, "/") && f.fromPrefix == f.prefix {
		return fmt.Errorf("--from and --to are the same store (%s)", f.to)
	}
	src, err := openMigrateSide(ctx, f.from, f.fromPrefix, cfg, true, log)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer src.close()
	dst, err := openMigrateSide(ctx, f.to, f.prefix, cfg, false, log)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer dst.close()
	if src.name == dst.name {
		return fmt.Errorf("--from and --to are the same store (%s)", src.name)
	}

	have, err := readInventory(ctx, src)
	if err != nil {
		return err
	}
	there, err := readInventory(ctx, dst)
	if err != nil {
		return err
	}
	if held := there.nonEmpty(); held != "" {
		return fmt.Errorf("the target %s is not empty (it holds %s): migrate only into a new store "+
			"(a new etcd prefix or cluster, or a new badger directory); nothing was written", dst.name, held)
	}
	// Refuse a broken chain before writing: the copy would not verify.
	if rep, err := audit.Verify(ctx, src.st); err != nil {
		return fmt.Errorf("%s: verifying the audit chain: %w", src.name, err)
	} else if !rep.OK {
		return fmt.Errorf("%s: the audit chain is broken at seq %d (%s): nothing was written; run audit verify on the source",
			src.name, rep.BrokenSeq, rep.Reason)
	}

	started := time.Now()
	if err := copyStore(ctx, src, dst, have); err != nil {
		return fmt.Errorf("copying into %s: %w (the target now holds a partial copy: empty it, "+
			"e.g. `etcdctl del --prefix %s` or remove the badger directory, before trying again)", dst.name, err, f.prefix)
	}
	rows, err := compareStores(ctx, src, dst, have)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "KIND\tSOURCE\tTARGET\tMATCH\n")
	var bad []string
	for _, r := range rows {
		mark := "ok"
		if !r.same {
			mark, bad = "DIFFERS", append(bad, r.kind)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.kind, r.src, r.dst, mark)
	}
	_ = tw.Flush()
	args := []any{"from", src.name, "to", dst.name, "took", time.Since(started).Round(time.Millisecond)}
	for _, r := range rows {
		args = append(args, strings.ReplaceAll(r.kind, " ", "_"), r.dst)
	}
	if len(bad) > 0 {
		log.Error("migrate: the target differs from the source", append(args, "differs", strings.Join(bad, ","))...)
		return fmt.Errorf("the copy in %s differs from the source in: %s", dst.name, strings.Join(bad, ", "))
	}
	log.Info("migrate: copied and verified", args...)
	fmt.Fprintf(out, "migrated %s to %s and verified it; point the replicas at the target (BASTION_STORE=%s)\n",
		src.name, dst.name, f.to)
	return nil
}

// copyStore writes everything of src into the empty dst, then the audit
// log last (its head is what a reader of the target trusts).
func copyStore(ctx context.Context, src, dst *migSide, inv inventory) error {
	s, d := src.st, dst.st
	for _, name := range inv.names.secrets {
		v, err := s.GetSecret(ctx, name)
		if err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		// Create, not put: a replica started on the target meanwhile
		// would have made its own host key, which must not be kept.
		got, err := d.CreateSecret(ctx, name, v)
		if err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		if string(got) != string(v) {
			return fmt.Errorf("secret %s was created on the target meanwhile: is a replica running on it? stop it", name)
		}
	}
	for _, u := range inv.users {
		if err := d.PutUser(ctx, u); err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	for _, k := range inv.keys {
		if err := d.PutKey(ctx, k); err != nil {
			return fmt.Errorf("key %s: %w", k.Fingerprint, err)
		}
	}
	for _, r := range inv.resources {
		if err := d.PutResource(ctx, r); err != nil {
			return fmt.Errorf("resource %s: %w", r.Name, err)
		}
	}
	for i := 0; i < len(inv.tuples); i += 50 {
		if err := d.WriteTuples(ctx, inv.tuples[i:min(i+50, len(inv.tuples))], nil); err != nil {
			return fmt.Errorf("tuples: %w", err)
		}
	}
	for _, x := range inv.sessions {
		if err := d.PutSession(ctx, x); err != nil {
			return fmt.Errorf("session %s: %w", x.ID, err)
		}
	}
	for _, m := range inv.models {
		got, err := d.AppendModel(ctx, m)
		if err != nil {
			return fmt.Errorf("model version %d: %w", m.Version, err)
		}
		if got.Version != m.Version {
			return fmt.Errorf("model version %d was stored as version %d", m.Version, got.Version)
		}
	}
	for _, c := range inv.certs {
		if err := d.RevokeCert(ctx, c); err != nil {
			return fmt.Errorf("certificate revocation %d: %w", c.Serial, err)
		}
	}
	for _, r := range inv.requests {
		if err := d.PutAccessRequest(ctx, r); err != nil {
			return fmt.Errorf("access request %s: %w", r.ID, err)
		}
	}
	for _, h := range inv.names.kubeTokens {
		t, err := s.KubeToken(ctx, h)
		if err != nil {
			return fmt.Errorf("kube token %.12s: %w", h, err)
		}
		if err := d.PutKubeToken(ctx, t); err != nil {
			return fmt.Errorf("kube token %.12s: %w", h, err)
		}
	}
	for _, id := range inv.names.recordings {
		err := s.ReadRecording(ctx, id, func(chunk []byte) error { return d.AppendRecording(ctx, id, chunk) })
		if err != nil {
			return fmt.Errorf("recording %s: %w", id, err)
		}
	}
	return copyEvents(ctx, s, d)
}

// copyEvents puts the source's checkpoint on the empty target, then
// appends the events after it in seq order, unchanged (seq, hash and
// prev_hash are the source's), in batches that fit one transaction of the
// target. It goes to the store directly: audit.Log would re-chain them.
func copyEvents(ctx context.Context, src, dst store.Store) error {
	cp, had, err := src.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if had {
		if err := dst.PutCheckpoint(ctx, store.Checkpoint{}, cp); err != nil {
			return fmt.Errorf("audit checkpoint at seq %d: %w", cp.Seq, err)
		}
	}
	maxBytes, maxOps := 1<<20, 100
	if tl, ok := dst.(audit.TxnLimiter); ok {
		maxBytes, maxOps = tl.TxnLimits()
	}
	var batch []store.Event
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := dst.AppendEvents(ctx, batch); err != nil {
			return fmt.Errorf("audit events %d-%d: %w", batch[0].Seq, batch[len(batch)-1].Seq, err)
		}
		batch, size = nil, 0
		return nil
	}
	err = src.ScanEvents(ctx, cp.Seq+1, func(e store.Event) error {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if len(b) > maxBytes {
			return fmt.Errorf("audit event %d encodes to %d bytes, more than one transaction of the target holds (%d): %w",
				e.Seq, len(b), maxBytes, store.ErrTxnTooBig)
		}
		if len(batch) >= maxOps || size+len(b) > maxBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		batch, size = append(batch, e), size+len(b)
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// digest hashes records order-independently: the sorted SHA-256 of each
// one's JSON encoding.
func digest[T any](xs []T) (string, error) {
	lines := make([]string, 0, len(xs))
	for _, x := range xs {
		b, err := json.Marshal(x)
		if err != nil {
			return "", err
		}
		h := sha256.Sum256(b)
		lines = append(lines, hex.EncodeToString(h[:]))
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:]), nil
}
