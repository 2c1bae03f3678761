package audit_test

import (
	"encoding/binary"
	"regexp"
	"strings"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

// fullHash is a whole SHA-256 in hex, as every BROKEN reason shows them:
// truncated ones of different events look the same.
var fullHash = regexp.MustCompile(`\b[0-9a-f]{64}\b`)

// tailStore appends n events to a badger store on disk and closes it,
// returning its directory.
func tailStore(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	st, err := badger.Open(dir, badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(st, audit.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func reopen(t *testing.T, dir string) *badger.Store {
	t.Helper()
	st, err := badger.Open(dir, badger.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// deleteRaw removes the given events from the store's files behind its
// back, as a damaged file or a careless restore would.
func deleteRaw(t *testing.T, dir string, seqs ...uint64) {
	t.Helper()
	db, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(txn *bdb.Txn) error {
		for _, s := range seqs {
			k := append([]byte("e/"), make([]byte, 8)...)
			binary.BigEndian.PutUint64(k[2:], s)
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyTail(t *testing.T) {
	t.Run("intact", func(t *testing.T) {
		st := reopen(t, tailStore(t, 30))
		r, err := audit.VerifyTail(ctx, st, 10)
		if err != nil || !r.OK || r.Count != 10 || r.LastSeq != 30 {
			t.Fatalf("VerifyTail of an intact log = %+v, %v; want OK over events 21-30", r, err)
		}
	})
	t.Run("newest events gone", func(t *testing.T) {
		dir := tailStore(t, 30)
		deleteRaw(t, dir, 26, 27, 28, 29, 30)
		r, err := audit.VerifyTail(ctx, reopen(t, dir), 10)
		if err != nil || r.OK || r.BrokenSeq != 26 || !strings.Contains(r.Reason, "events 26-30 are missing") {
			t.Fatalf("VerifyTail after losing the newest events = %+v, %v; want broken at 26, naming 26-30", r, err)
		}
	})
	t.Run("a block inside the tail gone", func(t *testing.T) {
		dir := tailStore(t, 30)
		deleteRaw(t, dir, 22, 23, 24)
		r, err := audit.VerifyTail(ctx, reopen(t, dir), 10)
		if err != nil || r.OK || r.BrokenSeq != 22 || !strings.Contains(r.Reason, "event 22 is missing") {
			t.Fatalf("VerifyTail with events 22-24 gone = %+v, %v; want broken at 22", r, err)
		}
	})
	t.Run("an event changed", func(t *testing.T) {
		dir := tailStore(t, 30)
		st := reopen(t, dir)
		if err := st.TamperEventForTest(28, func(e *store.Event) { e.Actor = "user:mallory" }); err != nil {
			t.Fatal(err)
		}
		r, err := audit.VerifyTail(ctx, st, 10)
		if err != nil || r.OK || r.BrokenSeq != 28 || len(fullHash.FindAllString(r.Reason, -1)) != 2 {
			t.Fatalf("VerifyTail with event 28 changed = %+v, %v; want broken at 28, both hashes whole", r, err)
		}
	})
	t.Run("a change before the tail is for audit verify", func(t *testing.T) {
		dir := tailStore(t, 30)
		st := reopen(t, dir)
		if err := st.TamperEventForTest(5, func(e *store.Event) { e.Actor = "user:mallory" }); err != nil {
			t.Fatal(err)
		}
		if r, err := audit.VerifyTail(ctx, st, 10); err != nil || !r.OK {
			t.Fatalf("VerifyTail = %+v, %v; the tail is intact", r, err)
		}
		if r, err := audit.Verify(ctx, st); err != nil || r.OK || r.BrokenSeq != 5 || len(fullHash.FindAllString(r.Reason, -1)) != 2 {
			t.Fatalf("Verify = %+v, %v; want broken at 5 with both hashes whole", r, err)
		}
	})
}
