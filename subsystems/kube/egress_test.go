package kube

import "testing"

func TestEgressTarget(t *testing.T) {
	for _, c := range []struct {
		in           string
		res, ns, svc string
		ours, bad    bool
	}{
		{in: "", ours: false},
		{in: "localhost", ours: false},
		{in: "*", ours: false},
		{in: "10.0.0.1", ours: false},
		{in: "default/laptop", ns: "default", svc: "laptop", ours: true},
		{in: "prod/default/laptop", res: "prod", ns: "default", svc: "laptop", ours: true},
		{in: "a/b/c/d", ours: true, bad: true},
		{in: "Default/laptop", ours: true, bad: true},
		{in: "default/9laptop", ours: true, bad: true}, // a Service name is a DNS-1035 label
		{in: "default/", ours: true, bad: true},
		{in: "../x", ours: true, bad: true},
	} {
		res, ns, svc, ours, err := egressTarget(c.in)
		if ours != c.ours || (err != nil) != c.bad {
			t.Errorf("%q: ours %v err %v", c.in, ours, err)
			continue
		}
		if !c.bad && (res != c.res || ns != c.ns || svc != c.svc) {
			t.Errorf("%q: got %q %q %q", c.in, res, ns, svc)
		}
	}
}
