package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sshbastion/bastion/store"
)

// A segment is a run of archived events as JSON lines, verifiable on its
// own:
//
//	{"kind":"header","format":"bastion.audit.segment.v1","first_seq":1,"prev_hash":"000…",...}
//	{"seq":1,"time":"…","actor":"…","action":"…",…,"prev_hash":"000…","hash":"…"}
//	…one line per event, in seq order, exactly as stored…
//	{"kind":"trailer","count":N,"last_seq":N,"last_hash":"…","last_time":"…","sha256":"…"}
//
// The events chain from the header's prev_hash (Genesis for seq 1, else
// the hash of the event before the segment) to the trailer's last_hash,
// which the next segment's header, or the live log's checkpoint, repeats;
// the trailer's sha256 covers every byte of the segment before it, the
// header included. Lines are ASCII: every other character is written as a
// JSON \u escape, which decodes to the very same string, so a segment
// passes unchanged through anything that guards a terminal. Segments may
// be concatenated, oldest first, and verified together.

// SegmentFormat names the segment layout; it is in every header.
const SegmentFormat = "bastion.audit.segment.v1"

// SegmentHeader is the first line of a segment.
type SegmentHeader struct {
	Kind     string `json:"kind"` // "header"
	Format   string `json:"format"`
	FirstSeq uint64 `json:"first_seq"`
	// PrevHash is what the first event chains onto.
	PrevHash string `json:"prev_hash"`
	// Before is what the archive was asked for: events older than it.
	Before  time.Time `json:"before"`
	Created time.Time `json:"created"`
}

// SegmentTrailer is the last line of a segment: the head it ends on.
type SegmentTrailer struct {
	Kind     string    `json:"kind"` // "trailer"
	Count    uint64    `json:"count"`
	LastSeq  uint64    `json:"last_seq"`
	LastHash string    `json:"last_hash"`
	LastTime time.Time `json:"last_time"`
	// SHA256 is the hex SHA-256 of every byte of the segment before
	// this line.
	SHA256 string `json:"sha256"`
}

// maxSegmentLine bounds one line read from a segment: a bounded event's
// JSON is far smaller (MaxEventSize of text, each byte at most a 6-byte
// escape, plus the fixed fields).
const maxSegmentLine = 1 << 20

// segmentWriter writes a segment's lines, hashing them for the trailer.
// Lines are written whole, one Write each, in chunks of about 64 KiB.
type segmentWriter struct {
	w   io.Writer
	sum hash.Hash
	buf []byte
}

func newSegmentWriter(w io.Writer) *segmentWriter {
	return &segmentWriter{w: w, sum: sha256.New()}
}

func (s *segmentWriter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	start := len(s.buf)
	s.buf = appendASCII(s.buf, b)
	s.buf = append(s.buf, '\n')
	s.sum.Write(s.buf[start:])
	if len(s.buf) >= 64<<10 {
		return s.flush()
	}
	return nil
}

func (s *segmentWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}

// digest returns the hex SHA-256 of every line so far.
func (s *segmentWriter) digest() string { return hex.EncodeToString(s.sum.Sum(nil)) }

// appendASCII appends the JSON text b with every non-ASCII character and
// DEL written as \u escapes (UTF-16 surrogate pairs above U+FFFF). Outside
// strings JSON text is ASCII, so only string contents change, and they
// decode to the same strings. json.Marshal already escapes C0 controls and
// writes valid UTF-8.
func appendASCII(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf && c != 0x7f {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := rune(c), 1
		if c >= utf8.RuneSelf {
			r, n = utf8.DecodeRune(b[i:])
		}
		if r > 0xffff {
			r -= 0x10000
			dst = appendU(dst, 0xd800+(r>>10))
			r = 0xdc00 + r&0x3ff
		}
		dst = appendU(dst, r)
		i += n
	}
	return dst
}

func appendU(dst []byte, r rune) []byte {
	const hexDigits = "0123456789abcdef"
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// segmentReader reads a segment's lines, keeping the SHA-256 of the lines
// since the last reset.
type segmentReader struct {
	r    *bufio.Reader
	sum  hash.Hash
	line int
}

// errLongLine is returned by next for a line over maxSegmentLine.
var errLongLine = fmt.Errorf("a line is over %d bytes, longer than any event", maxSegmentLine)

// next returns the next line as read (with its newline, if any), io.EOF
// at the end.
func (s *segmentReader) next() ([]byte, error) {
	var out []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(out)+len(chunk) > maxSegmentLine {
			s.line++
			return nil, errLongLine
		}
		out = append(out, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(out) > 0, err == nil:
			s.line++
			return out, nil
		}
		return nil, err
	}
}

// hashLine adds a line as read (newline included) to the digest.
func (s *segmentReader) hashLine(raw []byte) { s.sum.Write(raw) }

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// kindOf returns the kind of a header or trailer line, "" for an event
// (whose JSON starts with its seq).
func kindOf(line []byte) string {
	var k struct {
		Kind string `json:"kind"`
	}
	if !bytes.HasPrefix(line, []byte(`{"kind":`)) || json.Unmarshal(line, &k) != nil {
		return ""
	}
	return k.Kind
}

