package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	bdb "github.com/dgraph-io/badger/v4"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
	"github.com/sshbastion/bastion/store/etcd"
)

// migSide is one store of a migration.
type migSide struct {
	name string // badger:/abs/dir or etcd://h:p,h:p/prefix/
	st   store.Store
	// extras lists what store.Store cannot: secret names, kube token
	// hashes and recording ids. For etcd it reads the store now (live);
	// for badger it is the list read when the side was opened, since the
	// directory is locked while the store is open.
	extras  func(context.Context) (extraNames, error)
	live    bool
	closers []func() error
}

type extraNames struct{ secrets, kubeTokens, recordings []string }

func (s *migSide) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
}

// The role prefixes of the records store.Store cannot list, the same in
// both backends (see the key layouts in store/badger and store/etcd).
const (
	rawSecret    = "x/"
	rawKubeToken = "kt/"
	rawRecording = "rec/"
)

func (n *extraNames) add(prefix, rest string) {
	switch prefix {
	case rawSecret:
		n.secrets = append(n.secrets, rest)
	case rawKubeToken:
		n.kubeTokens = append(n.kubeTokens, rest)
	case rawRecording: // rec/<id>\x00<chunk>
		id, _, _ := strings.Cut(rest, "\x00")
		if k := len(n.recordings); k == 0 || n.recordings[k-1] != id {
			n.recordings = append(n.recordings, id)
		}
	}
}

// openMigrateSide opens spec (badger:DIR or etcd://HOST:PORT,...). A
// badger source must exist; a badger target may be a new directory.
func openMigrateSide(ctx context.Context, spec, prefix string, cfg Config, source bool, log *slog.Logger) (*migSide, error) {
	var c Config
	switch {
	case strings.HasPrefix(spec, "etcd://"), strings.HasPrefix(spec, "badger:") && len(spec) > len("badger:"):
		if err := c.applyStoreEnv(spec); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%q: want badger:DIR or etcd://HOST:PORT[,HOST:PORT...]", spec)
	}
	if c.Store.Backend == "etcd" {
		return openMigrateEtcd(ctx, c.Store.Etcd.Endpoints, prefix, cfg.Store.Etcd, log)
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, err
	}
	s := &migSide{name: "badger:" + dir}
	var names extraNames
	switch _, err := os.Stat(filepath.Join(dir, "MANIFEST")); {
	case err == nil:
		// Open and close once through the store: that fails while a
		// server holds the directory, and replays a log that a crash
		// left, which a read-only open refuses. Then list the names
		// read-only, then open the store for the copy (badger has no
		// read-only store: the source is only read, never written).
		st, err := badger.Open(dir, badger.Options{Logger: log})
		if err != nil {
			return nil, badgerOpenErr(dir, err)
		}
		if err := st.Close(); err != nil {
			return nil, err
		}
		if names, err = badgerNames(dir); err != nil {
			return nil, badgerOpenErr(dir, err)
		}
	case source:
		return nil, fmt.Errorf("no bastion store in %s (give the server's data directory)", dir)
	}
	st, err := openBadger(dir, log)
	if err != nil {
		return nil, badgerOpenErr(dir, err)
	}
	s.st = st
	s.closers = append(s.closers, st.Close)
	s.extras = func(context.Context) (extraNames, error) { return names, nil }
	return s, nil
}

func badgerOpenErr(dir string, err error) error {
	if errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "directory lock") {
		return fmt.Errorf("the store in %s is in use by a running bastion: stop the server first (migrate opens the store directly)", dir)
	}
	return fmt.Errorf("opening the store in %s: %w", dir, err)
}

// badgerNames lists the extra names of a badger directory, read-only.
func badgerNames(dir string) (extraNames, error) {
	var n extraNames
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithReadOnly(true).WithLogger(nil).WithMetricsEnabled(false))
	if err != nil {
		return n, err
	}
	defer db.Close()
	err = db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{})
		defer it.Close()
		for _, p := range []string{rawSecret, rawKubeToken, rawRecording} {
			for it.Seek([]byte(p)); it.ValidForPrefix([]byte(p)); it.Next() {
				n.add(p, string(it.Item().Key()[len(p):]))
			}
		}
		return nil
	})
	return n, err
}

