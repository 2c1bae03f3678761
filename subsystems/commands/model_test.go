package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// modelPolicy is adminPolicy with a model in force.
type modelPolicy struct {
	adminPolicy
	m **policy.Model
}

func (p modelPolicy) Model() *policy.Model     { return *p.m }
func (p modelPolicy) SetModel(m *policy.Model) { *p.m = m }

// memModels is an in-memory store.Models.
type memModels struct{ vs []store.ModelVersion }

func (s *memModels) AppendModel(_ context.Context, m store.ModelVersion) (store.ModelVersion, error) {
	m.Version = uint64(len(s.vs) + 1)
	s.vs = append(s.vs, m)
	return m, nil
}
func (s *memModels) ModelVersion(_ context.Context, v uint64) (store.ModelVersion, error) {
	if v == 0 || v > uint64(len(s.vs)) {
		return store.ModelVersion{}, store.ErrNotFound
	}
	return s.vs[v-1], nil
}
func (s *memModels) ModelVersions(context.Context) ([]store.ModelVersion, error) { return s.vs, nil }
func (s *memModels) LatestModel(context.Context) (store.ModelVersion, bool, error) {
	if len(s.vs) == 0 {
		return store.ModelVersion{}, false, nil
	}
	return s.vs[len(s.vs)-1], true, nil
}

func TestModelLoadHistoryRollback(t *testing.T) {
	def, err := policy.LoadDefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	cur := def
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	models := &memModels{}
	if _, err := models.AppendModel(context.Background(), store.NewModelVersion(policy.DefaultModel, "bastion", "initial", 0, at)); err != nil {
		t.Fatal(err)
	}
	log := &memAudit{}
	d := Deps{Policy: modelPolicy{adminPolicy{admins: map[string]bool{"user:root": true}}, &cur}, Audit: log, Models: models,
		Domain: "default", Host: "ssh bastion", Clock: func() time.Time { return at }}
	load := func(user, src string) (string, error) {
		t.Helper()
		e := func(en *env) { en.in = strings.NewReader(src) }
		return runCmdWith(t, newModel, d, user, e, "load")
	}

	// A model that parses but lacks what the bastion relies on.
	_, err = load("root", "model\n  schema 1.1\ntype user\n")
	if err == nil || !strings.Contains(err.Error(), "domain#admin") || !strings.Contains(err.Error(), "resource#act") {
		t.Fatalf("lockout model: %v", err)
	}
	if cur != def || len(models.vs) != 1 {
		t.Fatal("the refused model was stored or put in force")
	}
	if _, err := load("bob", policy.DefaultModel); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("non-admin load: %v", err)
	}

	changed := strings.Replace(policy.DefaultModel, "type user\n", "type user\n\ntype team\n  relations\n    define member: [user]\n", 1)
	out, err := load("root", changed)
	if err != nil || !strings.Contains(out, "version 2") {
		t.Fatalf("load: %q %v", out, err)
	}
	if !cur.HasRelation("team", "member") {
		t.Fatal("the loaded model is not in force")
	}

	out, err = runCmd(t, newModel, d, "root", "history")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "initial") || !strings.Contains(lines[2], "root") ||
		!strings.Contains(lines[2], "load") || !strings.HasSuffix(lines[2], "*") {
		t.Fatalf("history:\n%s", out)
	}
	out, err = runCmd(t, newModel, d, "root", "history", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []store.ModelVersion
	if err := json.Unmarshal([]byte(out), &vs); err != nil || len(vs) != 2 || vs[1].SHA256 != sourceHash(changed) ||
		vs[1].Size != len(changed) || vs[1].Source != "" {
		t.Fatalf("history -o json: %v\n%s", err, out)
	}

	if _, err := runCmd(t, newModel, d, "root", "rollback", "7"); err == nil || !strings.Contains(err.Error(), "no model version 7") {
		t.Fatalf("rollback to a missing version: %v", err)
	}
	out, err = runCmd(t, newModel, d, "root", "rollback", "1")
	if err != nil || !strings.Contains(out, "version 1 is in force again, as version 3") {
		t.Fatalf("rollback: %q %v", out, err)
	}
	if cur.HasRelation("team", "member") || len(models.vs) != 3 || models.vs[2].From != 1 || models.vs[2].Action != "rollback" {
		t.Fatalf("rollback did not restore version 1: %+v", models.vs[2])
	}
	var actions []string
	for _, ev := range log.events {
		if strings.HasPrefix(ev.Action, "model.") {
			actions = append(actions, ev.Action+":"+ev.Decision)
		}
	}
	if strings.Join(actions, " ") != "model.load:deny model.load:allow model.rollback:allow" {
		t.Fatalf("audited: %v", actions)
	}
	out, err = runCmd(t, newModel, d, "root", "show", "--version", "2")
	if err != nil || out != changed {
		t.Fatalf("show --version 2: %v\n%s", err, out)
	}
}

// runCmdWith is runCmd with a hook that adjusts the env (its stdin).
func runCmdWith(t *testing.T, build func(*env) *cobra.Command, d Deps, user string, hook func(*env), args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{ctx: context.Background(), p: authn.Principal{User: user}, deps: d, in: strings.NewReader(""), out: &out, errOut: &errOut}
	hook(e)
	cmd := build(e)
	cmd.PersistentFlags().StringVarP(&e.output, "output", "o", "table", "output format")
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.Execute()
	return out.String(), err
}