// segmentState verifies the lines of one or more concatenated segments.
type segmentState struct {
	rep      *SegmentReport
	inside   bool   // between a header and its trailer
	want     uint64 // next seq
	prev     string // hash the next event chains onto
	count    uint64
	lastTime time.Time
	buf      []byte
}

func (v *segmentState) header(line []byte) error {
	var h SegmentHeader
	if err := json.Unmarshal(line, &h); err != nil {
		return fmt.Errorf("unreadable header: %v", err)
	}
	if h.Format != SegmentFormat {
		return fmt.Errorf("format %q, want %q", h.Format, SegmentFormat)
	}
	if h.FirstSeq == 0 || h.FirstSeq == 1 && h.PrevHash != Genesis {
		return fmt.Errorf("header starts at seq %d after %s: seq 1 follows the genesis hash", h.FirstSeq, h.PrevHash)
	}
	r := v.rep
	if r.Segments > 0 && (h.FirstSeq != r.LastSeq+1 || h.PrevHash != r.LastHash) {
		return fmt.Errorf("segment %d starts at seq %d after %s, but the one before ends at seq %d, %s",
			r.Segments+1, h.FirstSeq, h.PrevHash, r.LastSeq, r.LastHash)
	}
	if r.Segments == 0 {
		r.FirstSeq, r.PrevHash = h.FirstSeq, h.PrevHash
	}
	v.inside, v.want, v.prev, v.count = true, h.FirstSeq, h.PrevHash, 0
	return nil
}

func (v *segmentState) event(line []byte) error {
	var e store.Event
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("unreadable event: %v", err)
	}
	if e.Seq != v.want {
		return fmt.Errorf("event %d expected, found seq %d", v.want, e.Seq)
	}
	if e.PrevHash != v.prev {
		return fmt.Errorf("event %d: prev_hash %s does not match the hash before it (%s)", e.Seq, e.PrevHash, v.prev)
	}
	v.buf = appendCanonical(v.buf[:0], e)
	if h := hashHex(v.buf); h != e.Hash {
		return fmt.Errorf("event %d: content does not match its hash (stored %s, computed %s)", e.Seq, e.Hash, h)
	}
	v.prev, v.lastTime = e.Hash, e.Time
	v.want++
	v.count++
	return nil
}

func (v *segmentState) trailer(line []byte, digest string) error {
	var t SegmentTrailer
	if err := json.Unmarshal(line, &t); err != nil {
		return fmt.Errorf("unreadable trailer: %v", err)
	}
	if v.count == 0 {
		return errors.New("segment holds no event")
	}
	if t.Count != v.count || t.LastSeq != v.want-1 || t.LastHash != v.prev {
		return fmt.Errorf("trailer says %d events ending at seq %d, %s; the segment holds %d ending at seq %d, %s",
			t.Count, t.LastSeq, t.LastHash, v.count, v.want-1, v.prev)
	}
	if t.SHA256 != digest {
		return fmt.Errorf("trailer's sha256 %s does not match the segment's (%s): the header or a line was changed", t.SHA256, digest)
	}
	r := v.rep
	r.Segments++
	r.Count += v.count
	r.LastSeq, r.LastHash, r.LastTime = t.LastSeq, t.LastHash, v.lastTime
	v.inside = false
	return nil
}

// readSegments verifies every segment in r, in order, into rep; a broken
// segment sets rep.Reason and rep.Line. The error is for failing to read.
func readSegments(r io.Reader, rep *SegmentReport) error {
	sr := &segmentReader{r: bufio.NewReaderSize(r, 64<<10), sum: sha256.New()}
	v := &segmentState{rep: rep}
	fail := func(format string, args ...any) error {
		rep.Line, rep.Reason = sr.line, fmt.Sprintf(format, args...)
		return nil
	}
	for {
		raw, err := sr.next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errLongLine) {
			return fail("%v", err)
		}
		if err != nil {
			return err
		}
		line := trimNewline(raw)
		switch kind := kindOf(line); {
		case !v.inside && kind == "header":
			sr.sum.Reset()
			sr.hashLine(raw)
			if err := v.header(line); err != nil {
				return fail("%v", err)
			}
		case !v.inside:
			return fail("a segment starts with a header line, found %s", describe(kind))
		case kind == "trailer":
			if err := v.trailer(line, hex.EncodeToString(sr.sum.Sum(nil))); err != nil {
				return fail("%v", err)
			}
		case kind != "":
			return fail("a %s line inside a segment", strconv.Quote(kind))
		default:
			sr.hashLine(raw)
			if err := v.event(line); err != nil {
				rep.BrokenSeq = v.want
				return fail("%v", err)
			}
		}
	}
	if v.inside {
		return fail("the input ends inside segment %d, before its trailer: the segment is truncated", rep.Segments+1)
	}
	if rep.Segments == 0 {
		return fail("no segment in the input")
	}
	return nil
}

func describe(kind string) string {
	if kind == "" {
		return "an event"
	}
	return "a " + strconv.Quote(kind) + " line"
}