func openMigrateEtcd(ctx context.Context, endpoints []string, prefix string, ec EtcdConfig, log *slog.Logger) (*migSide, error) {
	if prefix == "" || !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("etcd prefix %q: must be non-empty and end in /", prefix)
	}
	ec.Endpoints, ec.Prefix = endpoints, prefix
	if ec.DialTimeout <= 0 {
		ec.DialTimeout = 5 * time.Second
	}
	var hosts []string
	for i, e := range ec.Endpoints {
		h := strings.TrimPrefix(e, "http://")
		if ec.TLS.CA != "" || ec.TLS.Cert != "" {
			ec.Endpoints[i] = "https://" + h
		}
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	s := &migSide{name: "etcd://" + strings.Join(hosts, ",") + prefix, live: true}
	cc := clientv3.Config{Endpoints: ec.Endpoints, DialTimeout: ec.DialTimeout,
		Username: ec.Username, Password: ec.Password, Logger: zap.NewNop()}
	if ec.TLS.CA != "" || ec.TLS.Cert != "" {
		tc, err := etcdTLS(ec)
		if err != nil {
			return nil, err
		}
		cc.TLS = tc
	}
	st, err := openEtcd(ctx, ec, log)
	if err != nil {
		return nil, err
	}
	s.st, s.closers = st, append(s.closers, st.Close)
	cli, err := clientv3.New(cc)
	if err != nil {
		s.close()
		return nil, err
	}
	s.closers = append(s.closers, cli.Close)
	s.extras = func(ctx context.Context) (extraNames, error) { return etcdNames(ctx, cli, prefix) }
	return s, nil
}

