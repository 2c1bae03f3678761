package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/store"
)

// Key prefixes, one per role (see the package comment).
const (
	pUser     = "u/"
	pKey      = "k/"
	pUserKey  = "ku/"
	pResource = "r/"
	pSession  = "s/"
	pSecret   = "x/"
	pEvent    = "e/"
	pTupleObj = "to/"
	pTupleSub = "ts/"
	pRecord   = "rec/"
)

// sep separates the parts of composite keys. Inputs containing it are
// rejected (see checkName), so composite keys cannot be forged.
const sep = "\x00"

// Options configures Open.
type Options struct {
	// Clock decides which tuples are expired; time.Now if nil.
	Clock store.Clock
	// Logger receives badger's warnings and errors; slog.Default if nil.
	Logger *slog.Logger
	// InMemory keeps everything in memory (tests); dir is then ignored.
	InMemory bool
}

// Store is the badger-backed store.Store.
type Store struct {
	db    *bdb.DB
	clock store.Clock
	log   *slog.Logger

	// keyMu serialises the calls that read then write the key index
	// (PutKey, DeleteKey, DeleteUser), which would otherwise conflict
	// under badger's optimistic transactions when they touch one user.
	keyMu sync.Mutex

	// evMu serialises AppendEvents so the gap check and the write are one
	// step, and guards last.
	evMu sync.Mutex
	last *store.Event // highest stored event, nil on an empty log

	// txnBytes and txnOps are what one AppendEvents transaction holds
	// (see TxnLimits), derived from the options at Open.
	txnBytes, txnOps int

	// changes is the change feed (changes.go).
	changes *changeHub

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	bo := bdb.DefaultOptions(dir).
		// An acknowledged write must survive kill -9: the audit log's
		// guarantee ("returned means stored") rests on this.
		WithSyncWrites(true).
		WithLogger(slogAdapter{opts.Logger}).
		WithMetricsEnabled(false).
		// The bastion's records are small. Badger's default 64 MiB memtable
		// arena sits in the Go heap and raises the GC's target with it, so
		// the transient buffers of a large sftp transfer would pile up to
		// ~100 MiB before a collection; 8 MiB keeps resident memory flat.
		WithMemTableSize(8 << 20).WithBlockCacheSize(16 << 20)
	if opts.InMemory {
		bo = bo.WithDir("").WithValueDir("").WithInMemory(true)
	}
	db, err := bdb.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("badger: open %s: %w", dir, err)
	}
	s := &Store{db: db, clock: opts.Clock, log: opts.Logger,
		changes: newChangeHub(defaultChangeRing, store.DefaultWatchBuffer)}
	s.txnBytes, s.txnOps = eventTxnLimits(db.MaxBatchSize(), db.MaxBatchCount())
	if err := s.loadLastEvent(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.changes.close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// slogAdapter routes badger's own logging to slog. Badger is chatty at info
// level (compactions, replays); that goes to debug so it stays quiet.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Errorf(f string, v ...any) { a.log(slog.LevelError, f, v) }
func (a slogAdapter) Warningf(f string, v ...any) {
	a.log(slog.LevelWarn, f, v)
}
func (a slogAdapter) Infof(f string, v ...any)  { a.log(slog.LevelDebug, f, v) }
func (a slogAdapter) Debugf(f string, v ...any) { a.log(slog.LevelDebug, f, v) }

func (a slogAdapter) log(level slog.Level, f string, v []any) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(f, v...)), "component", "badger")
}

// checkName rejects names that would make composite keys ambiguous or
// collide with a prefix scan: empty names, and names containing the key
// separator.
func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("badger: empty %s", what)
	}
	if strings.Contains(name, sep) {
		return fmt.Errorf("badger: %s %q contains NUL", what, name)
	}
	return nil
}

// update runs fn in a read-write transaction, retrying on conflicts with
// concurrent writers. Commit is durable (SyncWrites).
func (s *Store) update(ctx context.Context, fn func(txn *bdb.Txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.db.Update(fn)
		if errors.Is(err, bdb.ErrConflict) && attempt < 20 {
			continue
		}
		return err
	}
}

// putJSON stores v under key.
func putJSON(txn *bdb.Txn, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set([]byte(key), b)
}

// getJSON loads key into v, returning store.ErrNotFound if it is missing.
func getJSON(txn *bdb.Txn, key string, v any) error {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

// get runs getJSON in a read-only transaction.
func (s *Store) get(ctx context.Context, key string, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(txn *bdb.Txn) error { return getJSON(txn, key, v) })
}

// exists reports whether key is present.
func exists(txn *bdb.Txn, key string) (bool, error) {
	_, err := txn.Get([]byte(key))
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// scan calls fn with the key and value of every entry under prefix, in key
// order. The slices are only valid during the call.
func scan(ctx context.Context, txn *bdb.Txn, prefix string, fn func(k, v []byte) error) error {
	opts := bdb.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	// Our values are small (tuple index values are 0 or 12 bytes) and sit
	// next to their keys; prefetching starts goroutines per item and
	// dominated the policy engine's Check latency.
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	n := 0
	for it.Seek(opts.Prefix); it.Valid(); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
			return err
		}
	}
	return nil
}

// list decodes every JSON record under prefix into a slice of T.
func list[T any](ctx context.Context, s *Store, prefix string) ([]T, error) {
	var out []T
	err := s.db.View(func(txn *bdb.Txn) error {
		return scan(ctx, txn, prefix, func(_, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

// deleteExisting deletes key, or returns store.ErrNotFound if it is absent.
func deleteExisting(txn *bdb.Txn, key string) error {
	ok, err := exists(txn, key)
	if err != nil {
		return err
	}
	if !ok {
		return store.ErrNotFound
	}
	return txn.Delete([]byte(key))
}
