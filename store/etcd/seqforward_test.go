package etcd_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/etcd"
)

// TestSequencerForwards: while one store leads, the others hand their
// batches to it directly (SequencerStats counts them), and the chain is
// the one the inbox path makes: every batch once, gap-free.
func TestSequencerForwards(t *testing.T) {
	lead, b, c, got, wg := leaderAndTwoAppending(t, "/fwd/", 25)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkChain(t, lead, got)
	for name, s := range map[string]*etcd.Store{"b": b, "c": c} {
		fw, in := s.SequencerStats()
		t.Logf("%s: %d batches forwarded, %d through the inbox", name, fw, in)
		// The first batch may go through the inbox: the leader is
		// learnt from the election, which the first append joins.
		if fw == 0 || in > 2 {
			t.Errorf("%s: %d batches forwarded, %d through the inbox; want them forwarded", name, fw, in)
		}
	}
}

// TestSequencerInboxOnly: with forwarding off (SequencerListen "-"),
// every writer's batches go through its inbox, and the chain is the same.
func TestSequencerInboxOnly(t *testing.T) {
	off := func(o *etcd.Options) { o.SequencerListen = "-" }
	stores, _ := threeAppending(t, "/inb/", off, 4, 15)
	var forwarded, inbox uint64
	for _, s := range stores {
		fw, in := s.SequencerStats()
		forwarded, inbox = forwarded+fw, inbox+in
	}
	if forwarded != 0 || inbox == 0 {
		t.Fatalf("%d batches forwarded, %d through the inbox; want none forwarded", forwarded, inbox)
	}
}

// TestSequencerEndpointRefusesStrangers: the leader's endpoint takes
// batches only from a peer presenting the replicas' shared certificate. A
// client with another certificate, or none, is refused at the handshake,
// and nothing it sent reaches the chain.
func TestSequencerEndpointRefusesStrangers(t *testing.T) {
	p := startEtcd(t)
	s := open(t, p, "/str/", nil)
	if _, err := s.AppendSequenced(ctx, []store.Event{{Action: "first"}}, seqChain); err != nil {
		t.Fatal(err)
	}
	addr := leaderAddr(t, s, "/str/")
	body, _ := json.Marshal([]store.Event{{Action: "forged"}})
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another certificate": {selfSigned(t)}} {
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // this client plays an attacker: it trusts anything
			Certificates:       certs}}}
		resp, err := cl.Post("https://"+addr+"/audit/v1/sequence", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: the endpoint answered %s; want the handshake refused", name, resp.Status)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Post("http://"+addr+"/audit/v1/sequence", "application/json", bytes.NewReader(body)); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP: %s", resp.Status)
		}
		resp.Body.Close()
	}
	evs, err := s.QueryEvents(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Action == "forged" {
			t.Fatalf("a stranger's event is in the chain: %+v", e)
		}
	}
}

// leaderAddr reads the forwarding address the sequencer's leader
// announces in its election.
func leaderAddr(t *testing.T, s *etcd.Store, prefix string) string {
	t.Helper()
	for range 50 {
		resp, err := s.Client().Get(ctx, prefix+"~seq/", append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 1 {
			var a struct{ Addr string }
			if json.Unmarshal(resp.Kvs[0].Value, &a) == nil && a.Addr != "" {
				return a.Addr
			}
			t.Fatalf("election value %q names no address", resp.Kvs[0].Value)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no sequencer leader announced")
	return ""
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{strings.Repeat("x", 3)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}
