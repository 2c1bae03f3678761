package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// servingCert makes the certificate kubectl sees at the local end of the
// tunnel. It is self-signed and embedded in every kubeconfig as the only
// trusted CA, so kubectl verifies it like any apiserver; it lives as long
// as the process, like the tokens it protects.
func servingCert() (tls.Certificate, []byte, error) {
	pair, err := newServingPair()
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return parseServingPair(pair)
}

// SecretCreator stores a secret only if absent (store.Secrets).
type SecretCreator interface {
	CreateSecret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// servingSecret is where replicas share the tunnel certificate.
const servingSecret = "kube-tunnel-tls"

// sharedServingCert is servingCert made once for every replica of one
// store: a kubeconfig issued through one replica pins the certificate
// that every other replica's tunnel presents.
func sharedServingCert(ctx context.Context, sec SecretCreator) (tls.Certificate, []byte, error) {
	pair, err := newServingPair()
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	stored, err := sec.CreateSecret(ctx, servingSecret, pair)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return parseServingPair(stored)
}

// parseServingPair reads a PEM holding the certificate and its key.
func parseServingPair(pair []byte) (tls.Certificate, []byte, error) {
	c, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	var certPEM []byte
	for rest := pair; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			certPEM = append(certPEM, pem.EncodeToMemory(b)...)
		}
	}
	return c, certPEM, nil
}

// newServingPair makes a self-signed certificate and its key, as PEM.
func newServingPair() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sshbastion kube tunnel"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...), nil
}
