package badger

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func codecSeeds() [][]byte {
	evs := []store.Event{
		{},
		{Seq: 1, Time: time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC), Actor: "user:alice",
			Action: "forward.open", Target: "resource:web-1", Decision: "allow", Reason: "act",
			Details: map[string]string{"port": "22", "src": "192.0.2.1:5000"}, PrevHash: "00", Hash: "ab"},
		{Seq: 18446744073709551615, Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Actor: "ünïcödé",
			Details: map[string]string{"": ""}},
		{Seq: 2, Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600)), Actor: "a\"b\\c\n<&>",
			Details: map[string]string{"k\u2028": "v\x01"}},
		{Seq: 3, Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Actor: "bad \xff utf8"},
	}
	var out [][]byte
	for _, e := range evs {
		b, _ := json.Marshal(e)
		out = append(out, b)
	}
	return append(out,
		[]byte(`{"seq":1,"seq":2}`),
		[]byte(`{"Seq":1}`),
		[]byte(`{"seq":01}`),
		[]byte(`{"seq":1.0}`),
		[]byte(`{"seq":1e3}`),
		[]byte(`{"seq":-1}`),
		[]byte(`{"seq":18446744073709551616}`),
		[]byte(`{"seq":1} `),
		[]byte(`{"seq":1}x`),
		[]byte(` {"seq":1}`),
		[]byte(`{"time":"2030-01-02T03:04:05+01:00"}`),
		[]byte(`{"time":"2030-01-02T03:04:05.Z"}`),
		[]byte(`{"time":"2030-1-02T03:04:05Z"}`),
		[]byte(`{"time":"2030-01-02 03:04:05Z"}`),
		[]byte(`{"details":{"a":"b","a":"c"}}`),
		[]byte(`{"details":{}}`),
		[]byte(`{"details":null}`),
		[]byte(`{"details":{"a":1}}`),
		[]byte(`{"actor":null}`),
		[]byte(`{"actor":"x",}`),
		[]byte(`{,"actor":"x"}`),
		[]byte(`{"actor":"x"`),
		[]byte(`{"extra":"x"}`),
		[]byte(`{"hash":"a","details":{"x":"y"},"details":{"z":"w"}}`),
		[]byte(``),
	)
}

// FuzzDecodeEvent checks that the hand-written fast path never disagrees
// with encoding/json: whatever it accepts, json.Unmarshal accepts too, and
// decodes to exactly the same event.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range codecSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast store.Event
		if !fastDecodeEvent(b, &fast) {
			return
		}
		var want store.Event
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast path accepted %q, which encoding/json rejects: %v", b, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q:\n fast %#v\n json %#v", b, fast, want)
		}
	})
}

func TestDecodeEventMatchesJSON(t *testing.T) {
	fastHits := 0
	for _, b := range codecSeeds() {
		var got, want store.Event
		gotErr := decodeEvent(b, &got)
		wantErr := json.Unmarshal(b, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: decodeEvent error %v, json %v", b, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got  %#v\n want %#v", b, got, want)
		}
		var e store.Event
		if fastDecodeEvent(b, &e) {
			fastHits++
		}
	}
	// The common shape must actually take the fast path.
	if fastHits < 3 {
		t.Fatalf("only %d seeds took the fast path", fastHits)
	}
}
