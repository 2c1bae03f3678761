package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/e2e/harness"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// conditionsModel is the default model whose Resource act also takes
// conditional grants: from a network (office) and within a time window
// (shift). The same file loads into an OpenFGA server.
func conditionsModel(t *testing.T) string {
	t.Helper()
	const act = "define act: [user, group#member] or admin or act from project"
	if !strings.Contains(policy.DefaultModel, act) {
		t.Fatalf("the default model has no %q", act)
	}
	return strings.Replace(policy.DefaultModel, act,
		"define act: [user, group#member, user with office, user with shift] or admin or act from project", 1) + `
condition office(source_ip: ipaddress, cidr: string) {
  source_ip.in_cidr(cidr)
}

condition shift(current_time: timestamp, start: timestamp, end: timestamp) {
  current_time >= start && current_time < end
}
`
}

// conditionsSetup starts a bastion with bob, the condition model and the
// echo Resource echo-svc.
func conditionsSetup(t *testing.T) (*harness.Bastion, harness.Key, harness.Key) {
	t.Helper()
	b, alice, bob := withBob(t)
	r := b.SSHRun(harness.Run{Key: &alice, Args: []string{"model", "load"}, Stdin: conditionsModel(t)})
	mustOK(t, r, "model load with conditions")
	echoResource(t, b, alice)
	// view comes with act in the default model, so a conditional act is a
	// conditional view too; an unconditional view lets bob see echo-svc,
	// and be told why a forward is refused, when the condition fails
	// (without view it reads as a name that is no Resource).
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#view@user:bob"), "grant view")
	return b, alice, bob
}

// A grant from 127.0.0.1/32 lets bob's forward through from 127.0.0.1 and
// refuses it from 127.0.0.2, naming the condition and the address.
func TestConditionCIDRGrantDecidesByNetwork(t *testing.T) {
	b, alice, bob := conditionsSetup(t)
	// Typed as a user types it: ssh joins the words, the JSON intact.
	r := b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob", "--condition", "office", "--context", `{"cidr":"127.0.0.1/32"}`)
	mustOK(t, r, "tuples add with a condition")
	if !strings.Contains(r.Stdout, `added resource:echo-svc#act@user:bob with office {"cidr":"127.0.0.1/32"}`) {
		t.Fatalf("tuples add says: %s", r.Stdout)
	}
	// tuples list shows condition and context, in text and JSON.
	r = b.SSH(alice, "tuples", "list", "--object", "resource:echo-svc")
	mustOK(t, r, "tuples list")
	if !harness.Contains(r.Stdout, "CONDITION", `office {"cidr":"127.0.0.1/32"}`) {
		t.Fatalf("tuples list:\n%s", r.Stdout)
	}
	r = b.SSH(alice, "tuples", "list", "--object", "resource:echo-svc", "-o", "json")
	mustOK(t, r, "tuples list -o json")
	var ts []store.Tuple
	if err := json.Unmarshal([]byte(r.Stdout), &ts); err != nil {
		t.Fatalf("tuples list -o json: %v\n%s", err, r.Stdout)
	}
	found := false
	for _, tp := range ts {
		found = found || (tp.Subject == "user:bob" && tp.Condition == "office" && tp.Context["cidr"] == "127.0.0.1/32")
	}
	if !found {
		t.Fatalf("tuples list -o json lacks the conditional grant:\n%s", r.Stdout)
	}

	// From 127.0.0.1: the forward works.
	f := b.StartForward(bob, "echo-svc:7")
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	harness.Echo(t, c, []byte("from the office"))
	c.Close()

	// From 127.0.0.2 (the bastion listens on 127.0.0.1, which any
	// loopback address reaches): refused, and the refusal says why.
	r = b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-b", "127.0.0.2", "-W", "echo-svc:7"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !harness.Contains(r.Stderr, "administratively prohibited", "user:bob lacks act on resource:echo-svc",
		"condition office of resource:echo-svc#act@user:bob is not met", "source_ip=127.0.0.2") {
		t.Fatalf("forward from 127.0.0.2: exit %d stderr %q", r.Code, r.Stderr)
	}
	var denied bool
	for _, e := range auditEvents(t, b, alice, "--action", "forward.deny") {
		denied = denied || (e.Actor == "bob" && strings.HasPrefix(e.Details["source"], "127.0.0.2:") &&
			strings.Contains(e.Reason, "condition office") && strings.Contains(e.Reason, "source_ip=127.0.0.2"))
	}
	if !denied {
		t.Fatal("no forward.deny event naming the condition and 127.0.0.2")
	}
}

