package store

import (
	"context"
	"time"
)

// Users keeps user records.
type Users interface {
	PutUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser removes the user and every key registered to it.
	DeleteUser(ctx context.Context, name string) error
}

// Keys keeps public keys, indexed by fingerprint and by user.
type Keys interface {
	PutKey(ctx context.Context, k Key) error
	// KeyByFingerprint returns the key with that fingerprint, expired or
	// not: the caller decides what expiry means.
	KeyByFingerprint(ctx context.Context, fingerprint string) (Key, error)
	KeysOf(ctx context.Context, user string) ([]Key, error)
	ListKeys(ctx context.Context) ([]Key, error)
	DeleteKey(ctx context.Context, fingerprint string) error
	// UpdateKey changes the stored key in place, atomically: fn gets the
	// key as stored and edits it; nothing is written if fn fails. A key
	// that is not stored is store.ErrNotFound, and is never created: a
	// key removed meanwhile (keys rm) stays removed. fn may not change the
	// fingerprint or the user.
	UpdateKey(ctx context.Context, fingerprint string, fn func(*Key) error) error
}

// Resources keeps Resource definitions by name.
type Resources interface {
	PutResource(ctx context.Context, r Resource) error
	GetResource(ctx context.Context, name string) (Resource, error)
	ListResources(ctx context.Context) ([]Resource, error)
	DeleteResource(ctx context.Context, name string) error
}

// Tuples keeps relationship tuples, indexed both by object and by subject.
// Every read hides tuples that are expired at the time of the read.
type Tuples interface {
	// WriteTuples deletes then adds, atomically. Adding an existing tuple
	// replaces its expiry. Deleting a missing tuple is not an error.
	WriteTuples(ctx context.Context, add, del []Tuple) error
	// TuplesByObject returns the live tuples on object with relation
	// (every relation if relation is "").
	TuplesByObject(ctx context.Context, object, relation string) ([]Tuple, error)
	// TuplesBySubject returns the live tuples whose subject is subject and
	// whose object has type objectType (every type if "").
	TuplesBySubject(ctx context.Context, subject, objectType string) ([]Tuple, error)
	// ListTuples returns every live tuple.
	ListTuples(ctx context.Context) ([]Tuple, error)
}

// Sessions keeps mediated access sessions.
type Sessions interface {
	PutSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	ListSessions(ctx context.Context) ([]Session, error)
}

// AuditLog stores audit events. Hashes are computed by package audit; the
// store keeps events in seq order and makes an append durable before it
// returns.
//
// A backend whose transactions are bounded should also have the method
//
//	TxnLimits() (maxBytes, maxOps int)
//
// saying how much one AppendEvents transaction holds: at most maxOps events
// whose JSON encodings (encoding/json of Event) sum to at most maxBytes.
// Package audit declares the interface and sizes its group commits by it.
type AuditLog interface {
	// AppendEvents durably appends events, whose seqs must follow the last
	// stored seq without gaps (after an import, the checkpoint's seq: see
	// AuditArchive); a call whose seqs do not is refused whole. Several
	// writers (replicas) may append to one log: a call whose first seq was
	// already taken by another writer is refused with an error wrapping
	// ErrConflict, having written nothing, and so is a call that another
	// writer overtook between the backend's read of the head and its
	// commit.
	// A call within the backend's TxnLimits is atomic. A larger one may be
	// committed in several transactions, in order: each is atomic, and a
	// failure or crash between them leaves a prefix of the call stored
	// (which LastEvent then reports). An event too large for any
	// transaction fails the call with an error wrapping ErrTxnTooBig,
	// before anything is written.
	AppendEvents(ctx context.Context, events []Event) error
	// LastEvent returns the event with the highest seq; ok is false on a
	// log that holds no event (archiving always keeps the last one, so
	// only a new or imported log holds none).
	LastEvent(ctx context.Context) (e Event, ok bool, err error)
	// ScanEvents calls fn for each event with seq >= from, in seq order,
	// until fn returns an error (which ScanEvents returns).
	ScanEvents(ctx context.Context, from uint64, fn func(Event) error) error
	// QueryEvents returns matching events in seq order.
	QueryEvents(ctx context.Context, f EventFilter) ([]Event, error)
}

// Recordings keeps session recordings (asciicast v2), appended in chunks
// while the session runs, so a crash loses at most the unflushed tail.
type Recordings interface {
	AppendRecording(ctx context.Context, id string, chunk []byte) error
	// ReadRecording calls fn with each chunk in order; store.ErrNotFound
	// if the recording does not exist.
	ReadRecording(ctx context.Context, id string, fn func(chunk []byte) error) error
}

// Secrets keeps the server's own key material (host key, user CA).
type Secrets interface {
	GetSecret(ctx context.Context, name string) ([]byte, error)
	PutSecret(ctx context.Context, name string, value []byte) error
	// CreateSecret stores value only if name holds no secret yet, and
	// returns what is stored: value, or the secret already there. It is
	// atomic, so that replicas starting together agree on one host key.
	CreateSecret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// CertRevocations keeps the serials of revoked user certificates.
type CertRevocations interface {
	// RevokeCert records r; revoking a serial again replaces its record.
	RevokeCert(ctx context.Context, r CertRevocation) error
	// CertRevoked returns the revocation of serial; ok is false if the
	// serial is not revoked.
	CertRevoked(ctx context.Context, serial uint64) (r CertRevocation, ok bool, err error)
	// ListCertRevocations returns every revocation, in serial order.
	ListCertRevocations(ctx context.Context) ([]CertRevocation, error)
}

// AccessRequests keeps just-in-time access requests by id.
type AccessRequests interface {
	PutAccessRequest(ctx context.Context, r AccessRequest) error
	// GetAccessRequest returns the request, or ErrNotFound.
	GetAccessRequest(ctx context.Context, id string) (AccessRequest, error)
	// ListAccessRequests returns every request, ordered by id (ids sort by
	// creation time).
	ListAccessRequests(ctx context.Context) ([]AccessRequest, error)
}

// Store is everything a backend provides.
type Store interface {
	Users
	Keys
	Resources
	Tuples
	Sessions
	AuditLog
	AuditArchive
	Recordings
	Secrets
	CertRevocations
	AccessRequests
	KubeTokens
	Models
	Changes
	Close() error
}

// Clock returns the current time; backends take one so tests can move time.
type Clock func() time.Time
