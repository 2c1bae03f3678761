package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sshbastion/bastion/store"
)

// Bounds of one event, enforced by Bound. Text is counted in bytes.
const (
	// MaxEventSize caps the text of one event: the sum of the lengths of
	// Actor, Action, Target, Decision, Reason and every detail key and
	// value. As JSON that is at most 6x as much (every byte escaped),
	// well inside one transaction of any store.
	MaxEventSize = 64 << 10
	// MaxFieldSize caps Actor, Target, Reason and each detail value.
	MaxFieldSize = 8 << 10
	// MaxNameSize caps Action, Decision and each detail key.
	MaxNameSize = 256
	// MaxDetails caps the number of details, DroppedDetailsKey included.
	MaxDetails = 64
	// DroppedDetailsKey is the detail that stands for the details Bound
	// dropped beyond MaxDetails (see Bound).
	DroppedDetailsKey = "_truncated_details"
)

// minFieldSize is the least a field is cut to when the whole event must
// shrink: room for the longest marker (114 bytes) and some text.
const minFieldSize = 256

// Bound returns e made storable: within the bounds above and with every
// string valid UTF-8, so that no event is ever refused for its size, and an
// event is stored as exactly what was hashed. An event already within them
// is returned unchanged (its Details map is the same map).
//
// Invalid UTF-8 is replaced with U+FFFD: the store encodes events as JSON,
// which would replace it anyway, after the hash was computed, and the
// stored event would then no longer verify.
//
// A field longer than its bound keeps its first bytes, cut at a UTF-8
// boundary, followed by a marker naming the length and the SHA-256 of the
// original (the bytes the caller gave, before any U+FFFD replacement):
//
//	GET /api/v1/pods?x=aaaa…[truncated: 70000 bytes, sha256:9f86d0…]
//
// so the original can still be matched against another copy. If the event
// is still over MaxEventSize, the largest of Actor, Target, Reason and the
// detail values are cut to one common length, the largest that fits (never
// below 256 bytes). Past MaxDetails, the details with the smallest keys
// are kept and the rest are replaced by DroppedDetailsKey, whose value
// names how many were dropped, their total length and the SHA-256 of their
// canonical encoding (str(key) str(value) in key order, as in Hash).
// Detail keys that collide once cut are dropped the same way.
//
// Bound is idempotent: Bound(Bound(e)) is Bound(e). Log applies it to every
// event before hashing, so the stored, bounded event is what the chain
// covers.
func Bound(e store.Event) store.Event {
	e, _ = bound(e)
	return e
}

// bound is Bound, also reporting whether anything changed.
func bound(e store.Event) (store.Event, bool) {
	if fits(e) {
		return e, false
	}
	e.Action = clip(e.Action, MaxNameSize)
	e.Decision = clip(e.Decision, MaxNameSize)
	kept, dropped := boundKeys(e.Details)

	// Budget for the long fields: what the fixed-size ones leave.
	budget := MaxEventSize - len(e.Action) - len(e.Decision) - len(dropped)
	if dropped != "" {
		budget -= len(DroppedDetailsKey)
	}
	long := []string{valid(e.Actor), valid(e.Target), valid(e.Reason)}
	for _, d := range kept {
		budget -= len(d.key)
		long = append(long, valid(e.Details[d.raw]))
	}
	limit := waterLevel(long, budget)

	e.Actor = clip(e.Actor, limit)
	e.Target = clip(e.Target, limit)
	e.Reason = clip(e.Reason, limit)
	if e.Details != nil {
		m := make(map[string]string, len(kept)+1)
		for _, d := range kept {
			m[d.key] = clip(e.Details[d.raw], limit)
		}
		if dropped != "" {
			m[DroppedDetailsKey] = dropped
		}
		e.Details = m
	}
	return e, true
}

// fits reports whether e is within every bound already.
func fits(e store.Event) bool {
	if len(e.Details) > MaxDetails {
		return false
	}
	n := 0
	ok := func(s string, limit int) bool {
		n += len(s)
		return len(s) <= limit && utf8.ValidString(s)
	}
	if !ok(e.Actor, MaxFieldSize) || !ok(e.Target, MaxFieldSize) || !ok(e.Reason, MaxFieldSize) ||
		!ok(e.Action, MaxNameSize) || !ok(e.Decision, MaxNameSize) {
		return false
	}
	for k, v := range e.Details {
		if !ok(k, MaxNameSize) || !ok(v, MaxFieldSize) {
			return false
		}
	}
	return n <= MaxEventSize
}

type keptDetail struct{ raw, key string } // the caller's key, and as stored

// boundKeys chooses the details to keep, in ascending order of the
// caller's keys, with their keys bounded, and returns the marker value
// for the dropped ones ("" if none was dropped).
func boundKeys(details map[string]string) ([]keptDetail, string) {
	raws := make([]string, 0, len(details))
	for k := range details {
		raws = append(raws, k)
	}
	slices.Sort(raws)
	keys := make([]string, len(raws))
	for i, raw := range raws {
		keys[i] = clip(raw, MaxNameSize)
	}
	choose := func(limit int, reserve bool) (kept []keptDetail, dropped []string) {
		seen := make(map[string]bool, len(raws))
		for i, raw := range raws {
			k := keys[i]
			// A key that collides once cut (or with the marker's key)
			// would overwrite another detail; it is dropped instead, so
			// its value still counts in the marker's hash.
			if len(kept) < limit && !seen[k] && !(reserve && k == DroppedDetailsKey) {
				seen[k] = true
				kept = append(kept, keptDetail{raw: raw, key: k})
			} else {
				dropped = append(dropped, raw)
			}
		}
		return kept, dropped
	}
	kept, dropped := choose(MaxDetails, false)
	if len(dropped) == 0 {
		return kept, ""
	}
	// The marker takes one place, and its key may not be a kept one.
	kept, dropped = choose(MaxDetails-1, true)
	h := sha256.New()
	var buf []byte
	size := 0
	for _, raw := range dropped {
		v := details[raw]
		size += len(raw) + len(v)
		buf = appendStr(appendStr(buf[:0], raw), v)
		h.Write(buf)
	}
	return kept, "…[truncated: " + strconv.Itoa(len(dropped)) + " details, " + strconv.Itoa(size) +
		" bytes, sha256:" + hex.EncodeToString(h.Sum(nil)) + "]"
}

// waterLevel returns the largest length L (at most MaxFieldSize, at least
// minFieldSize) such that the fields, each cut to L, sum to at most budget.
func waterLevel(fields []string, budget int) int {
	total := func(l int) int {
		n := 0
		for _, f := range fields {
			n += min(len(f), l)
		}
		return n
	}
	if total(MaxFieldSize) <= budget {
		return MaxFieldSize
	}
	lo, hi := minFieldSize, MaxFieldSize // total(hi) > budget
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if total(mid) <= budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// valid returns s with invalid UTF-8 replaced by U+FFFD.
func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// clip returns raw as valid UTF-8 of at most limit bytes: unchanged if it
// fits, else its first bytes and a marker naming raw's length and hash.
// limit must be at least the marker's length (114 bytes at most).
func clip(raw string, limit int) string {
	s := valid(raw)
	if len(s) <= limit {
		return s
	}
	sum := sha256.Sum256([]byte(raw))
	marker := "…[truncated: " + strconv.Itoa(len(raw)) + " bytes, sha256:" + hex.EncodeToString(sum[:]) + "]"
	cut := max(limit-len(marker), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}
