package k8s

import (
	"errors"
	"fmt"
	"net/url"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sshbastion/bastion/store"
)

// RESTConfig is the bastion's own identity towards a kube Resource's
// apiserver: the in-cluster service account, or a kubeconfig file and
// context. A non-empty address (the Resource's) overrides the server.
func RESTConfig(spec store.KubeSpec, address string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case spec.InCluster:
		cfg, err = rest.InClusterConfig()
	case spec.Kubeconfig != "":
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: spec.Kubeconfig}
		over := &clientcmd.ConfigOverrides{CurrentContext: spec.Context}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, over).ClientConfig()
	default:
		return nil, errors.New("a kube Resource needs credentials: a kubeconfig (and context) or in_cluster")
	}
	if err != nil {
		return nil, fmt.Errorf("kube credentials: %w", err)
	}
	if address != "" {
		cfg.Host = address
	}
	if spec.Server != "" {
		cfg.Host = spec.Server
	}
	if _, err := url.Parse(cfg.Host); err != nil || cfg.Host == "" {
		return nil, fmt.Errorf("kube server %q is not a URL", cfg.Host)
	}
	// The bastion acts only through impersonation, set per user; a
	// kubeconfig that already impersonates someone would turn every user
	// into that identity.
	cfg.Impersonate = rest.ImpersonationConfig{}
	cfg.UserAgent = "sshbastion"
	return cfg, nil
}
