package storetest

import (
	"bytes"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func normUser(u store.User) store.User { u.Created = utc(u.Created); return u }

func normUsers(us []store.User) []store.User {
	out := make([]store.User, len(us))
	for i, u := range us {
		out[i] = normUser(u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func normKey(k store.Key) store.Key {
	k.Added, k.Expires = utc(k.Added), utc(k.Expires)
	return k
}

func normKeys(ks []store.Key) []store.Key {
	out := make([]store.Key, len(ks))
	for i, k := range ks {
		out[i] = normKey(k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

func testUsers(t *testing.T, s store.Store, _ *Clock) {
	_, err := s.GetUser(bg, "alice")
	wantNotFound(t, err, "GetUser(missing)")
	wantNotFound(t, s.DeleteUser(bg, "alice"), "DeleteUser(missing)")
	wantErr(t, s.PutUser(bg, store.User{}), "PutUser(empty name)")

	alice := store.User{Name: "alice", DisplayName: "Alice", Groups: []string{"ops", "dev"}, Source: "local", Created: Epoch}
	al := store.User{Name: "al", Source: "oidc", Created: Epoch.Add(time.Second)}
	must(t, s.PutUser(bg, alice), "PutUser(alice)")
	must(t, s.PutUser(bg, al), "PutUser(al)")
	got, err := s.GetUser(bg, "alice")
	must(t, err, "GetUser(alice)")
	equal(t, "GetUser(alice)", normUser(got), alice)

	alice.DisplayName, alice.Groups = "Alice A.", []string{"ops"}
	must(t, s.PutUser(bg, alice), "PutUser(alice again)")
	got, err = s.GetUser(bg, "alice")
	must(t, err, "GetUser(alice)")
	equal(t, "GetUser after replace", normUser(got), alice)

	list, err := s.ListUsers(bg)
	must(t, err, "ListUsers")
	equal(t, "ListUsers", normUsers(list), []store.User{al, alice})

	must(t, s.DeleteUser(bg, "al"), "DeleteUser(al)")
	_, err = s.GetUser(bg, "al")
	wantNotFound(t, err, "GetUser(deleted)")
	got, err = s.GetUser(bg, "alice")
	must(t, err, "GetUser(alice) after deleting al")
	equal(t, "alice survives deleting al", normUser(got), alice)
}

func testKeys(t *testing.T, s store.Store, _ *Clock) {
	_, err := s.KeyByFingerprint(bg, "SHA256:nope")
	wantNotFound(t, err, "KeyByFingerprint(missing)")
	wantNotFound(t, s.DeleteKey(bg, "SHA256:nope"), "DeleteKey(missing)")
	wantErr(t, s.PutKey(bg, store.Key{User: "alice"}), "PutKey(empty fingerprint)")

	k1 := store.Key{Fingerprint: "SHA256:k1", User: "alice", Type: "ssh-ed25519", AuthorizedKey: "ssh-ed25519 AAAA1", Comment: "laptop", Source: "admin", Added: Epoch}
	// An expired key is still returned: the caller decides what expiry means.
	k2 := store.Key{Fingerprint: "SHA256:k2", User: "alice", Type: "ssh-ed25519", AuthorizedKey: "ssh-ed25519 AAAA2", Added: Epoch, Expires: Epoch.Add(-time.Hour)}
	k3 := store.Key{Fingerprint: "SHA256:k3", User: "bob", Type: "ssh-rsa", AuthorizedKey: "ssh-rsa AAAA3", Added: Epoch}
	for _, k := range []store.Key{k1, k2, k3} {
		must(t, s.PutKey(bg, k), "PutKey "+k.Fingerprint)
	}
	got, err := s.KeyByFingerprint(bg, "SHA256:k2")
	must(t, err, "KeyByFingerprint(expired key)")
	equal(t, "KeyByFingerprint(k2)", normKey(got), k2)

	ks, err := s.KeysOf(bg, "alice")
	must(t, err, "KeysOf(alice)")
	equal(t, "KeysOf(alice)", normKeys(ks), []store.Key{k1, k2})
	ks, err = s.KeysOf(bg, "nobody")
	must(t, err, "KeysOf(nobody)")
	equal(t, "KeysOf(nobody)", len(ks), 0)
	all, err := s.ListKeys(bg)
	must(t, err, "ListKeys")
	equal(t, "ListKeys", normKeys(all), []store.Key{k1, k2, k3})

	// Re-putting a fingerprint under another user moves it: it must no
	// longer authenticate as the old owner through KeysOf.
	k1.User, k1.Comment = "bob", "moved"
	must(t, s.PutKey(bg, k1), "PutKey(move k1 to bob)")
	ks, err = s.KeysOf(bg, "alice")
	must(t, err, "KeysOf(alice) after move")
	equal(t, "KeysOf(alice) after move", normKeys(ks), []store.Key{k2})
	ks, err = s.KeysOf(bg, "bob")
	must(t, err, "KeysOf(bob) after move")
	equal(t, "KeysOf(bob) after move", normKeys(ks), []store.Key{k1, k3})

	must(t, s.DeleteKey(bg, "SHA256:k3"), "DeleteKey(k3)")
	_, err = s.KeyByFingerprint(bg, "SHA256:k3")
	wantNotFound(t, err, "KeyByFingerprint(deleted)")
	ks, err = s.KeysOf(bg, "bob")
	must(t, err, "KeysOf(bob) after delete")
	equal(t, "KeysOf(bob) after delete", normKeys(ks), []store.Key{k1})

	// UpdateKey edits in place; it never brings back a deleted key (a
	// step-up written while an admin removes the key must not revive it).
	must(t, s.UpdateKey(bg, "SHA256:k1", func(k *store.Key) error { k.Comment = "edited"; return nil }), "UpdateKey(k1)")
	got, err = s.KeyByFingerprint(bg, "SHA256:k1")
	must(t, err, "KeyByFingerprint(k1) after UpdateKey")
	k1.Comment = "edited"
	equal(t, "UpdateKey(k1)", normKey(got), k1)
	wantNotFound(t, s.UpdateKey(bg, "SHA256:k3", func(k *store.Key) error { k.Comment = "revived"; return nil }), "UpdateKey(deleted k3)")
	_, err = s.KeyByFingerprint(bg, "SHA256:k3")
	wantNotFound(t, err, "KeyByFingerprint(k3) after UpdateKey of the deleted key")
	wantErr(t, s.UpdateKey(bg, "SHA256:k1", func(k *store.Key) error { k.User = "mallory"; return nil }), "UpdateKey(change user)")
	failed := errors.New("refused")
	if err := s.UpdateKey(bg, "SHA256:k1", func(k *store.Key) error { k.Comment = "half"; return failed }); !errors.Is(err, failed) {
		t.Fatalf("UpdateKey whose fn fails = %v; want fn's error", err)
	}
	got, err = s.KeyByFingerprint(bg, "SHA256:k1")
	must(t, err, "KeyByFingerprint(k1) after a failed UpdateKey")
	equal(t, "failed UpdateKey wrote nothing", normKey(got), k1)
}

func testDeleteUserCascade(t *testing.T, s store.Store, _ *Clock) {
	// "al" is a prefix of "alice": deleting al must not touch alice's keys.
	for _, u := range []string{"alice", "al", "bob"} {
		must(t, s.PutUser(bg, store.User{Name: u, Created: Epoch}), "PutUser "+u)
	}
	keys := map[string]string{"SHA256:a1": "alice", "SHA256:a2": "alice", "SHA256:l1": "al", "SHA256:b1": "bob"}
	for fp, u := range keys {
		must(t, s.PutKey(bg, store.Key{Fingerprint: fp, User: u, Type: "ssh-ed25519", Added: Epoch}), "PutKey "+fp)
	}
	ks, err := s.KeysOf(bg, "al")
	must(t, err, "KeysOf(al)")
	equal(t, "KeysOf(al) next to alice", normKeys(ks), []store.Key{{Fingerprint: "SHA256:l1", User: "al", Type: "ssh-ed25519", Added: Epoch}})
	must(t, s.DeleteUser(bg, "alice"), "DeleteUser(alice)")
	for fp, u := range keys {
		_, err := s.KeyByFingerprint(bg, fp)
		if u == "alice" {
			// A deleted user must not keep a key that still logs in.
			wantNotFound(t, err, "key of deleted user "+fp)
		} else {
			must(t, err, "key of other user "+fp)
		}
	}
	ks, err = s.KeysOf(bg, "alice")
	must(t, err, "KeysOf(deleted user)")
	equal(t, "KeysOf(deleted user)", len(ks), 0)
	all, err := s.ListKeys(bg)
	must(t, err, "ListKeys")
	equal(t, "keys left", len(all), 2)
	must(t, s.DeleteUser(bg, "al"), "DeleteUser(al)")
	all, err = s.ListKeys(bg)
	must(t, err, "ListKeys")
	equal(t, "keys left after al", len(all), 1)
	if len(all) == 1 && all[0].Fingerprint != "SHA256:b1" {
		t.Fatalf("remaining key %s, want SHA256:b1", all[0].Fingerprint)
	}
}

func testResources(t *testing.T, s store.Store, _ *Clock) {
	_, err := s.GetResource(bg, "web-1")
	wantNotFound(t, err, "GetResource(missing)")
	wantNotFound(t, s.DeleteResource(bg, "web-1"), "DeleteResource(missing)")
	wantErr(t, s.PutResource(bg, store.Resource{Kind: "ssh"}), "PutResource(empty name)")

	web := store.Resource{Name: "web-1", Kind: "ssh", Address: "10.0.0.1:22", Ports: []int{22}, Project: "p1",
		Labels: map[string]string{"env": "prod"}, Aliases: []string{"web"}, Login: "ubuntu",
		TTL: 30 * time.Minute, IdleTimeout: 15 * time.Minute}
	kube := store.Resource{Name: "prod", Kind: "kube", Address: "https://10.0.0.9:6443",
		Kube: &store.KubeSpec{Server: "https://10.0.0.9:6443", Context: "prod",
			Groups: map[string][]string{"act": {"system:masters"}}}}
	must(t, s.PutResource(bg, web), "PutResource(web-1)")
	must(t, s.PutResource(bg, kube), "PutResource(prod)")
	got, err := s.GetResource(bg, "prod")
	must(t, err, "GetResource(prod)")
	equal(t, "GetResource(prod)", got, kube)

	web.Ports = []int{22, 2222}
	must(t, s.PutResource(bg, web), "PutResource(web-1 again)")
	got, err = s.GetResource(bg, "web-1")
	must(t, err, "GetResource(web-1)")
	equal(t, "GetResource after replace", got, web)

	list, err := s.ListResources(bg)
	must(t, err, "ListResources")
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	equal(t, "ListResources", list, []store.Resource{kube, web})

	must(t, s.DeleteResource(bg, "web-1"), "DeleteResource(web-1)")
	_, err = s.GetResource(bg, "web-1")
	wantNotFound(t, err, "GetResource(deleted)")
	list, err = s.ListResources(bg)
	must(t, err, "ListResources")
	equal(t, "ListResources after delete", len(list), 1)
}

func normSession(x store.Session) store.Session {
	x.Opened, x.Expires, x.Closed = utc(x.Opened), utc(x.Expires), utc(x.Closed)
	return x
}

func testSessions(t *testing.T, s store.Store, _ *Clock) {
	_, err := s.GetSession(bg, "s1")
	wantNotFound(t, err, "GetSession(missing)")
	wantErr(t, s.PutSession(bg, store.Session{User: "alice"}), "PutSession(empty id)")

	s1 := store.Session{ID: "s1", User: "alice", Resource: "web-1", Kind: "forward", Target: "10.0.0.1:22",
		Source: "192.0.2.1:5000", Opened: Epoch, Expires: Epoch.Add(30 * time.Minute),
		IdleTimeout: 15 * time.Minute, State: "open", Replica: "bastion-1-a1b2c3"}
	s2 := store.Session{ID: "s2", User: "bob", Resource: "prod", Kind: "kube", Opened: Epoch, Expires: Epoch.Add(time.Hour), State: "open"}
	must(t, s.PutSession(bg, s1), "PutSession(s1)")
	must(t, s.PutSession(bg, s2), "PutSession(s2)")

	s1.BytesIn, s1.BytesOut, s1.State, s1.Closed, s1.Reason = 100, 2000, "revoked", Epoch.Add(time.Minute), "admin"
	must(t, s.PutSession(bg, s1), "PutSession(s1 update)")
	got, err := s.GetSession(bg, "s1")
	must(t, err, "GetSession(s1)")
	equal(t, "GetSession(s1)", normSession(got), s1)

	list, err := s.ListSessions(bg)
	must(t, err, "ListSessions")
	for i := range list {
		list[i] = normSession(list[i])
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	equal(t, "ListSessions", list, []store.Session{s1, s2})
}

func testSecrets(t *testing.T, s store.Store, _ *Clock) {
	_, err := s.GetSecret(bg, "host_key")
	wantNotFound(t, err, "GetSecret(missing)")
	wantErr(t, s.PutSecret(bg, "", []byte("x")), "PutSecret(empty name)")

	val := []byte("-----BEGIN OPENSSH PRIVATE KEY-----\x00\xff")
	must(t, s.PutSecret(bg, "host_key", val), "PutSecret")
	val[0] = 'X' // the store must have kept its own copy
	got, err := s.GetSecret(bg, "host_key")
	must(t, err, "GetSecret")
	if !bytes.Equal(got, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\x00\xff")) {
		t.Fatalf("GetSecret = %q", got)
	}
	got[1] = 'Y' // nor may a caller alter it through the returned slice
	got, err = s.GetSecret(bg, "host_key")
	must(t, err, "GetSecret again")
	if !bytes.Equal(got, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\x00\xff")) {
		t.Fatalf("GetSecret after altering a returned copy = %q", got)
	}
	must(t, s.PutSecret(bg, "user_ca", []byte("ca")), "PutSecret(user_ca)")
	must(t, s.PutSecret(bg, "host_key", []byte("v2")), "PutSecret(replace)")
	got, err = s.GetSecret(bg, "host_key")
	must(t, err, "GetSecret after replace")
	equal(t, "GetSecret after replace", string(got), "v2")
	got, err = s.GetSecret(bg, "user_ca")
	must(t, err, "GetSecret(user_ca)")
	equal(t, "GetSecret(user_ca)", string(got), "ca")
}
