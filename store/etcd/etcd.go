package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sshbastion/bastion/store"
)

// Key prefixes under Options.Prefix, one per role (see the package doc).
const (
	pUser     = "u/"
	pKey      = "k/"
	pUserKey  = "ku/"
	pResource = "r/"
	pSession  = "s/"
	pSecret   = "x/"
	// Bulk keys (audit events and the sequencer's, recordings, blob
	// chunks) start with pBulk, "~", which sorts after every record role
	// prefix: the change feed watches only the keys before it, so no
	// replica is sent the audit traffic of the others (changes.go).
	pBulk     = "~"
	pEvent    = "~e/"
	keyHead   = "~eh"
	pTupleObj = "to/"
	pTupleSub = "ts/"
	pRecord   = "~rec/"
	pCert     = "crl/"
	pRequest  = "ar/"
	pModel    = "mv/"
	keyModelN = "mvn"
	pBlob     = "~blob/"
)

// RecordingsPrefix is where recording chunks live under the prefix (for
// bastion migrate, which lists recordings by their keys).
const RecordingsPrefix = pRecord

// sep separates the parts of composite keys; names containing it are
// rejected, so composite keys cannot be forged (as in package badger).
const sep = "\x00"

// Limits of one etcd request, kept well inside etcd's defaults
// (--max-request-bytes 1.5 MiB, --max-txn-ops 128).
const (
	// txnBytes bounds the values of one transaction.
	txnBytes = 1 << 20
	// txnOps bounds the operations of one transaction.
	txnOps = 100
	// pageSize is how many keys one range read returns at most.
	pageSize = 512
)

// Options configures Open.
type Options struct {
	// Endpoints are the etcd client URLs, e.g. "http://127.0.0.1:2379".
	Endpoints []string
	// Prefix is put before every key; "/bastion/" if empty. It should
	// end in "/", and no other user of the cluster may write under it.
	Prefix string
	// DialTimeout bounds connecting, and Open's first request (5 s).
	DialTimeout time.Duration
	// TLS, when set, is used to connect (client certificates included).
	TLS *tls.Config
	// Username and Password, when set, authenticate to etcd.
	Username, Password string
	// Clock decides which tuples are expired; time.Now if nil.
	Clock store.Clock
	// Logger receives the change feed's reconnects; slog.Default if nil.
	Logger *slog.Logger
	// WatchBuffer is each watcher's buffer (store.DefaultWatchBuffer).
	WatchBuffer int
	// SequencerListen is where this replica takes other replicas' audit
	// batches while it sequences the chain (seqforward.go):
	// "127.0.0.1:0" if empty, "-" for nowhere (batches then go through
	// etcd, at about half the rate). SequencerAdvertise is the address
	// the others dial, if not the listener's own (needed when it listens
	// on all interfaces).
	SequencerListen, SequencerAdvertise string
}

// Store is the etcd-backed store.Store.
type Store struct {
	cli    *clientv3.Client
	prefix string
	clock  store.Clock
	log    *slog.Logger
	buffer int

	// ctx ends with Close, and with it every watch.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	// seq is this store's part in the audit sequencer (sequencer.go),
	// started by the first AppendSequenced.
	seqOnce sync.Once
	seq     atomic.Pointer[sequencer]

	seqListen, seqAdvertise string // Options.SequencerListen, SequencerAdvertise
}

var _ store.Store = (*Store)(nil)

// Open connects to etcd and checks that it answers.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/bastion/"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = store.DefaultWatchBuffer
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: opts.Endpoints, DialTimeout: opts.DialTimeout, TLS: opts.TLS,
		Username: opts.Username, Password: opts.Password,
		// Fail a request whose connection died rather than hang on it;
		// keepalives find a dead connection within ~10 s.
		DialKeepAliveTime: 5 * time.Second, DialKeepAliveTimeout: 5 * time.Second,
		// Our own requests stay below txnBytes plus keys; this is the
		// client's ceiling, etcd's own (1.5 MiB) is lower.
		MaxCallSendMsgSize: 2 << 20,
		Logger:             zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect to %s: %w", strings.Join(opts.Endpoints, ","), err)
	}
	if opts.SequencerListen == "" {
		opts.SequencerListen = "127.0.0.1:0"
	}
	s := &Store{cli: cli, prefix: opts.Prefix, clock: opts.Clock, log: opts.Logger, buffer: opts.WatchBuffer,
		seqListen: opts.SequencerListen, seqAdvertise: opts.SequencerAdvertise}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	old, err := cli.Get(pctx, s.k(oldLayoutHead), clientv3.WithCountOnly())
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("etcd: %s does not answer: %w", strings.Join(opts.Endpoints, ","), err)
	}
	// An audit log in the layout of earlier builds (events under e/, not
	// ~e/) would read as empty here, and the next event would start a
	// second chain at seq 1 beside it: refuse instead.
	if old.Count > 0 {
		s.Close()
		return nil, fmt.Errorf("etcd: %s holds an audit log in an earlier key layout (%s): open it with the build that wrote it and copy it to badger with bastion migrate, or use another prefix", opts.Prefix, s.k(oldLayoutHead))
	}
	return s, nil
}

