package storetest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

func testModels(t *testing.T, s store.Store, _ *Clock) {
	if _, ok, err := s.LatestModel(bg); err != nil || ok {
		t.Fatalf("LatestModel on an empty store: ok %v, err %v", ok, err)
	}
	if vs, err := s.ModelVersions(bg); err != nil || len(vs) != 0 {
		t.Fatalf("ModelVersions on an empty store: %v, %v", vs, err)
	}
	_, err := s.ModelVersion(bg, 1)
	wantNotFound(t, err, "ModelVersion(1) on an empty store")

	mk := func(i int, action string) store.ModelVersion {
		src := fmt.Sprintf("model\n  schema 1.1\n\ntype user%d\n", i)
		return store.ModelVersion{Version: 99, Time: Epoch.Add(time.Duration(i) * time.Minute), Actor: "alice",
			Action: action, SHA256: fmt.Sprintf("hash-%d", i), Size: len(src), Source: src}
	}
	var stored []store.ModelVersion
	for i, action := range []string{"initial", "load", "rollback"} {
		m := mk(i, action)
		if action == "rollback" {
			m.From = 1
		}
		got, err := s.AppendModel(bg, m)
		must(t, err, "AppendModel")
		if got.Version != uint64(i+1) {
			t.Fatalf("AppendModel %d got version %d: the store assigns versions from 1", i, got.Version)
		}
		m.Version = got.Version
		equal(t, "AppendModel result", normModel(got), normModel(m))
		stored = append(stored, m)
	}
	got, err := s.ModelVersion(bg, 2)
	must(t, err, "ModelVersion(2)")
	equal(t, "ModelVersion(2)", normModel(got), normModel(stored[1]))
	latest, ok, err := s.LatestModel(bg)
	must(t, err, "LatestModel")
	if !ok {
		t.Fatal("LatestModel: none after three appends")
	}
	equal(t, "LatestModel", normModel(latest), normModel(stored[2]))
	all, err := s.ModelVersions(bg)
	must(t, err, "ModelVersions")
	if len(all) != 3 {
		t.Fatalf("ModelVersions: %d versions, want 3", len(all))
	}
	for i := range all {
		equal(t, "ModelVersions", normModel(all[i]), normModel(stored[i]))
	}
	_, err = s.ModelVersion(bg, 4)
	wantNotFound(t, err, "ModelVersion(4)")

	// Concurrent appends never share a version number.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var vs []uint64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m, err := s.AppendModel(bg, mk(10+i, "load"))
			if err != nil {
				t.Errorf("concurrent AppendModel: %v", err)
				return
			}
			mu.Lock()
			vs = append(vs, m.Version)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	for i, v := range vs {
		if v != uint64(4+i) {
			t.Fatalf("concurrent appends got versions %v, want 4..11 once each", vs)
		}
	}
}

func normModel(m store.ModelVersion) store.ModelVersion {
	m.Time = utc(m.Time)
	return m
}
