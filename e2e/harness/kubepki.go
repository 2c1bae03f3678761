package harness

// The test cluster's PKI: a CA, serving and client certificates, and the
// kubeconfigs that carry them.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"
)

// writePKI makes the CA, the serving cert, the admin and impersonator
// client certs with their kubeconfigs, and the service-account key pair.
func (k *Kube) writePKI(t testing.TB) {
	t.Helper()
	caKey := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "bastion-e2e-kube-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	k.ca, _ = x509.ParseCertificate(der)
	k.caKey = caKey
	k.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	k.CAFile = k.writeFile(t, "ca.crt", k.caPEM)

	cert, key := k.issue(t, pkix.Name{CommonName: "kube-apiserver"}, true)
	k.writeFile(t, "apiserver.crt", cert)
	k.writeFile(t, "apiserver.key", key)

	cert, key = k.issue(t, pkix.Name{CommonName: "kube-admin", Organization: []string{"system:masters"}}, false)
	k.writeFile(t, "admin.crt", cert)
	k.writeFile(t, "admin.key", key)
	k.AdminKubeconfig = k.writeKubeconfig(t, "admin", "kube-admin", cert, key)

	cert, key = k.issue(t, pkix.Name{CommonName: KubeImpersonatorUser}, false)
	k.writeFile(t, KubeImpersonatorUser+".crt", cert)
	k.writeFile(t, KubeImpersonatorUser+".key", key)
	k.ImpersonatorKubeconfig = k.writeKubeconfig(t, "impersonator", KubeImpersonatorUser, cert, key)

	saKey := newECKey(t)
	k.writeFile(t, "sa.key", ecKeyPEM(t, saKey))
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	k.writeFile(t, "sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

// issue signs a certificate for subject with the CA: a serving cert for
// 127.0.0.1, ::1 and localhost when server, a client cert otherwise. It
// returns the certificate and key as PEM.
func (k *Kube) issue(t testing.TB, subject pkix.Name, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, k.ca, &key.PublicKey, k.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ecKeyPEM(t, key)
}

// writeKubeconfig writes a self-contained kubeconfig (certificates inline)
// for user at this apiserver's URL.
func (k *Kube) writeKubeconfig(t testing.TB, name, user string, cert, key []byte) string {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: e2e
  context:
    cluster: e2e
    user: %s
current-context: e2e
`, k.URL, b64(k.caPEM), user, b64(cert), b64(key), user)
	return k.writeFile(t, name+".kubeconfig", []byte(cfg))
}

func newECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func ecKeyPEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
