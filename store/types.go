package store

import (
	"errors"
	"strings"
	"time"
)

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned by Create-style calls when the record already exists.
var ErrExists = errors.New("already exists")

// ErrTxnTooBig is wrapped by AuditLog.AppendEvents when an event cannot be
// written because it is, by itself, larger than one transaction of the
// backend holds. Such a call writes nothing, so the caller may retry the
// other events of the call without that one.
var ErrTxnTooBig = errors.New("too big for one transaction")

// User is a person (or robot) known to the bastion.
type User struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name,omitempty"`
	Groups      []string  `json:"groups,omitempty"`
	Source      string    `json:"source,omitempty"` // "local", "oidc", "bootstrap"
	Created     time.Time `json:"created"`
}

// Key is a public key registered to a user. Fingerprint is the OpenSSH
// SHA256 fingerprint ("SHA256:..."), and the primary key of the record.
type Key struct {
	Fingerprint   string    `json:"fingerprint"`
	User          string    `json:"user"`
	Type          string    `json:"type"`
	AuthorizedKey string    `json:"authorized_key"` // one authorized_keys line, without comment
	Comment       string    `json:"comment,omitempty"`
	Source        string    `json:"source,omitempty"` // "admin", "bootstrap", "oidc"
	Added         time.Time `json:"added"`
	Expires       time.Time `json:"expires,omitzero"` // zero means never
	// Security keys (sk-*): NoTouchRequired accepts signatures without
	// the user-presence flag (ssh-keygen -O no-touch-required);
	// VerifyRequired demands the user-verification flag (a PIN).
	NoTouchRequired bool `json:"no_touch_required,omitempty"`
	VerifyRequired  bool `json:"verify_required,omitempty"`
	// The last strong login this key carries: the OIDC device login that
	// bound it, or a `step-up`. It satisfies step-up requirements on new
	// connections with this key until StrongUntil (step_up.remember
	// after it was made), and only within their maximum age of
	// StrongAuthTime (the IdP's auth_time).
	StrongAuthTime time.Time `json:"strong_auth_time,omitzero"`
	StrongMethod   string    `json:"strong_method,omitempty"`
	StrongACR      string    `json:"strong_acr,omitempty"`
	StrongAMR      []string  `json:"strong_amr,omitempty"`
	StrongUntil    time.Time `json:"strong_until,omitzero"`
}

// Expired reports whether the key is past its expiry at now.
func (k Key) Expired(now time.Time) bool {
	return !k.Expires.IsZero() && !now.Before(k.Expires)
}

// Resource is something users reach through the bastion.
type Resource struct {
	Name        string            `json:"name" yaml:"name"`
	Kind        string            `json:"kind" yaml:"kind"` // "ssh", "tcp", "kube"
	Address     string            `json:"address" yaml:"address"`
	Ports       []int             `json:"ports,omitempty" yaml:"ports,omitempty"`
	Project     string            `json:"project,omitempty" yaml:"project,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Aliases     []string          `json:"aliases,omitempty" yaml:"aliases,omitempty"`
	Login       string            `json:"login,omitempty" yaml:"login,omitempty"`
	TTL         time.Duration     `json:"ttl,omitempty" yaml:"ttl,omitempty"`
	IdleTimeout time.Duration     `json:"idle_timeout,omitempty" yaml:"idle_timeout,omitempty"`
	Kube        *KubeSpec         `json:"kube,omitempty" yaml:"kube,omitempty"`
	// StepUp is the step-up this Resource demands of every session to it
	// ("10m", "10m,acr=sk,acr=sk-uv": see subsystems/stepup); empty: none
	// beyond the config's.
	StepUp string `json:"step_up,omitempty" yaml:"step_up,omitempty"`
	// Origin is where the Resource was defined: OriginConfig (the
	// operator's config file, trusted as written) or OriginSSH (made over
	// ssh; its addresses are checked again at every dial). Anything but
	// OriginConfig is treated as OriginSSH. The config file cannot set it.
	Origin string `json:"origin,omitempty" yaml:"-"`
}

// Origins of a Resource (Resource.Origin).
const (
	OriginConfig = "config"
	OriginSSH    = "ssh"
)

// FromConfig reports whether the operator's config file defined r, so
// that its addresses and credentials are trusted as written.
func (r Resource) FromConfig() bool { return r.Origin == OriginConfig }

// LoginFor is the account on r that the bastion logs user in as: the one
// r names, else the user's own name. Host shells, sftp and the
// certificates of `cert` all follow it.
func (r Resource) LoginFor(user string) string {
	if r.Login != "" {
		return r.Login
	}
	return user
}

// KubeSpec holds what a kube Resource needs to reach its apiserver.
type KubeSpec struct {
	Server string `json:"server,omitempty" yaml:"server,omitempty"`
	// Credentials names one of the config's kube.credentials: the only
	// way a Resource made over ssh gets apiserver credentials.
	Credentials string              `json:"credentials,omitempty" yaml:"credentials,omitempty"`
	Kubeconfig  string              `json:"kubeconfig,omitempty" yaml:"kubeconfig,omitempty"`
	Context     string              `json:"context,omitempty" yaml:"context,omitempty"`
	InCluster   bool                `json:"in_cluster,omitempty" yaml:"in_cluster,omitempty"`
	Groups      map[string][]string `json:"groups,omitempty" yaml:"groups,omitempty"` // ReBAC relation -> Kubernetes groups
	// EgressAddress is an IP of the bastion that the cluster's pods can
	// reach: `ssh -R NS/SVC:PORT:...` listens there (only for a Resource
	// of the config file). Empty: no egress.
	EgressAddress string `json:"egress_address,omitempty" yaml:"egress_address,omitempty"`
}

// CertRevocation records that the user certificate with Serial may no
// longer log in, who revoked it, when and why.
type CertRevocation struct {
	Serial uint64    `json:"serial"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at"`
}

