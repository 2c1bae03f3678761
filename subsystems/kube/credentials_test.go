package kube

import (
	"strings"
	"testing"

	"github.com/sshbastion/bastion/store"
)

// TestSpecUsesNamedCredentialsOnly: a Resource made over ssh reaches an
// apiserver only with credentials the config names; raw ones stored by
// an older bastion are refused, while a config Resource keeps its own.
func TestSpecUsesNamedCredentialsOnly(t *testing.T) {
	m := &Module{cfg: Config{Host: "ssh bastion", Credentials: map[string]Credential{"prod": {Kubeconfig: "/etc/prod.kc", Context: "p"}}}}
	s, err := m.spec(store.Resource{Name: "k", Origin: store.OriginSSH, Kube: &store.KubeSpec{Credentials: "prod", Groups: map[string][]string{"act": {"devs"}}}})
	if err != nil || s.Kubeconfig != "/etc/prod.kc" || s.Context != "p" || s.Groups["act"][0] != "devs" {
		t.Fatalf("named credentials: %+v %v", s, err)
	}
	if _, err := m.spec(store.Resource{Name: "k", Kube: &store.KubeSpec{Credentials: "gone"}}); err == nil || !strings.Contains(err.Error(), "kube.credentials") {
		t.Fatalf("unknown credentials: %v", err)
	}
	for _, k := range []store.KubeSpec{{Kubeconfig: "/root/.kube/config"}, {InCluster: true}, {Context: "admin"}} {
		k := k
		if _, err := m.spec(store.Resource{Name: "k", Kube: &k}); err == nil || !strings.Contains(err.Error(), "--credentials") {
			t.Errorf("raw %+v on an ssh-made Resource: %v", k, err)
		}
	}
	s, err = m.spec(store.Resource{Name: "k", Origin: store.OriginConfig, Kube: &store.KubeSpec{Kubeconfig: "/etc/x.kc"}})
	if err != nil || s.Kubeconfig != "/etc/x.kc" {
		t.Fatalf("config Resource: %+v %v", s, err)
	}
	if m.dialFor(store.Resource{Origin: store.OriginSSH}) != nil {
		t.Fatal("no Dialer configured, yet a dial function")
	}
}
