package commands

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sshbastion/bastion/store"
)

// A failed login's name is chosen by whoever connects; audit shows it to
// admins.
const hostileLogin = "x\x1b]0;pwned\x07\x1b[2J\r\nforged row\u009b\u202e\x7f"

func TestAuditTableEscapesWhatOthersWrote(t *testing.T) {
	log := &memAudit{events: []store.Event{{Seq: 1, Time: time.Unix(0, 0), Actor: hostileLogin, Action: "auth.fail",
		Decision: "deny", Reason: "no\tkey", Details: map[string]string{"login": hostileLogin}}}}
	d := Deps{Policy: adminPolicy{admins: map[string]bool{"user:root": true}}, Audit: log, Domain: "default"}
	out, err := runCmd(t, newAudit, d, "root")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\x1b", "\x07", "\r", "\x7f", "\u009b", "\u202e"} {
		if strings.Contains(out, bad) {
			t.Fatalf("audit table has a raw %q:\n%q", bad, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Fatalf("a line break in a cell forged a row: %d lines\n%s", n, out)
	}
	if !strings.Contains(out, `x\x1b]0;pwned\x07\x1b[2J\r\nforged row\u009b\u202e\x7f`) || !strings.Contains(out, `no\tkey`) {
		t.Fatalf("the hostile text is not shown escaped:\n%s", out)
	}

	out, err = runCmd(t, newAudit, d, "root", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\x1b", "\x7f", "\u009b", "\u202e"} {
		if strings.Contains(out, bad) {
			t.Fatalf("audit -o json has a raw %q:\n%q", bad, out)
		}
	}
	var evs []store.Event
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != hostileLogin || evs[0].Details["login"] != hostileLogin {
		t.Fatalf("-o json does not round-trip the exact name: %+v", evs)
	}
}

func TestUnknownOutputFormatIsQuotedSafely(t *testing.T) {
	d := Deps{Policy: adminPolicy{admins: map[string]bool{"user:root": true}}, Audit: &memAudit{}, Domain: "default"}
	_, err := runCmd(t, newAudit, d, "root", "-o", "x\x1b[2J")
	if err == nil || strings.Contains(err.Error(), "\x1b") {
		t.Fatalf("error %q", err)
	}
}
