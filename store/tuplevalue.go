package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// The value both backends keep with a tuple's index entries: its expiry,
// and for a conditional tuple its condition and context. A tuple without
// a condition keeps the value stores had before conditions, its expiry
// alone (empty, or 12 bytes: big-endian Unix seconds and nanoseconds), so
// older data reads the same. A conditional tuple's value is a version
// byte, the expiry's length (0 or 12) and the expiry, then JSON with the
// condition and its context; it is never 0 or 12 bytes long, so it cannot
// be taken for an expiry.

// tupleCondVersion starts the value of a conditional tuple.
const tupleCondVersion = 1

// tupleCond is the JSON part of a conditional tuple's value.
type tupleCond struct {
	Condition string         `json:"condition"`
	Context   map[string]any `json:"context,omitempty"`
}

// EncodeExpiry is an expiry as the tuple value holds it.
func EncodeExpiry(t time.Time) []byte {
	if t.IsZero() {
		return nil
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// DecodeExpiry is the inverse of EncodeExpiry.
func DecodeExpiry(b []byte) (time.Time, error) {
	switch len(b) {
	case 0:
		return time.Time{}, nil
	case 12:
		sec := int64(binary.BigEndian.Uint64(b))
		return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("bad tuple expiry of %d bytes", len(b))
}

// EncodeTupleValue gives the value kept with t's index entries.
func EncodeTupleValue(t Tuple) ([]byte, error) {
	exp := EncodeExpiry(t.Expires)
	if t.Condition == "" {
		if len(t.Context) > 0 {
			return nil, fmt.Errorf("tuple %s has a context but no condition", t)
		}
		return exp, nil
	}
	js, err := json.Marshal(tupleCond{Condition: t.Condition, Context: t.Context})
	if err != nil {
		return nil, fmt.Errorf("the condition context of tuple %s: %w", t, err)
	}
	v := append([]byte{tupleCondVersion, byte(len(exp))}, exp...)
	return append(v, js...), nil
}

// DecodeTupleValue reads a tuple value into t's Expires, Condition and
// Context.
func DecodeTupleValue(v []byte, t *Tuple) error {
	if len(v) == 0 || len(v) == 12 {
		exp, err := DecodeExpiry(v)
		t.Expires = exp
		return err
	}
	if len(v) < 2 || v[0] != tupleCondVersion || (v[1] != 0 && v[1] != 12) || len(v) < 2+int(v[1]) {
		return fmt.Errorf("bad tuple value of %d bytes", len(v))
	}
	exp, err := DecodeExpiry(v[2 : 2+int(v[1])])
	if err != nil {
		return err
	}
	var c tupleCond
	if err := json.Unmarshal(v[2+int(v[1]):], &c); err != nil || c.Condition == "" {
		return fmt.Errorf("bad tuple condition: %v", err)
	}
	t.Expires, t.Condition, t.Context = exp, c.Condition, c.Context
	return nil
}