// Tuple is one relationship: Object#Relation@Subject, for example
// "resource:web-1#act@user:alice" or "project:p#member@group:ops#member".
// A non-zero Expires makes the tuple invisible from that instant on.
//
// Condition, when set, names a condition of the model (OpenFGA's
// conditional tuples): the tuple grants only when the condition holds
// over Context (the parameters fixed when the grant was written, as JSON
// values: strings, float64 numbers, bools, lists, maps) merged with the
// request's context. Tuples without them read and write as before.
type Tuple struct {
	Object    string         `json:"object"`
	Relation  string         `json:"relation"`
	Subject   string         `json:"subject"`
	Expires   time.Time      `json:"expires,omitzero"`
	Condition string         `json:"condition,omitempty"`
	Context   map[string]any `json:"context,omitempty"`
}

// Expired reports whether the tuple is past its expiry at now.
func (t Tuple) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// String renders the tuple as object#relation@subject.
func (t Tuple) String() string { return t.Object + "#" + t.Relation + "@" + t.Subject }

// Session is one mediated access (a forward, a shell, a kube tunnel).
type Session struct {
	ID          string        `json:"id"`
	User        string        `json:"user"`
	Resource    string        `json:"resource"`
	Kind        string        `json:"kind"`
	Target      string        `json:"target,omitempty"`
	Source      string        `json:"source,omitempty"`
	Opened      time.Time     `json:"opened"`
	Expires     time.Time     `json:"expires"`
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	BytesIn     int64         `json:"bytes_in"`
	BytesOut    int64         `json:"bytes_out"`
	State       string        `json:"state"` // "open", "closed", "revoked"
	Closed      time.Time     `json:"closed,omitzero"`
	Reason      string        `json:"reason,omitempty"`
	Recording   string        `json:"recording,omitempty"` // id of the asciicast recording, if any
	// Replica is the id of the bastion process that holds the session's
	// channels (empty in records from before replicas had ids).
	Replica string `json:"replica,omitempty"`
}

// Event is one record of the hash-chained audit log. Hash covers every
// other field (see package audit for the canonical encoding).
type Event struct {
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	Target   string            `json:"target,omitempty"`
	Decision string            `json:"decision,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// EventFilter selects audit events. Zero fields match everything.
type EventFilter struct {
	Since  time.Time // inclusive
	Until  time.Time // exclusive
	Actor  string
	Action string // exact, or a prefix ending in "." or "*"
	Limit  int    // newest Limit events; 0 = all
}

// Matches reports whether e passes f (ignoring Limit): Since <= Time <
// Until, Actor exact, Action exact or, when it ends in "." or "*", a
// prefix ("forward." and "forward.*" both match "forward.open"; "*"
// matches everything). Every backend filters with it.
func (f EventFilter) Matches(e Event) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if f.Actor != "" && e.Actor != f.Actor {
		return false
	}
	switch a := f.Action; {
	case a == "":
	case strings.HasSuffix(a, "*"):
		return strings.HasPrefix(e.Action, strings.TrimSuffix(a, "*"))
	case strings.HasSuffix(a, "."):
		return strings.HasPrefix(e.Action, a)
	default:
		return e.Action == a
	}
	return true
}

// AccessRequest is a just-in-time request for act on Resources. It moves
// pending -> approved | denied, and approved -> expired | dropped.
type AccessRequest struct {
	ID        string        `json:"id"`
	User      string        `json:"user"`
	Resources []string      `json:"resources"`
	Reason    string        `json:"reason"`
	TTL       time.Duration `json:"ttl"`
	State     string        `json:"state"` // pending, approved, denied, expired, dropped
	Created   time.Time     `json:"created"`
	// Reviewer, ReviewReason and Reviewed record the decision.
	Reviewer     string    `json:"reviewer,omitempty"`
	ReviewReason string    `json:"review_reason,omitempty"`
	Reviewed     time.Time `json:"reviewed,omitzero"`
	// Expires is when an approved grant ends (its act tuples expire).
	Expires time.Time `json:"expires,omitzero"`
	// Ended and EndedBy record an expiry or a drop.
	Ended   time.Time `json:"ended,omitzero"`
	EndedBy string    `json:"ended_by,omitempty"`
}