// oldLayoutHead is the chain head's key before bulk keys moved under
// pBulk.
const oldLayoutHead = "eh"

// Close ends every watch and the connection. It is safe to call more than
// once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// A sequencer hands over first: what other replicas forwarded
		// is answered before the connection goes (seqforward.go).
		if q := s.seq.Load(); q != nil {
			q.handOver()
		}
		s.cancel()
		s.closeErr = s.cli.Close()
	})
	return s.closeErr
}

// Client returns the etcd client, for what builds on the same cluster
// (leases, elections). It is closed by Close.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix returns the prefix every key of the store lives under.
func (s *Store) Prefix() string { return s.prefix }

// TxnLimits reports how much one AppendEvents transaction holds: at most
// maxOps events whose JSON encodings sum to at most maxBytes. Two more
// operations (the chain head, and the end of an append turn) go into every
// such transaction.
func (s *Store) TxnLimits() (maxBytes, maxOps int) { return txnBytes, txnOps }

// Rev implements store.Changes: the cluster's current revision, read
// linearizably.
func (s *Store) Rev(ctx context.Context) (uint64, error) {
	resp, err := s.cli.Get(ctx, s.prefix+keyHead, clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("etcd: revision: %w", err)
	}
	return uint64(resp.Header.Revision), nil
}

// checkName rejects names that would make composite keys ambiguous:
// empty names and names containing the separator.
func checkName(what, name string) error {
	if name == "" {
		return fmt.Errorf("etcd: empty %s", what)
	}
	if strings.Contains(name, sep) {
		return fmt.Errorf("etcd: %s %q contains NUL", what, name)
	}
	return nil
}

// k returns the full key of a role key.
func (s *Store) k(key string) string { return s.prefix + key }

// prefixEnd returns the end of the range of keys starting with p.
func prefixEnd(p string) string { return clientv3.GetPrefixRangeEnd(p) }

// getJSON loads the record at key into v, or returns store.ErrNotFound.
func (s *Store) getJSON(ctx context.Context, key string, v any) error {
	resp, err := s.cli.Get(ctx, s.k(key))
	if err != nil {
		return fmt.Errorf("etcd: get: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return store.ErrNotFound
	}
	b, err := s.decode(ctx, resp.Kvs[0].Value, resp.Header.Revision)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// putJSON stores v at key, blindly.
func (s *Store) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.putValue(ctx, key, b)
}

// scan calls fn with every key (without the store prefix) and value under
// the role prefix p, in key order, from one consistent revision, in pages.
func (s *Store) scan(ctx context.Context, p string, fn func(key string, val []byte, rev int64) error) error {
	return s.scanRange(ctx, s.k(p), prefixEnd(s.k(p)), fn)
}

func (s *Store) scanRange(ctx context.Context, from, end string, fn func(key string, val []byte, rev int64) error) error {
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if err != nil {
			return fmt.Errorf("etcd: scan: %w", err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if err := fn(string(kv.Key[len(s.prefix):]), kv.Value, rev); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// list decodes every JSON record under the role prefix p.
func list[T any](ctx context.Context, s *Store, p string) ([]T, error) {
	var out []T
	err := s.scan(ctx, p, func(_ string, v []byte, rev int64) error {
		b, err := s.decode(ctx, v, rev)
		if err != nil {
			return err
		}
		var x T
		if err := json.Unmarshal(b, &x); err != nil {
			return err
		}
		out = append(out, x)
		return nil
	})
	return out, err
}

// retry runs fn until it reports done, for read-compare-write calls whose
// transaction fails when another writer got there first.
func retry(ctx context.Context, what string, fn func() (done bool, err error)) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := fn()
		if err != nil || done {
			return err
		}
		if attempt == 100 {
			return fmt.Errorf("etcd: %s: too much contention", what)
		}
		if attempt > 3 {
			time.Sleep(time.Duration(attempt) * time.Millisecond)
		}
	}
}
