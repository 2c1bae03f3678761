package k8s

import (
	"net/http"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// Info is what the audit log records of one API request.
type Info struct {
	Verb        string `json:"verb"`
	APIGroup    string `json:"api_group,omitempty"`
	APIVersion  string `json:"api_version,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Subresource string `json:"subresource,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name,omitempty"`
	Path        string `json:"path"`
}

// resolver is the apiserver's own: the same verbs (list vs get, watch),
// groups and subresources the apiserver authorizes with.
var resolver = &request.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// ParseRequest resolves a request to its Kubernetes attributes. Paths that
// are not resources (/version, /openapi/v2) keep the HTTP verb.
func ParseRequest(r *http.Request) Info {
	ri, err := resolver.NewRequestInfo(r)
	if err != nil || ri == nil {
		return Info{Verb: r.Method, Path: r.URL.Path}
	}
	return Info{Verb: ri.Verb, APIGroup: ri.APIGroup, APIVersion: ri.APIVersion, Resource: ri.Resource,
		Subresource: ri.Subresource, Namespace: ri.Namespace, Name: ri.Name, Path: ri.Path}
}
