// Command skprovider is a software FIDO2 authenticator for the end-to-end
// tests: an OpenSSH SecurityKeyProvider (the middleware interface of
// OpenSSH's sk-api.h, API version 0x000a0000, which OpenSSH 8.9 to 9.x
// load), built with -buildmode=c-shared and loaded by the real ssh,
// ssh-keygen and ssh-sk-helper through `-w PROVIDER` or
// `-o SecurityKeyProvider=PROVIDER`.
//
// It keeps each private key in a file. ssh-keygen enrols into the
// directory named by $SKPROVIDER_DIR; the key handle that OpenSSH stores in
// its key file is that file's path, so signing needs no environment.
//
// Two switches, files beside the key file, change what the next signature
// asserts, as a real authenticator would when nobody touches it or when
// it checked a PIN:
//
//	KEYFILE.no-presence  clear the user-presence flag (0x01)
//	KEYFILE.verified     set the user-verification flag (0x04)
//
// It is test equipment: no attestation, no resident keys.
package main

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// The structures of sk-api.h at API version 0x000a0000 (OpenSSH 9.x).
struct sk_enroll_response {
	uint8_t flags;
	uint8_t *public_key;
	size_t public_key_len;
	uint8_t *key_handle;
	size_t key_handle_len;
	uint8_t *signature;
	size_t signature_len;
	uint8_t *attestation_cert;
	size_t attestation_cert_len;
	uint8_t *authdata;
	size_t authdata_len;
};

struct sk_sign_response {
	uint8_t flags;
	uint32_t counter;
	uint8_t *sig_r;
	size_t sig_r_len;
	uint8_t *sig_s;
	size_t sig_s_len;
};

struct sk_resident_key;

struct sk_option {
	char *name;
	char *value;
	uint8_t required;
};
*/
import "C"

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

// apiVersion is SSH_SK_VERSION_MAJOR of the OpenSSH this is built for; the
// client refuses a provider whose major version differs.
const apiVersion = 0x000a0000

// Algorithms and flags of sk-api.h.
const (
	algECDSA   = 0x00
	algEd25519 = 0x01

	flagUserPresence     = 0x01
	flagUserVerification = 0x04

	errGeneral     = -1
	errUnsupported = -2
)

// handlePrefix starts every key handle this provider issues.
const handlePrefix = "skprovider:"

// keyFile is what one enrolled key keeps on disk.
type keyFile struct {
	Alg         uint32 `json:"alg"`
	Application string `json:"application"`
	PKCS8       []byte `json:"pkcs8"`
	Counter     uint32 `json:"counter"`
}

func logf(format string, args ...any) {
	if os.Getenv("SKPROVIDER_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "skprovider: "+format+"\n", args...)
	}
}

// cbytes copies b into memory from C's malloc: OpenSSH frees what the
// provider returns with free().
func cbytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	p := C.malloc(C.size_t(len(b)))
	C.memcpy(p, unsafe.Pointer(&b[0]), C.size_t(len(b)))
	return (*C.uint8_t)(p), C.size_t(len(b))
}

//export sk_api_version
func sk_api_version() C.uint32_t { return apiVersion }

//export sk_enroll
func sk_enroll(alg C.uint32_t, challenge *C.uint8_t, challengeLen C.size_t, application *C.char, flags C.uint8_t,
	pin *C.char, options **C.struct_sk_option, resp **C.struct_sk_enroll_response) C.int {
	if resp == nil {
		return errGeneral
	}
	*resp = nil
	dir := os.Getenv("SKPROVIDER_DIR")
	if dir == "" {
		logf("enroll: SKPROVIDER_DIR is not set")
		return errGeneral
	}
	app := C.GoString(application)
	kf := keyFile{Alg: uint32(alg), Application: app}
	var pub []byte
	switch alg {
	case algEd25519:
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return errGeneral
		}
		pub = pk
		kf.PKCS8, err = x509.MarshalPKCS8PrivateKey(sk)
		if err != nil {
			return errGeneral
		}
	case algECDSA:
		sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return errGeneral
		}
		ecdh, err := sk.PublicKey.ECDH()
		if err != nil {
			return errGeneral
		}
		pub = ecdh.Bytes() // the uncompressed point OpenSSH expects
		kf.PKCS8, err = x509.MarshalPKCS8PrivateKey(sk)
		if err != nil {
			return errGeneral
		}
	default:
		return errUnsupported
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	abs, err := filepath.Abs(dir)
	if err != nil {
		return errGeneral
	}
	path := filepath.Join(abs, "sk-"+hex.EncodeToString(id[:])+".json")
	if err := writeKey(path, kf); err != nil {
		logf("enroll: %v", err)
		return errGeneral
	}
	r := (*C.struct_sk_enroll_response)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_sk_enroll_response{}))))
	r.flags = flags
	r.public_key, r.public_key_len = cbytes(pub)
	r.key_handle, r.key_handle_len = cbytes([]byte(handlePrefix + path))
	*resp = r
	logf("enrolled %s (alg %d, flags 0x%02x)", path, alg, flags)
	return 0
}

