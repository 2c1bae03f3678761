package etcd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// seqTLSSecret names the secret holding the forwarding endpoint's key pair
// (seqforward.go): one self-signed certificate and its key, PEM, created
// by whichever replica needs it first (CreateSecret), the same for all.
const seqTLSSecret = "audit-sequencer-tls"

// sequencerTLS returns the endpoint's server and client configurations:
// both present the shared certificate, and both refuse a peer that does
// not present exactly that certificate. Whoever can read the store's
// secrets could forge it, but could write the audit chain directly too.
func (s *Store) sequencerTLS(ctx context.Context) (server, client *tls.Config, err error) {
	fresh, err := newSeqCert()
	if err != nil {
		return nil, nil, err
	}
	pair, err := s.CreateSecret(ctx, seqTLSSecret, fresh)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: audit sequencer key pair: %w", err)
	}
	cert, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: audit sequencer key pair in secret %s: %w", seqTLSSecret, err)
	}
	want := cert.Certificate[0]
	// The pin replaces chain verification: there is no CA, only the one
	// certificate every replica holds.
	pin := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 || !bytes.Equal(raw[0], want) {
			return errors.New("peer is not an audit sequencer replica of this store")
		}
		return nil
	}
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: pin, NextProtos: []string{"h2", "http/1.1"}}
	client = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		InsecureSkipVerify:    true, // verified by pin, against the one shared certificate
		VerifyPeerCertificate: pin}
	return server, client, nil
}

// newSeqCert makes a self-signed Ed25519 certificate and key, as PEM.
func newSeqCert() ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "bastion audit sequencer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(100, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, err
	}
	key, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})...), nil
}
