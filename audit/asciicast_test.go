package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestRecorderWritesValidAsciicastV2(t *testing.T) {
	var out bytes.Buffer
	r, err := NewRecorder(80, 24, map[string]string{"TERM": "xterm"}, "bob@host-1", func(c []byte) error { out.Write(c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	euro := []byte("€") // 3 bytes, split across two writes
	r.Output([]byte("hello\r\n"))
	r.Output(euro[:2])
	r.Output(append(euro[2:], []byte(" done\r\n")...))
	r.Resize(100, 30)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&out)
	if !sc.Scan() {
		t.Fatal("no header")
	}
	var hdr map[string]any
	if err := json.Unmarshal(sc.Bytes(), &hdr); err != nil || hdr["version"] != float64(2) || hdr["width"] != float64(80) {
		t.Fatalf("header %s: %v", sc.Bytes(), err)
	}
	var text strings.Builder
	last := -1.0
	var resized bool
	for sc.Scan() {
		var ev []any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("bad event line %q: %v", sc.Bytes(), err)
		}
		ts := ev[0].(float64)
		if ts < last {
			t.Fatal("event times go backwards")
		}
		last = ts
		switch ev[1] {
		case "o":
			text.WriteString(ev[2].(string))
		case "r":
			resized = ev[2] == "100x30"
		default:
			t.Fatalf("unexpected event code %v (input must not be recorded)", ev[1])
		}
	}
	if text.String() != "hello\r\n€ done\r\n" || !resized {
		t.Fatalf("replayed %q, resized %v", text.String(), resized)
	}
}