//export sk_sign
func sk_sign(alg C.uint32_t, data *C.uint8_t, dataLen C.size_t, application *C.char, keyHandle *C.uint8_t, keyHandleLen C.size_t,
	flags C.uint8_t, pin *C.char, options **C.struct_sk_option, resp **C.struct_sk_sign_response) C.int {
	if resp == nil || keyHandle == nil {
		return errGeneral
	}
	*resp = nil
	handle := C.GoBytes(unsafe.Pointer(keyHandle), C.int(keyHandleLen))
	path, ok := strings.CutPrefix(string(handle), handlePrefix)
	if !ok {
		return errGeneral
	}
	kf, err := readKey(path)
	if err != nil {
		logf("sign: %v", err)
		return errGeneral
	}
	app := C.GoString(application)
	if app != kf.Application || uint32(alg) != kf.Alg {
		logf("sign: key %s is for %q alg %d, asked %q alg %d", path, kf.Application, kf.Alg, app, alg)
		return errGeneral
	}
	kf.Counter++
	if err := writeKey(path, kf); err != nil {
		return errGeneral
	}
	sigFlags := byte(flagUserPresence)
	if exists(path + ".no-presence") {
		sigFlags &^= flagUserPresence
	}
	if exists(path + ".verified") {
		sigFlags |= flagUserVerification
	}
	// What an authenticator signs (PROTOCOL.u2f): the application's
	// SHA-256, the flags, the counter, and the SHA-256 of the message.
	appHash := sha256.Sum256([]byte(app))
	msgHash := sha256.Sum256(C.GoBytes(unsafe.Pointer(data), C.int(dataLen)))
	blob := make([]byte, 0, 32+1+4+32)
	blob = append(blob, appHash[:]...)
	blob = append(blob, sigFlags)
	blob = binary.BigEndian.AppendUint32(blob, kf.Counter)
	blob = append(blob, msgHash[:]...)

	priv, err := x509.ParsePKCS8PrivateKey(kf.PKCS8)
	if err != nil {
		return errGeneral
	}
	r := (*C.struct_sk_sign_response)(C.calloc(1, C.size_t(unsafe.Sizeof(C.struct_sk_sign_response{}))))
	r.flags = C.uint8_t(sigFlags)
	r.counter = C.uint32_t(kf.Counter)
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		r.sig_r, r.sig_r_len = cbytes(ed25519.Sign(k, blob))
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256(blob)
		sr, ss, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			C.free(unsafe.Pointer(r))
			return errGeneral
		}
		r.sig_r, r.sig_r_len = cbytes(sr.Bytes())
		r.sig_s, r.sig_s_len = cbytes(ss.Bytes())
	default:
		C.free(unsafe.Pointer(r))
		return errGeneral
	}
	*resp = r
	logf("signed with %s: flags 0x%02x counter %d", path, sigFlags, kf.Counter)
	return 0
}

//export sk_load_resident_keys
func sk_load_resident_keys(pin *C.char, options **C.struct_sk_option, rks unsafe.Pointer, nrks *C.size_t) C.int {
	return errUnsupported
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readKey(path string) (keyFile, error) {
	var kf keyFile
	b, err := os.ReadFile(path)
	if err != nil {
		return kf, err
	}
	if err := json.Unmarshal(b, &kf); err != nil {
		return kf, fmt.Errorf("%s: %v", path, err)
	}
	if len(kf.PKCS8) == 0 {
		return kf, errors.New(path + ": no key")
	}
	return kf, nil
}

// writeKey replaces the key file atomically (the counter changes at each
// signature).
func writeKey(path string, kf keyFile) error {
	b, err := json.Marshal(kf)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func main() {}
