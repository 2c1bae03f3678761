package e2e

import (
	"context"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sshbastion/bastion/e2e/harness"
)

// TestBoundaryKubeGroupsFollowPolicyPerRequest: the groups the bastion
// impersonates are those of the policy at the time of each request. bob's
// admin relation maps to bastion:prod-admins; once the relation is removed,
// a kept-alive connection (the same TCP connection through the same ssh
// channel) must stop sending that group, exactly like a new kubectl.
func TestBoundaryKubeGroupsFollowPolicyPerRequest(t *testing.T) {
	e := kubeSetup(t)
	// Map the admin relation too; the Resource sits in project default.
	mustOK(t, e.b.SSH(e.alice, "resources", "add", "prod", "--kind", "kube", "--address", e.k.URL,
		"--credentials", "prod",
		"--kube-group", "act=bastion:prod-users", "--kube-group", "admin=bastion:prod-admins"), "resources add prod")
	mustOK(t, e.b.SSH(e.alice, "tuples", "add", "project:default#admin@user:bob"), "make bob project admin")

	kc, _ := e.tunnel(t, e.bob, "prod")
	out, err := e.k.Kubectl(t, kc, "auth", "whoami")
	if err != nil || !harness.Contains(out, "bob", "bastion:prod-users", "bastion:prod-admins") {
		t.Fatalf("kubectl auth whoami as project admin: %v\n%s", err, out)
	}

	// One client-go client, one kept-alive connection.
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var reused atomic.Int32
	whoami := func() []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused.Add(1)
			}
		}})
		r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("whoami over the kept-alive connection: %v", err)
		}
		return r.Status.UserInfo.Groups
	}
	if g := whoami(); !slices.Contains(g, "bastion:prod-admins") {
		t.Fatalf("before the change, groups %v lack bastion:prod-admins", g)
	}
	before := reused.Load()
	mustOK(t, e.b.SSH(e.alice, "tuples", "rm", "project:default#admin@user:bob"), "remove bob's project admin")
	g := whoami()
	if reused.Load() == before {
		t.Fatalf("the second request did not reuse the connection; the test proves nothing")
	}
	if slices.Contains(g, "bastion:prod-admins") {
		t.Fatalf("after tuples rm, the kept-alive connection still impersonates bastion:prod-admins: %v", g)
	}
	if !slices.Contains(g, "bastion:prod-users") {
		t.Fatalf("act still holds, but its group is gone: %v", g)
	}
	// And a new kubectl agrees.
	out, err = e.k.Kubectl(t, kc, "auth", "whoami")
	if err != nil || strings.Contains(out, "bastion:prod-admins") || !strings.Contains(out, "bastion:prod-users") {
		t.Fatalf("kubectl auth whoami after the change: %v\n%s", err, out)
	}
}
