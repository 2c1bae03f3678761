package storetest

import (
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

// testKubeTokens: records by hash, replaced by a put, gone after a delete
// (a missing one is no error), each write a change of KindKubeToken.
func testKubeTokens(t *testing.T, s store.Store, _ *Clock) {
	h := store.TokenHash("sbk_test-token")
	if h == store.TokenHash("sbk_other") || len(h) != 64 {
		t.Fatalf("TokenHash = %q", h)
	}
	_, err := s.KubeToken(bg, h)
	wantNotFound(t, err, "KubeToken(missing)")
	wantErr(t, s.PutKubeToken(bg, store.KubeToken{User: "alice"}), "PutKubeToken(empty hash)")

	ch := watch(t, s, rev(t, s))
	tok := store.KubeToken{Hash: h, User: "alice", Groups: []string{"ops"}, Resource: "prod", Session: "s-1", Created: Epoch, Expires: Epoch.Add(30 * time.Minute)}
	must(t, s.PutKubeToken(bg, tok), "PutKubeToken")
	got, err := s.KubeToken(bg, h)
	must(t, err, "KubeToken")
	equal(t, "KubeToken", normToken(got), tok)
	tok.Used = Epoch.Add(time.Minute)
	must(t, s.PutKubeToken(bg, tok), "PutKubeToken(used)")
	got, err = s.KubeToken(bg, h)
	must(t, err, "KubeToken after update")
	equal(t, "KubeToken after update", normToken(got), tok)
	must(t, s.DeleteKubeToken(bg, h), "DeleteKubeToken")
	_, err = s.KubeToken(bg, h)
	wantNotFound(t, err, "KubeToken after delete")
	expectChanges(t, ch, "kube tokens", "kubetoken "+h, "kubetoken "+h, "kubetoken "+h+" deleted")
	must(t, s.DeleteKubeToken(bg, h), "DeleteKubeToken(missing)")
}

func normToken(x store.KubeToken) store.KubeToken {
	x.Created, x.Expires, x.Used = utc(x.Created), utc(x.Expires), utc(x.Used)
	return x
}
