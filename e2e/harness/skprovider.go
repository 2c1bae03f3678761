package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// SKProviderDir is the software FIDO2 authenticator's source, relative to
// the module root.
const SKProviderDir = "e2e/testdata/skprovider"

var (
	skOnce sync.Once
	skPath string
	skErr  error
)

// SKProvider builds the software authenticator (an OpenSSH
// SecurityKeyProvider, Go with -buildmode=c-shared: it needs cgo and a C
// compiler, which scripts/install-deps.sh installs) once per test process
// and returns the path of its shared library. RemoveBinary deletes it.
func SKProvider(t testing.TB) string {
	t.Helper()
	skOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			skErr = err
			return
		}
		dir, err := os.MkdirTemp("", "bastion-e2e-sk-")
		if err != nil {
			skErr = err
			return
		}
		skPath = filepath.Join(dir, "skprovider.so")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", skPath, "./"+SKProviderDir)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			skErr = fmt.Errorf("building the software security key (needs gcc: scripts/install-deps.sh): %v\n%s", err, out)
		}
	})
	if skErr != nil {
		t.Fatal(skErr)
	}
	return skPath
}

func removeSKProvider() {
	if skPath != "" {
		_ = os.RemoveAll(filepath.Dir(skPath))
	}
}

// SKey is a FIDO2 key (ed25519-sk or ecdsa-sk) enrolled with the real
// ssh-keygen on the software authenticator. Key is what Run takes; run
// ssh with Options() so that the client signs through the provider.
type SKey struct {
	Key
	Provider string
	// keyFile is the authenticator's own file for this key (the key
	// handle names it); the switches are files beside it.
	keyFile string
}

// NewSKey enrols a security key of type typ ("ed25519-sk" or "ecdsa-sk")
// named name in dir, with extra ssh-keygen -O options (e.g.
// "no-touch-required", "verify-required").
func NewSKey(t testing.TB, dir, name, typ string, opts ...string) SKey {
	t.Helper()
	provider := SKProvider(t)
	state := filepath.Join(dir, name+".authenticator")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	args := []string{"-q", "-t", typ, "-w", provider, "-N", "", "-C", name, "-f", path}
	for _, o := range opts {
		args = append(args, "-O", o)
	}
	cmd := exec.Command("ssh-keygen", args...)
	cmd.Env = append(os.Environ(), "SKPROVIDER_DIR="+state)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -t %s -w %s: %v\n%s", typ, provider, err, out)
	}
	files, _ := filepath.Glob(filepath.Join(state, "sk-*.json"))
	if len(files) != 1 {
		t.Fatalf("the software authenticator holds %d keys in %s, want 1", len(files), state)
	}
	return SKey{Key: keyAt(t, path), Provider: provider, keyFile: files[0]}
}

// Options are the ssh -o options that sign with this key's authenticator.
func (k SKey) Options() []string {
	return []string{"SecurityKeyProvider=" + k.Provider}
}

// SetPresence says whether the next signatures assert user presence (a
// touch); true by default.
func (k SKey) SetPresence(t testing.TB, present bool) {
	t.Helper()
	setSwitch(t, k.keyFile+".no-presence", !present)
}

// SetVerification says whether the next signatures assert user
// verification (a PIN checked by the authenticator); false by default.
func (k SKey) SetVerification(t testing.TB, verified bool) {
	t.Helper()
	setSwitch(t, k.keyFile+".verified", verified)
}

func setSwitch(t testing.TB, path string, on bool) {
	t.Helper()
	if on {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}
