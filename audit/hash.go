package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"

	"github.com/sshbastion/bastion/store"
)

// Genesis is the PrevHash of the first event of a log.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// domain separates this encoding from any other SHA-256 use, and versions it.
const domain = "bastion.audit.v1"

// Hash returns the hex SHA-256 of the canonical encoding of e, which covers
// every field except Hash itself:
//
//	str("bastion.audit.v1")
//	u64(Seq)
//	str(Time in UTC, RFC 3339 with nanoseconds, e.g. 2030-01-02T03:04:05.123Z)
//	str(Actor) str(Action) str(Target) str(Decision) str(Reason)
//	u64(number of Details) then, by ascending key, str(key) str(value)
//	str(PrevHash)
//
// where u64 is 8 bytes big-endian and str(s) is u64(len(s)) followed by the
// bytes of s. Length prefixes make the encoding unambiguous: no two
// different events encode to the same bytes (moving text from Actor into
// Action, or from a key into a value, changes the encoding). Time is
// normalised to UTC so the same instant always hashes the same.
func Hash(e store.Event) string {
	var buf [512]byte
	return hashHex(appendCanonical(buf[:0], e))
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func appendCanonical(b []byte, e store.Event) []byte {
	b = appendStr(b, domain)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	// Time is length-prefixed like a string; append it in place.
	at := len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	binary.BigEndian.PutUint64(b[at:], uint64(len(b)-at-8))
	b = appendStr(b, e.Actor)
	b = appendStr(b, e.Action)
	b = appendStr(b, e.Target)
	b = appendStr(b, e.Decision)
	b = appendStr(b, e.Reason)
	b = binary.BigEndian.AppendUint64(b, uint64(len(e.Details)))
	if len(e.Details) > 0 {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendStr(b, k)
			b = appendStr(b, e.Details[k])
		}
	}
	return appendStr(b, e.PrevHash)
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}
