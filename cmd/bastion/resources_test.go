package main

import (
	"context"
	"strings"
	"testing"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/store"
	"github.com/sshbastion/bastion/store/badger"
)

func TestResourcePolicyConfig(t *testing.T) {
	c, err := parseConfig([]byte("resource_policy:\n  logins: [deploy]\n  allow_cidrs: [127.0.0.0/8]\n" +
		"kube:\n  credentials:\n    prod: /etc/bastion/prod.kubeconfig\n    stage: {kubeconfig: /k, context: stage}\n    here: {in_cluster: true}\n" +
		"resources:\n  - {name: k, kind: kube, address: https://api:6443, kube: {credentials: prod}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kube.Credentials["prod"].Kubeconfig != "/etc/bastion/prod.kubeconfig" || c.Kube.Credentials["stage"].Context != "stage" ||
		!c.Kube.Credentials["here"].InCluster {
		t.Fatalf("credentials = %+v", c.Kube.Credentials)
	}
	_, names := kubeCredentials(c)
	if strings.Join(names, ",") != "here,prod,stage" {
		t.Fatalf("names = %v", names)
	}
	for src, want := range map[string]string{
		"resource_policy:\n  logins: [root]\n":                                                                           "root",
		"resource_policy:\n  allow_cidrs: [127.0.0.1]\n":                                                                 "allow_cidrs",
		"kube:\n  credentials:\n    x: {kubeconfig: /k, in_cluster: true}\n":                                             "exactly one",
		"kube:\n  credentials:\n    x: {context: c}\n":                                                                   "exactly one",
		"kube:\n  credentials:\n    x: {kubeconfg: /k}\n":                                                                "unknown field",
		"resources:\n  - {name: k, kind: kube, address: a, kube: {credentials: nope}}\n":                                 "nope",
		"resources:\n  - {name: a, kind: tcp, address: 'h:1', aliases: [b]}\n  - {name: b, kind: tcp, address: 'h:2'}\n": "also a's",
		"resources:\n  - {name: a, kind: tcp, address: 'h:1', origin: config}\n":                                         "origin",
	} {
		if _, err := parseConfig([]byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseConfig(%q) = %v, want an error naming %q", src, err, want)
		}
	}
}

// TestConfigUpsertReconcilesProjects: a stray project tuple (left by a
// bastion that let `resources add` write a second one) is removed at
// start, so exactly the config's project remains; an ssh-made alias that
// shadows a config name is dropped; config Resources are marked trusted.
func TestConfigUpsertReconcilesProjects(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open("", badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	alog, err := audit.New(st, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	if err := st.WriteTuples(ctx, []store.Tuple{
		{Object: "resource:web-1", Relation: "project", Subject: "project:payments"},
		{Object: "resource:web-1", Relation: "project", Subject: "project:sandbox"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.PutResource(ctx, store.Resource{Name: "evil", Kind: "tcp", Address: "10.0.0.1:1", Aliases: []string{"www", "ok"}, Origin: store.OriginSSH}); err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.Resources = []store.Resource{{Name: "web-1", Kind: "ssh", Address: "127.0.0.1:22", Project: "payments", Aliases: []string{"www"}}}
	for i := 0; i < 2; i++ { // idempotent
		if err := bootstrapPolicy(ctx, st, alog, cfg); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := st.TuplesByObject(ctx, "resource:web-1", "project")
	if err != nil || len(ts) != 1 || ts[0].Subject != "project:payments" {
		t.Fatalf("project tuples after the upsert: %v %v", ts, err)
	}
	r, err := st.GetResource(ctx, "web-1")
	if err != nil || !r.FromConfig() {
		t.Fatalf("config Resource: %+v %v", r, err)
	}
	e, err := st.GetResource(ctx, "evil")
	if err != nil || strings.Join(e.Aliases, ",") != "ok" {
		t.Fatalf("shadowing alias kept: %+v %v", e, err)
	}
}
