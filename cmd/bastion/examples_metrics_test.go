package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/sshbastion/bastion/subsystems"
	"github.com/sshbastion/bastion/subsystems/sessions"
)

// recordingRegisterer passes registrations on and keeps the collectors, so
// that their descriptions (names, labels, help) can be read even for
// vectors without any series yet.
type recordingRegisterer struct {
	prometheus.Registerer
	cs []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return r.Registerer.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	r.cs = append(r.cs, cs...)
	r.Registerer.MustRegister(cs...)
}

var descRe = regexp.MustCompile(`^Desc\{fqName: "([^"]*)", help: "((?:[^"\\]|\\.)*)"(?:, unit: "[^"]*")?, constLabels: \{[^}]*\}, variableLabels: \{([^}]*)\}\}$`)

// servedMetrics builds the registry with the functions serve uses (store,
// audit log, modules' series, server core) and returns every metric name
// registered, with its variable labels.
func servedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cfg := defaultConfig()
	cfg.DataDir = t.TempDir()
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := newRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	newMetricSet(rec)
	alog, err := newAudit(st, rec, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAudit(alog, log) })
	hostKey, err := hostKeyOf(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	mods := &modules{table: subsystems.NewTable(), sessions: sessions.New(sessions.Config{}, st, nil, alog, log)}
	if _, err := newServer(cfg, mods, st, alog, hostKey, "ssh bastion", log, rec); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	descs := make(chan *prometheus.Desc)
	go func() {
		for _, c := range rec.cs {
			c.Describe(descs)
		}
		close(descs)
	}()
	for d := range descs {
		m := descRe.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		if m[2] == "" {
			t.Errorf("%s has no help", m[1])
		}
		var labels []string
		if m[3] != "" {
			labels = strings.Split(m[3], ",")
		}
		out[m[1]] = labels
	}
	// The Go and process collectors, registered by newRegistry itself.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, ok := out[mf.GetName()]; !ok {
			out[mf.GetName()] = nil
		}
	}
	return out
}

// TestServedMetricsFollowTheConventions: units and _total in names, and
// labels that never carry who or what (users, Resources, addresses,
// sessions), whose values are unbounded.
func TestServedMetricsFollowTheConventions(t *testing.T) {
	forbidden := []string{"user", "login", "resource", "target", "address", "addr", "source", "session", "conn", "fingerprint", "id", "path", "name"}
	n := 0
	for name, labels := range servedMetrics(t) {
		if !strings.HasPrefix(name, "bastion_") {
			continue
		}
		n++
		for _, l := range labels {
			if slices.Contains(forbidden, l) {
				t.Errorf("%s has the label %q, whose values are unbounded", name, l)
			}
		}
		if strings.Contains(name, "duration") && !strings.HasSuffix(name, "_seconds") {
			t.Errorf("%s: durations are in seconds, named _seconds", name)
		}
		if strings.Contains(name, "bytes") && !strings.HasSuffix(name, "_bytes_total") {
			t.Errorf("%s: byte counters are named _bytes_total", name)
		}
	}
	if n < 30 {
		t.Errorf("only %d bastion_* metrics are registered", n)
	}
}

var (
	metricNameRe = regexp.MustCompile(`\b(?:bastion|go|process)_[a-z0-9_]+\b`)
	quotedRe     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// referenced returns the metric names expr selects (histogram series
// named by their base), and checks that its brackets balance.
func referenced(t *testing.T, where, expr string, served map[string][]string) []string {
	t.Helper()
	bare := quotedRe.ReplaceAllString(expr, `""`)
	for _, pair := range []string{"()", "[]", "{}"} {
		if strings.Count(bare, pair[:1]) != strings.Count(bare, pair[1:]) {
			t.Errorf("%s: unbalanced %s in %q", where, pair, expr)
		}
	}
	var names []string
	for _, n := range metricNameRe.FindAllString(bare, -1) {
		if _, ok := served[n]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(n, suffix); cut {
					if _, ok := served[base]; ok {
						n = base
					}
				}
			}
		}
		if _, ok := served[n]; !ok {
			t.Errorf("%s references %s, which the bastion does not export", where, n)
		}
		names = append(names, n)
	}
	return names
}

// TestExamplesGrafanaDashboard: the dashboard is valid JSON, its panels
// are laid out on the 24-column grid with queries, and it shows every
// bastion_* series the bastion exports, and only those.
func TestExamplesGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "grafana", "bastion.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title         string `json:"title"`
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int                      `json:"id"`
			Type    string                   `json:"type"`
			Title   string                   `json:"title"`
			GridPos struct{ H, W, X, Y int } `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("bastion.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 30 || len(dash.Panels) == 0 {
		t.Fatalf("dashboard header: %q %q schema %d, %d panels", dash.Title, dash.UID, dash.SchemaVersion, len(dash.Panels))
	}
	served := servedMetrics(t)
	shown := map[string]bool{}
	for _, v := range dash.Templating.List {
		for _, n := range referenced(t, "variable "+v.Name, v.Definition, served) {
			shown[n] = true
		}
	}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v off the 24-column grid", p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %q (%s) has no title or no query", p.Title, p.Type)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Expr == "" {
				t.Errorf("panel %q: a target without refId or expr", p.Title)
			}
			for _, n := range referenced(t, "panel "+p.Title, tg.Expr, served) {
				shown[n] = true
			}
		}
	}
	for name := range served {
		if strings.HasPrefix(name, "bastion_") && !shown[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
}

// TestExamplesPrometheusAlerts: the rules file decodes strictly as a
// Prometheus rules file, each alert is complete, and the alerts an
// operator pages on are there, over series the bastion exports.
func TestExamplesPrometheusAlerts(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name     string `yaml:"name"`
			Interval string `yaml:"interval"`
			Rules    []struct {
				Alert         string            `yaml:"alert"`
				Record        string            `yaml:"record"`
				Expr          string            `yaml:"expr"`
				For           string            `yaml:"for"`
				KeepFiringFor string            `yaml:"keep_firing_for"`
				Labels        map[string]string `yaml:"labels"`
				Annotations   map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	d := yaml.NewDecoder(bytes.NewReader(raw))
	d.KnownFields(true)
	if err := d.Decode(&rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	served := servedMetrics(t)
	served["up"] = nil // Prometheus's own, per scrape target
	alertRe := regexp.MustCompile(`^Bastion[A-Z][A-Za-z0-9]+$`)
	uses := map[string][]string{} // metric -> alerts
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			if !alertRe.MatchString(r.Alert) || r.Record != "" || seen[r.Alert] {
				t.Errorf("rule %q/%q: want one alert named BastionSomething", r.Alert, r.Record)
			}
			seen[r.Alert] = true
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if sev := r.Labels["severity"]; sev != "page" && sev != "warning" {
				t.Errorf("%s: severity %q, want page or warning", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", r.Alert)
			}
			names := referenced(t, r.Alert, r.Expr, served)
			if strings.Contains(r.Expr, "up{") {
				names = append(names, "up")
			}
			if len(names) == 0 {
				t.Errorf("%s: %q selects no series", r.Alert, r.Expr)
			}
			for _, n := range names {
				uses[n] = append(uses[n], r.Alert)
			}
		}
	}
	for _, want := range []string{"bastion_audit_append_failures_total", "bastion_audit_lost_events_total", "bastion_store_up", "bastion_auth_failures_total"} {
		if len(uses[want]) == 0 {
			t.Errorf("no alert on %s", want)
		}
	}
}
