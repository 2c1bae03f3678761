package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// adminPolicy grants admin on the domain to the users in admins only.
type adminPolicy struct{ admins map[string]bool }

func (p adminPolicy) Check(_ context.Context, subject, relation, object string) (bool, error) {
	return relation == "admin" && object == "domain:default" && p.admins[subject], nil
}
func (adminPolicy) Explain(context.Context, string, string, string) (policy.Explanation, error) {
	return policy.Explanation{}, nil
}
func (adminPolicy) ListObjects(context.Context, string, string, string) ([]string, error) {
	return nil, nil
}
func (adminPolicy) Model() *policy.Model     { return nil }
func (adminPolicy) SetModel(m *policy.Model) {}

// memAudit records appended events.
type memAudit struct{ events []store.Event }

func (a *memAudit) Append(_ context.Context, e store.Event) (store.Event, error) {
	a.events = append(a.events, e)
	return e, nil
}
func (a *memAudit) Query(context.Context, store.EventFilter) ([]store.Event, error) {
	return a.events, nil
}
func (a *memAudit) Verify(context.Context) (audit.Report, error) { return audit.Report{OK: true}, nil }

// memRevocations is an in-memory CertRevocations.
type memRevocations struct{ rs []store.CertRevocation }

func (m *memRevocations) RevokeCert(_ context.Context, r store.CertRevocation) error {
	m.rs = append(m.rs, r)
	return nil
}
func (m *memRevocations) ListCertRevocations(context.Context) ([]store.CertRevocation, error) {
	return m.rs, nil
}

// runCmd runs one command the way Module.run does, as user, and returns
// its output and error.
func runCmd(t *testing.T, build func(*env) *cobra.Command, d Deps, user string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{ctx: context.Background(), p: authn.Principal{User: user}, deps: d, in: strings.NewReader(""), out: &out, errOut: &errOut}
	cmd := build(e)
	cmd.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format")
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), err
}

func TestCerts(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	revs, log := &memRevocations{}, &memAudit{}
	d := Deps{Policy: adminPolicy{admins: map[string]bool{"user:root": true}}, Audit: log, CertRevocations: revs,
		Domain: "default", Host: "ssh bastion", Clock: func() time.Time { return at }}

	// Not an admin: refused, and the refusal is audited.
	if _, err := runCmd(t, newCerts, d, "bob", "revoke", "42", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("non-admin revoke: %v", err)
	}
	if _, err := runCmd(t, newCerts, d, "bob", "revoked"); err == nil {
		t.Fatal("non-admin list accepted")
	}
	if len(revs.rs) != 0 || len(log.events) != 2 || log.events[0].Action != "command.deny" {
		t.Fatalf("after refusals: revocations %v, events %+v", revs.rs, log.events)
	}
	log.events = nil

	for _, bad := range [][]string{
		{"revoke", "42"},                                    // no reason
		{"revoke", "42", "--reason", "  "},                  // blank reason
		{"revoke", "42", "--reason", "a\nb"},                // two lines
		{"revoke", "0", "--reason", "x"},                    // the default serial
		{"revoke", "-1", "--reason", "x"},                   // not a serial
		{"revoke", "0x2a", "--reason", "x"},                 // not decimal
		{"revoke", "18446744073709551616", "--reason", "x"}, // overflows uint64
	} {
		if _, err := runCmd(t, newCerts, d, "root", bad...); err == nil {
			t.Errorf("certs %s accepted", strings.Join(bad, " "))
		}
	}
	if len(revs.rs) != 0 || len(log.events) != 0 {
		t.Fatalf("bad input stored something: %v %v", revs.rs, log.events)
	}

	out, err := runCmd(t, newCerts, d, "root", "revoke", "42", "--reason", "lost laptop")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "revoked certificate serial 42: lost laptop") {
		t.Fatalf("revoke output %q", out)
	}
	want := store.CertRevocation{Serial: 42, Reason: "lost laptop", By: "root", At: at}
	if len(revs.rs) != 1 || revs.rs[0] != want {
		t.Fatalf("stored %+v, want %+v", revs.rs, want)
	}
	if len(log.events) != 1 {
		t.Fatalf("events %+v", log.events)
	}
	ev := log.events[0]
	if ev.Action != "cert.revoke" || ev.Actor != "root" || ev.Details["serial"] != "42" || ev.Details["reason"] != "lost laptop" {
		t.Fatalf("audit event %+v", ev)
	}

	out, err = runCmd(t, newCerts, d, "root", "revoked")
	if err != nil || !strings.Contains(out, "SERIAL") || !strings.Contains(out, "lost laptop") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = runCmd(t, newCerts, d, "root", "revoked", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got []store.CertRevocation
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("json list: %v %+v\n%s", err, got, out)
	}

	// An empty list is [] in JSON, not null.
	d.CertRevocations = &memRevocations{}
	out, err = runCmd(t, newCerts, d, "root", "revoked", "-o", "json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty json list: %v %q", err, out)
	}

	// Not wired: a clear error, not a panic.
	d.CertRevocations = nil
	if _, err := runCmd(t, newCerts, d, "root", "revoked"); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("unwired: %v", err)
	}
}
