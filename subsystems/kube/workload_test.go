package kube

import (
	"strings"
	"testing"
)

func TestParseWorkload(t *testing.T) {
	for _, c := range []struct {
		in, kind, ns, name, err string
	}{
		{in: "pods/default/web", kind: "pods", ns: "default", name: "web"},
		{in: "po/dev/web-0", kind: "pods", ns: "dev", name: "web-0"},
		{in: "svc/dev/api.v1", kind: "services", ns: "dev", name: "api.v1"},
		{in: "services/dev/api", kind: "services", ns: "dev", name: "api"},
		{in: "deployments/dev/api", err: "neither pods nor services"},
		{in: "pods/dev", err: "is not pods/NAMESPACE/NAME"},
		{in: "pods/dev/web/extra", err: "is not pods/NAMESPACE/NAME"},
		{in: "pods/Dev/web", err: `namespace "Dev"`},
		{in: "pods/dev/..", err: `name ".."`},
		{in: "pods/dev/a%2fb", err: `name "a%2fb"`},
		{in: "pods//web", err: `namespace ""`},
	} {
		w, err := parseWorkload(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || w.kind != c.kind || w.namespace != c.ns || w.name != c.name {
			t.Errorf("%q: %+v %v", c.in, w, err)
		}
	}
}