// etcdNames lists the extra names under prefix, keys only, in pages of
// one revision.
func etcdNames(ctx context.Context, cli *clientv3.Client, prefix string) (extraNames, error) {
	var n extraNames
	for _, p := range []string{rawSecret, rawKubeToken, rawRecording} {
		full := prefix + p
		if p == rawRecording {
			full = prefix + etcd.RecordingsPrefix
		}
		key, end, rev := full, clientv3.GetPrefixRangeEnd(full), int64(0)
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(1000)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := cli.Get(ctx, key, opts...)
			if err != nil {
				return n, fmt.Errorf("etcd: list %s: %w", full, err)
			}
			rev = resp.Header.Revision
			for _, kv := range resp.Kvs {
				n.add(p, string(kv.Key[len(full):]))
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	return n, nil
}

// migRow is one line of the summary.
type migRow struct {
	kind, src, dst string
	same           bool
}

func listRow[T any](kind string, a, b []T) (migRow, error) {
	da, err := digest(a)
	if err != nil {
		return migRow{}, err
	}
	db, err := digest(b)
	return migRow{kind, fmt.Sprint(len(a)), fmt.Sprint(len(b)), len(a) == len(b) && da == db}, err
}

// namedRow compares records that are looked up by name: each is hashed
// by get; a name missing from a side is not counted there.
func namedRow(ctx context.Context, kind string, a, b []string, ga, gb func(context.Context, string) (string, error)) (migRow, error) {
	sum := func(names []string, get func(context.Context, string) (string, error)) (int, string, error) {
		var lines []string
		for _, n := range names {
			h, err := get(ctx, n)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return 0, "", fmt.Errorf("%s %s: %w", kind, n, err)
			}
			lines = append(lines, n+" "+h)
		}
		d, err := digest(lines)
		return len(lines), d, err
	}
	na, da, err := sum(a, ga)
	if err != nil {
		return migRow{}, err
	}
	nb, db, err := sum(b, gb)
	return migRow{kind, fmt.Sprint(na), fmt.Sprint(nb), na == nb && da == db}, err
}

func hashOf(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func secretHash(st store.Store) func(context.Context, string) (string, error) {
	return func(ctx context.Context, n string) (string, error) {
		v, err := st.GetSecret(ctx, n)
		return hashOf(v), err
	}
}

func tokenHash(st store.Store) func(context.Context, string) (string, error) {
	return func(ctx context.Context, n string) (string, error) {
		t, err := st.KubeToken(ctx, n)
		b, _ := json.Marshal(t)
		return hashOf(b), err
	}
}

// recordingHash hashes a recording's bytes: a chunk may come back in
// parts from etcd, so chunk boundaries are not compared.
func recordingHash(st store.Store) func(context.Context, string) (string, error) {
	return func(ctx context.Context, n string) (string, error) {
		h, size := sha256.New(), 0
		err := st.ReadRecording(ctx, n, func(c []byte) error { h.Write(c); size += len(c); return nil })
		return fmt.Sprintf("%d %x", size, h.Sum(nil)), err
	}
}

// eventsDigest hashes the stored events after the checkpoint, in order.
func eventsDigest(ctx context.Context, st store.Store, from uint64) (int, string, error) {
	h, n := sha256.New(), 0
	err := st.ScanEvents(ctx, from, func(e store.Event) error {
		b, err := json.Marshal(e)
		h.Write(append(b, '\n'))
		n++
		return err
	})
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// compareStores reads the target again and compares it with the source,
// kind by kind; the audit rows add verify on both and their heads.
func compareStores(ctx context.Context, src, dst *migSide, have inventory) ([]migRow, error) {
	got, err := readInventory(ctx, dst)
	if err != nil {
		return nil, err
	}
	if !dst.live {
		got.names = have.names // looked up by name below
	}
	// Tuples expire as time passes: compare those live now on both.
	now := time.Now()
	live := func(ts []store.Tuple) []store.Tuple {
		var out []store.Tuple
		for _, t := range ts {
			if !t.Expired(now) {
				t.Expires = t.Expires.UTC()
				out = append(out, t)
			}
		}
		return out
	}
	var rows []migRow
	add := func(r migRow, e error) {
		if err == nil {
			err = e
		}
		rows = append(rows, r)
	}
	add(listRow("users", have.users, got.users))
	add(listRow("keys", have.keys, got.keys))
	add(listRow("resources", have.resources, got.resources))
	add(listRow("tuples", live(have.tuples), live(got.tuples)))
	add(listRow("sessions", have.sessions, got.sessions))
	add(namedRow(ctx, "secrets", have.names.secrets, got.names.secrets, secretHash(src.st), secretHash(dst.st)))
	add(listRow("model versions", have.models, got.models))
	add(listRow("cert revocations", have.certs, got.certs))
	add(listRow("access requests", have.requests, got.requests))
	add(namedRow(ctx, "kube tokens", have.names.kubeTokens, got.names.kubeTokens, tokenHash(src.st), tokenHash(dst.st)))
	add(namedRow(ctx, "recordings", have.names.recordings, got.names.recordings, recordingHash(src.st), recordingHash(dst.st)))
	if err != nil {
		return nil, err
	}

	na, da, err := eventsDigest(ctx, src.st, have.cp.Seq+1)
	if err != nil {
		return nil, err
	}
	nb, db, err := eventsDigest(ctx, dst.st, got.cp.Seq+1)
	if err != nil {
		return nil, err
	}
	rows = append(rows, migRow{"audit events", fmt.Sprint(na), fmt.Sprint(nb), na == nb && da == db})
	cpText := func(c store.Checkpoint, ok bool) string {
		if !ok {
			return "none"
		}
		return fmt.Sprintf("seq %d %s", c.Seq, c.Hash)
	}
	rows = append(rows, migRow{"audit checkpoint", cpText(have.cp, have.hasCP), cpText(got.cp, got.hasCP),
		have.hasCP == got.hasCP && have.cp.Same(got.cp)})
	headText := func(e store.Event, ok bool) string {
		if !ok {
			return "none"
		}
		return fmt.Sprintf("seq %d %s", e.Seq, e.Hash)
	}
	rows = append(rows, migRow{"audit head", headText(have.head, have.hasHead), headText(got.head, got.hasHead),
		have.hasHead == got.hasHead && have.head.Seq == got.head.Seq && have.head.Hash == got.head.Hash})
	ra, err := audit.Verify(ctx, src.st)
	if err != nil {
		return nil, err
	}
	rb, err := audit.Verify(ctx, dst.st)
	if err != nil {
		return nil, err
	}
	verdict := func(r audit.Report) string {
		if !r.OK {
			return fmt.Sprintf("BROKEN at seq %d: %s", r.BrokenSeq, r.Reason)
		}
		return fmt.Sprintf("ok, %d events to seq %d", r.Count, r.LastSeq)
	}
	rows = append(rows, migRow{"audit verify", verdict(ra), verdict(rb),
		ra.OK && rb.OK && ra.LastSeq == rb.LastSeq && ra.Count == rb.Count})
	return rows, nil
}
