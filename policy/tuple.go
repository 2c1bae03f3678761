package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/sshbastion/bastion/store"
)

// ErrInvalid is wrapped by every error about a malformed tuple, subject,
// object or relation name given to this package.
var ErrInvalid = errors.New("invalid")

// Limits on names, the same as OpenFGA's.
const (
	maxTypeLen     = 254
	maxRelationLen = 50
	maxObjectLen   = 256
)

// subject is a parsed subject string: "type:id", "type:*" (wildcard) or
// "type:id#relation" (userset). The strings are slices of the original, so
// parsing allocates nothing.
type subject struct {
	typ, id, rel string
	obj          string // "type:id"
}

func (s subject) wildcard() bool { return s.id == "*" && s.rel == "" }
func (s subject) userset() bool  { return s.rel != "" }

// splitObject splits "type:id" without validating the parts.
func splitObject(o string) (typ, id string, ok bool) {
	i := strings.IndexByte(o, ':')
	if i < 0 {
		return "", "", false
	}
	return o[:i], o[i+1:], true
}

// typeOf returns the type part of "type:id" (or of "type:id#rel").
func typeOf(o string) string {
	if i := strings.IndexByte(o, ':'); i >= 0 {
		return o[:i]
	}
	return o
}

// parseSubjectFast splits a subject without validating its characters; it
// is used on tuples read from the store, which were validated on write.
func parseSubjectFast(s string) subject {
	var sub subject
	sub.obj = s
	if i := strings.IndexByte(s, '#'); i >= 0 {
		sub.obj, sub.rel = s[:i], s[i+1:]
	}
	sub.typ, sub.id, _ = splitObject(sub.obj)
	return sub
}

// validName reports whether n is a usable type or relation name: not
// empty, at most max bytes, and free of the separators ':', '#', '@', '*'
// and of spaces and control characters.
func validName(n string, max int) bool {
	if n == "" || len(n) > max {
		return false
	}
	for _, r := range n {
		if r == ':' || r == '#' || r == '@' || r == '*' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// validID reports whether id is a usable object id, by OpenFGA's syntax:
// '*' is reserved for wildcards, '#' separates a userset relation and ':'
// the type, so none may appear (a:b:c is not an object), nor may spaces.
func validID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if r == '#' || r == '*' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// ParseObject validates an object string "type:id".
func ParseObject(o string) (typ, id string, err error) {
	typ, id, ok := splitObject(o)
	switch {
	case !ok:
		return "", "", fmt.Errorf("%w object %q: want type:id", ErrInvalid, o)
	case len(o) > maxObjectLen:
		return "", "", fmt.Errorf("%w object %q: longer than %d bytes", ErrInvalid, o, maxObjectLen)
	case !validName(typ, maxTypeLen):
		return "", "", fmt.Errorf("%w object %q: bad type %q", ErrInvalid, o, typ)
	case !validID(id):
		return "", "", fmt.Errorf("%w object %q: bad id %q", ErrInvalid, o, id)
	}
	return typ, id, nil
}

// parseSubject validates a subject string: "type:id", "type:*" or
// "type:id#relation".
func parseSubject(s string) (subject, error) {
	sub := parseSubjectFast(s)
	if strings.IndexByte(s, '#') >= 0 && !validName(sub.rel, maxRelationLen) {
		return subject{}, fmt.Errorf("%w subject %q: bad relation %q", ErrInvalid, s, sub.rel)
	}
	if sub.id == "*" && strings.IndexByte(sub.obj, ':') >= 0 {
		if sub.rel != "" {
			return subject{}, fmt.Errorf("%w subject %q: a wildcard cannot have a relation", ErrInvalid, s)
		}
		if !validName(sub.typ, maxTypeLen) {
			return subject{}, fmt.Errorf("%w subject %q: bad type %q", ErrInvalid, s, sub.typ)
		}
		return sub, nil
	}
	if _, _, err := ParseObject(sub.obj); err != nil {
		return subject{}, fmt.Errorf("%w subject %q: %v", ErrInvalid, s, errors.Unwrap(err))
	}
	return sub, nil
}

// ValidateSubject reports whether s is a well-formed subject: "type:id",
// "type:*" or "type:id#relation".
func ValidateSubject(s string) error {
	_, err := parseSubject(s)
	return err
}

// ParseTuple parses "object#relation@subject", for example
// "resource:web-1#act@user:alice" or "project:p#member@group:ops#member".
// Ids may contain '@' (user:alice@example.com): the relation, which cannot,
// ends at the first '@' after the first '#'. The result has no expiry.
func ParseTuple(s string) (store.Tuple, error) {
	hash := strings.IndexByte(s, '#')
	if hash < 0 {
		return store.Tuple{}, fmt.Errorf("%w tuple %q: want object#relation@subject", ErrInvalid, s)
	}
	at := strings.IndexByte(s[hash+1:], '@')
	if at < 0 {
		return store.Tuple{}, fmt.Errorf("%w tuple %q: want object#relation@subject", ErrInvalid, s)
	}
	t := store.Tuple{Object: s[:hash], Relation: s[hash+1 : hash+1+at], Subject: s[hash+1+at+1:]}
	if err := ValidateTupleSyntax(t); err != nil {
		return store.Tuple{}, err
	}
	return t, nil
}

// ValidateTupleSyntax checks the shape of a tuple's three parts, without
// a model. Model.ValidateTuple also checks them against the model.
func ValidateTupleSyntax(t store.Tuple) error {
	if _, _, err := ParseObject(t.Object); err != nil {
		return fmt.Errorf("tuple %s: %w", t, err)
	}
	if !validName(t.Relation, maxRelationLen) {
		return fmt.Errorf("%w tuple %s: bad relation %q", ErrInvalid, t, t.Relation)
	}
	if _, err := parseSubject(t.Subject); err != nil {
		return fmt.Errorf("tuple %s: %w", t, err)
	}
	return nil
}
