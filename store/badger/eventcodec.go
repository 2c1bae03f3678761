package badger

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/sshbastion/bastion/store"
)

// decodeEvent decodes an event as stored by AppendEvents (json.Marshal of a
// store.Event). Verifying a large log is dominated by JSON decoding, so the
// exact shape json.Marshal produces is parsed by hand: no whitespace, known
// lower-case keys at most once each, strings without escapes, valid UTF-8
// and no control characters, a plain unsigned seq and a UTC ("Z") time.
// Anything else, valid or not, goes to encoding/json, so on every input
// the result is what json.Unmarshal gives (FuzzDecodeEvent checks this).
func decodeEvent(v []byte, e *store.Event) error {
	if fastDecodeEvent(v, e) {
		return nil
	}
	*e = store.Event{}
	return json.Unmarshal(v, e)
}

// Bits for the top-level keys, to refuse duplicates on the fast path.
const (
	fSeq = 1 << iota
	fTime
	fActor
	fAction
	fTarget
	fDecision
	fReason
	fDetails
	fPrevHash
	fHash
)

type eventParser struct {
	b []byte
	i int
}

func fastDecodeEvent(v []byte, e *store.Event) bool {
	p := eventParser{b: v}
	*e = store.Event{}
	if !p.byte('{') {
		return false
	}
	seen := 0
	for first := true; ; first = false {
		if p.byte('}') {
			break
		}
		if !first && !p.byte(',') {
			return false
		}
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		var bit int
		switch string(key) {
		case "seq":
			bit = fSeq
			e.Seq, ok = p.uint()
		case "time":
			bit = fTime
			var s []byte
			// Only UTC times: other offsets may decode to time.Local,
			// which is left to encoding/json to get exactly right.
			if s, ok = p.str(); ok && len(s) > 0 && s[len(s)-1] == 'Z' {
				ok = e.Time.UnmarshalText(s) == nil
			} else {
				ok = false
			}
		case "actor":
			bit = fActor
			e.Actor, ok = p.string()
		case "action":
			bit = fAction
			e.Action, ok = p.string()
		case "target":
			bit = fTarget
			e.Target, ok = p.string()
		case "decision":
			bit = fDecision
			e.Decision, ok = p.string()
		case "reason":
			bit = fReason
			e.Reason, ok = p.string()
		case "details":
			bit = fDetails
			e.Details, ok = p.details()
		case "prev_hash":
			bit = fPrevHash
			e.PrevHash, ok = p.string()
		case "hash":
			bit = fHash
			e.Hash, ok = p.string()
		default:
			return false // unknown (or differently cased) key
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return p.i == len(p.b)
}

func (p *eventParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str returns the raw bytes of a string with no escapes, no control
// characters and valid UTF-8; ok is false for anything else.
func (p *eventParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start, ascii := p.i, true
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

func (p *eventParser) string() (string, bool) {
	s, ok := p.str()
	return string(s), ok
}

// uint parses a JSON number that is a plain uint64 (no sign, fraction,
// exponent or leading zero).
func (p *eventParser) uint() (uint64, bool) {
	start := p.i
	var n uint64
	for ; p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9'; p.i++ {
		d := uint64(p.b[p.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false // overflow
		}
		n = n*10 + d
	}
	digits := p.i - start
	if digits == 0 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	// A following '.', 'e' or 'E' would make it a non-integer number.
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, false
	}
	return n, true
}

func (p *eventParser) details() (map[string]string, bool) {
	if !p.byte('{') {
		return nil, false
	}
	m := map[string]string{}
	for first := true; ; first = false {
		if p.byte('}') {
			return m, true
		}
		if !first && !p.byte(',') {
			return nil, false
		}
		k, ok := p.string()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, ok := p.string()
		if !ok {
			return nil, false
		}
		m[k] = v
	}
}
