package k8s

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	for _, c := range []struct {
		method, target string
		want           Info
	}{
		{"GET", "/api/v1/namespaces/dev/configmaps", Info{Verb: "list", APIVersion: "v1", Resource: "configmaps", Namespace: "dev"}},
		{"GET", "/api/v1/namespaces/dev/configmaps?watch=true", Info{Verb: "watch", APIVersion: "v1", Resource: "configmaps", Namespace: "dev"}},
		{"GET", "/api/v1/namespaces/dev/configmaps/cm-1", Info{Verb: "get", APIVersion: "v1", Resource: "configmaps", Namespace: "dev", Name: "cm-1"}},
		{"POST", "/api/v1/namespaces/dev/pods/p/exec", Info{Verb: "create", APIVersion: "v1", Resource: "pods", Subresource: "exec", Namespace: "dev", Name: "p"}},
		{"GET", "/api/v1/namespaces/dev/pods/p/log?follow=true", Info{Verb: "get", APIVersion: "v1", Resource: "pods", Subresource: "log", Namespace: "dev", Name: "p"}},
		{"DELETE", "/apis/apps/v1/namespaces/x/deployments/d", Info{Verb: "delete", APIGroup: "apps", APIVersion: "v1", Resource: "deployments", Namespace: "x", Name: "d"}},
		{"POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", Info{Verb: "create", APIGroup: "authentication.k8s.io", APIVersion: "v1", Resource: "selfsubjectreviews"}},
		{"GET", "/version", Info{Verb: "get"}},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		got := ParseRequest(r)
		c.want.Path = r.URL.Path
		if got != c.want {
			t.Errorf("%s %s: got %+v, want %+v", c.method, c.target, got, c.want)
		}
	}
}

func TestStripCredentials(t *testing.T) {
	h := http.Header{}
	for _, k := range []string{"Authorization", "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-Scopes", "X-Remote-User", "Accept"} {
		h.Set(k, "x")
	}
	h["impersonate-user"] = []string{"raw lower-case key"}
	StripCredentials(h)
	if len(h) != 1 || h.Get("Accept") != "x" {
		t.Fatalf("left %v", h)
	}
}

// FuzzParseRequest: any path and method resolve without panicking, and the
// attributes never contain a path separator (they are audit fields, and
// the namespace and name are what a reader filters on).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"/api/v1/namespaces/dev/configmaps", "/apis/apps/v1/namespaces/x/deployments/d/scale",
		"/api/v1/namespaces/../../configmaps", "//api//v1", "/apis", "/api/v1/namespaces/a%2Fb/pods", "/api/v1/nodes/n/proxy/x/y"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, p string) {
		r, err := http.NewRequest("GET", "http://x/", nil)
		if err != nil {
			t.Skip()
		}
		r.Method = method
		r.URL.Path = p
		info := ParseRequest(r)
		for _, v := range []string{info.Namespace, info.Resource, info.APIGroup} {
			if strings.Contains(v, "/") {
				t.Fatalf("%q %q: attribute %q contains a slash: %+v", method, p, v, info)
			}
		}
	})
}