// A grant for a window a few seconds long opens a forward inside the
// window, and the session sweeper cuts it when the window closes.
func TestConditionTimeWindowCutsForward(t *testing.T) {
	b, alice, bob := conditionsSetup(t)
	end := time.Now().Add(8 * time.Second).UTC().Truncate(time.Second)
	window := fmt.Sprintf(`{"start":"%s","end":"%s"}`, time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), end.Format(time.RFC3339))
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob", "--condition", "shift", "--context", window), "grant for a window")

	f := b.StartForward(bob, "echo-svc:7")
	c, err := net.Dial("tcp", f.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	harness.Echo(t, c, []byte("on shift"))
	closed := harness.WaitClosed(t, c, time.Until(end)+60*time.Second)
	if closed.Before(end) {
		t.Fatalf("the forward was cut at %s, before its window ended at %s", closed.Format(time.RFC3339Nano), end)
	}
	waitFor(t, 20*time.Second, "forward.close for the ended window", func() bool {
		for _, e := range auditEvents(t, b, alice, "--action", "forward.close") {
			if e.Actor == "bob" && e.Reason == "policy change" {
				return true
			}
		}
		return false
	})
	// A new forward after the window is refused, naming the condition.
	r := b.SSHRun(harness.Run{Key: &bob, Flags: []string{"-W", "echo-svc:7"}, Options: []string{"LogLevel=INFO"}})
	if r.Code == 0 || !harness.Contains(r.Stderr, "administratively prohibited", "condition shift", "is not met", "current_time=") {
		t.Fatalf("forward after the window: exit %d stderr %q", r.Code, r.Stderr)
	}
}

// check --context and --contextual, and list --contextual, answer "what
// if" questions without writing anything.
func TestConditionWhatIfQuestions(t *testing.T) {
	b, alice, _ := conditionsSetup(t)
	addUser(t, b, alice, "carol")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@user:bob", "--condition", "office", "--context", `{"cidr":"127.0.0.1/32"}`), "office grant")
	mustOK(t, b.SSH(alice, "tuples", "add", "resource:echo-svc#act@group:oncall#member"), "oncall grant")

	r := b.SSH(alice, "check", "user:bob", "act", "resource:echo-svc", "--context", `{"source_ip":"10.1.2.3"}`, "--explain")
	if r.Code != 1 || !harness.Contains(r.Stdout, "denied: user:bob act resource:echo-svc",
		"condition office of resource:echo-svc#act@user:bob is not met", `cidr="127.0.0.1/32"`, "source_ip=10.1.2.3") {
		t.Fatalf("check from 10.1.2.3: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = b.SSH(alice, "check", "user:bob", "act", "resource:echo-svc", "--context", `{"source_ip":"127.0.0.1"}`, "--explain")
	if r.Code != 0 || !harness.Contains(r.Stdout, "allowed", "resource:echo-svc#act@user:bob (with office:", "source_ip=127.0.0.1") {
		t.Fatalf("check from 127.0.0.1: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = b.SSH(alice, "check", "user:bob", "act", "resource:echo-svc", "--context", `{"source_ip":"10.1.2.3"}`, "-o", "json")
	var x policy.Explanation
	if err := json.Unmarshal([]byte(r.Stdout), &x); err != nil || x.Allowed || len(x.Conditions) != 1 ||
		x.Conditions[0].Condition != "office" || x.Conditions[0].Met {
		t.Fatalf("check -o json: %v\n%s", err, r.Stdout)
	}

	// Would carol reach it if she were on call?
	if r := b.SSH(alice, "check", "user:carol", "act", "resource:echo-svc"); r.Code != 1 {
		t.Fatalf("carol reaches echo-svc without being on call: %d %s", r.Code, r.Stdout)
	}
	r = b.SSH(alice, "check", "user:carol", "act", "resource:echo-svc", "--contextual", "group:oncall#member@user:carol", "--explain")
	if r.Code != 0 || !harness.Contains(r.Stdout, "allowed", "resource:echo-svc#act@group:oncall#member", "group:oncall#member@user:carol") {
		t.Fatalf("check --contextual: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = b.SSH(alice, "list", "user:carol", "act", "resource", "--contextual", "group:oncall#member@user:carol")
	if r.Code != 0 || !strings.Contains(r.Stdout, "resource:echo-svc") {
		t.Fatalf("list --contextual: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = b.SSH(alice, "list", "user:carol", "act", "resource")
	if r.Code != 0 || strings.Contains(r.Stdout, "resource:echo-svc") {
		t.Fatalf("list without the contextual tuple: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// Nothing was written: carol is in no group.
	r = b.SSH(alice, "tuples", "list", "--subject", "user:carol")
	if r.Code != 0 || strings.Contains(r.Stdout, "oncall") {
		t.Fatalf("a contextual tuple was written: %s", r.Stdout)
	}
	// A malformed contextual tuple is an error, not a "no".
	r = b.SSH(alice, "check", "user:carol", "act", "resource:echo-svc", "--contextual", "group:oncall#member@usr:carol")
	if r.Code != 2 || !strings.Contains(r.Stderr, `subject type "usr" is not in the model`) {
		t.Fatalf("bad contextual tuple: exit %d %s", r.Code, r.Stderr)
	}
}
