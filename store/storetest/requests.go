package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func testAccessRequests(t *testing.T, s store.Store, _ *Clock) {
	if _, err := s.GetAccessRequest(bg, "r-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAccessRequest on an empty store: %v", err)
	}
	a := store.AccessRequest{ID: "r-0002", User: "alice", Resources: []string{"web-1", "db"}, Reason: "INC-7",
		TTL: time.Hour, State: "pending", Created: Epoch}
	b := store.AccessRequest{ID: "r-0001", User: "bob", Resources: []string{"web-1"}, State: "pending", Created: Epoch}
	must(t, s.PutAccessRequest(bg, a), "PutAccessRequest a")
	must(t, s.PutAccessRequest(bg, b), "PutAccessRequest b")
	a.State, a.Reviewer, a.Reviewed, a.Expires = "approved", "carol", Epoch.Add(time.Minute), Epoch.Add(time.Hour)
	must(t, s.PutAccessRequest(bg, a), "PutAccessRequest a again")
	got, err := s.GetAccessRequest(bg, "r-0002")
	must(t, err, "GetAccessRequest")
	if got.State != "approved" || got.Reviewer != "carol" || len(got.Resources) != 2 || !got.Expires.Equal(a.Expires) {
		t.Fatalf("GetAccessRequest: %+v", got)
	}
	all, err := s.ListAccessRequests(bg)
	must(t, err, "ListAccessRequests")
	if len(all) != 2 || all[0].ID != "r-0001" || all[1].ID != "r-0002" {
		t.Fatalf("ListAccessRequests: %+v", all)
	}
	if err := s.PutAccessRequest(bg, store.AccessRequest{ID: "bad\x00id"}); err == nil {
		t.Fatal("an id with a separator was stored")
	}
}
