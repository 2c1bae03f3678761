package storetest

import (
	"math"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func normRevocations(rs []store.CertRevocation) []store.CertRevocation {
	out := make([]store.CertRevocation, len(rs))
	for i, r := range rs {
		r.At = utc(r.At)
		out[i] = r
	}
	return out
}

func testCertRevocations(t *testing.T, s store.Store, _ *Clock) {
	_, ok, err := s.CertRevoked(bg, 42)
	must(t, err, "CertRevoked(42) on an empty store")
	if ok {
		t.Fatal("CertRevoked(42) on an empty store: ok is true")
	}
	list, err := s.ListCertRevocations(bg)
	must(t, err, "ListCertRevocations(empty)")
	equal(t, "ListCertRevocations(empty)", len(list), 0)

	// 256 sorts before 7 as text: listing must still be in serial order.
	r7 := store.CertRevocation{Serial: 7, Reason: "lost laptop", By: "admin", At: Epoch}
	r256 := store.CertRevocation{Serial: 256, By: "admin", At: Epoch.Add(time.Minute)}
	r42 := store.CertRevocation{Serial: 42, Reason: "left", At: Epoch.Add(2 * time.Minute)}
	rMax := store.CertRevocation{Serial: math.MaxUint64, Reason: "max", At: Epoch}
	for _, r := range []store.CertRevocation{r256, rMax, r42, r7} {
		must(t, s.RevokeCert(bg, r), "RevokeCert")
	}
	got, ok, err := s.CertRevoked(bg, 7)
	must(t, err, "CertRevoked(7)")
	if !ok {
		t.Fatal("CertRevoked(7): not revoked")
	}
	equal(t, "CertRevoked(7)", normRevocations([]store.CertRevocation{got})[0], r7)

	// Neighbours of revoked serials are not revoked.
	for _, serial := range []uint64{0, 6, 8, 43, 255, 257, 42 << 8, math.MaxUint64 - 1} {
		_, ok, err := s.CertRevoked(bg, serial)
		must(t, err, "CertRevoked(neighbour)")
		if ok {
			t.Fatalf("CertRevoked(%d): revoked, but only 7, 42, 256 and max are", serial)
		}
	}

	list, err = s.ListCertRevocations(bg)
	must(t, err, "ListCertRevocations")
	equal(t, "ListCertRevocations", normRevocations(list), []store.CertRevocation{r7, r42, r256, rMax})

	// Revoking a serial again replaces its record.
	r42.Reason, r42.By = "compromised", "bob"
	must(t, s.RevokeCert(bg, r42), "RevokeCert(42 again)")
	got, ok, err = s.CertRevoked(bg, 42)
	must(t, err, "CertRevoked(42)")
	if !ok {
		t.Fatal("CertRevoked(42) after re-revoking: not revoked")
	}
	equal(t, "CertRevoked(42) after re-revoking", normRevocations([]store.CertRevocation{got})[0], r42)
	list, err = s.ListCertRevocations(bg)
	must(t, err, "ListCertRevocations after re-revoking")
	equal(t, "ListCertRevocations after re-revoking", len(list), 4)
}
