package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// modelSecret is where bastions before the model history kept the model
// in force. It is read once, to become version 1 of the history, and
// still mirrors the newest version so that an older binary started on the
// same data directory finds the model in force.
const modelSecret = "policy-model"

// modelStore is the model history (store.Models) as the commands use it.
type modelStore struct{ st store.Store }

func (m modelStore) AppendModel(ctx context.Context, v store.ModelVersion) (store.ModelVersion, error) {
	out, err := m.st.AppendModel(ctx, v)
	if err != nil {
		return out, err
	}
	return out, m.st.PutSecret(ctx, modelSecret, []byte(v.Source))
}

func (m modelStore) ModelVersion(ctx context.Context, v uint64) (store.ModelVersion, error) {
	return m.st.ModelVersion(ctx, v)
}

func (m modelStore) ModelVersions(ctx context.Context) ([]store.ModelVersion, error) {
	return m.st.ModelVersions(ctx)
}

func (m modelStore) LatestModel(ctx context.Context) (store.ModelVersion, bool, error) {
	return m.st.LatestModel(ctx)
}

// newPolicy builds the engine over tuples (the cache in front of the
// store), with the stored model or the default one.
func newPolicy(ctx context.Context, st store.Store, tuples policy.TupleReader, log *slog.Logger, opts ...policy.Option) (*policy.Engine, error) {
	m, err := startModel(ctx, st, log)
	if err != nil {
		return nil, err
	}
	return policy.New(m, tuples, opts...), nil
}

// startModel picks the model to start on: the newest stored version, or
// the default one.
//
// A stored model that lacks what the bastion relies on (see
// policy.BastionRequirements) would lock every admin out and fail every
// session check, and survive restarts: the bastion then starts on the
// default model instead and logs an error, so that admins keep access and
// can load or roll back a model. The stored versions are left as they
// are. A stored model that does not parse at all still stops the start
// (it should never happen: every version was parsed when it was stored),
// with the break-glass command that repairs it.
func startModel(ctx context.Context, st store.Store, log *slog.Logger) (*policy.Model, error) {
	def, err := policy.LoadDefaultModel()
	if err != nil {
		return nil, fmt.Errorf("default model: %w", err)
	}
	cur, ok, err := st.LatestModel(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the model history: %w", err)
	}
	if !ok {
		// No history yet: what is in force (the model an older bastion
		// kept, or the default) becomes version 1, so that `model
		// rollback 1` can always return to it.
		src := policy.DefaultModel
		switch b, err := st.GetSecret(ctx, modelSecret); {
		case err == nil:
			src = string(b)
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		if cur, err = st.AppendModel(ctx, store.NewModelVersion(src, "bastion", "initial", 0, time.Now())); err != nil {
			return nil, fmt.Errorf("recording the first model version: %w", err)
		}
	}
	if cur.Source == policy.DefaultModel {
		return def, nil
	}
	m, err := policy.LoadModel(cur.Source)
	if err != nil {
		return nil, fmt.Errorf("stored model version %d does not load; with the server stopped, "+
			"`bastion admin --data DIR restore-model` puts the default model back: %w", cur.Version, err)
	}
	if err := policy.RequireRelations(m, policy.BastionRequirements); err != nil {
		log.Error("the stored authorization model lacks what the bastion relies on: running on the default model instead, "+
			"so that admins keep access; fix it with `model load` or `model rollback`", "version", cur.Version, "err", err)
		return def, nil
	}
	log.Info("loaded the stored authorization model", "version", cur.Version)
	return m, nil
}

// bootstrapPolicy turns the config's admins into domain admin tuples, and
// upserts the configured Resources with their tenancy edges.
func bootstrapPolicy(ctx context.Context, st store.Store, alog *audit.Log, cfg Config) error {
	dom := "domain:" + cfg.Domain
	var add, del []store.Tuple
	for _, a := range cfg.Admins {
		add = append(add, store.Tuple{Object: dom, Relation: "admin", Subject: "user:" + a})
	}
	inConfig := map[string]bool{} // names and aliases of the config's Resources
	for _, r := range cfg.Resources {
		inConfig[r.Name] = true
		for _, a := range r.Aliases {
			inConfig[a] = true
		}
	}
	for _, r := range cfg.Resources {
		if r.Project == "" {
			r.Project = "default"
		}
		// The operator wrote it: its addresses and credentials are trusted
		// as written (store.Resource.FromConfig).
		r.Origin = store.OriginConfig
		if err := st.PutResource(ctx, r); err != nil {
			return err
		}
		want := store.Tuple{Object: "resource:" + r.Name, Relation: "project", Subject: "project:" + r.Project}
		add = append(add, want, store.Tuple{Object: "project:" + r.Project, Relation: "domain", Subject: dom})
		// Exactly one project tuple, the config's: any other (written by a
		// bastion that let `resources add` add a second, or by hand) would
		// make that project's admins admin of this Resource.
		have, err := st.TuplesByObject(ctx, want.Object, "project")
		if err != nil {
			return err
		}
		for _, t := range have {
			if t.Subject != want.Subject {
				del = append(del, t)
			}
		}
	}
	if err := dropShadowingAliases(ctx, st, alog, inConfig); err != nil {
		return err
	}
	existing, err := st.ListTuples(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, t := range existing {
		have[t.String()] = true
	}
	var missing []store.Tuple
	for _, t := range add {
		if !have[t.String()] {
			missing = append(missing, t)
			have[t.String()] = true
		}
	}
	if len(missing) == 0 && len(del) == 0 {
		return nil
	}
	// The events come first: no change without its durable record.
	evs := make([]store.Event, 0, len(del)+len(missing))
	for _, t := range del {
		evs = append(evs, store.Event{Actor: "bastion", Action: "tuple.rm", Target: t.String(), Decision: "allow",
			Reason: "a Resource has exactly one project: the config's"})
	}
	for _, t := range missing {
		evs = append(evs, store.Event{Actor: "bastion", Action: "tuple.add", Target: t.String(), Decision: "allow", Reason: "bootstrap from config"})
	}
	if err := alog.AppendAll(ctx, evs); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return st.WriteTuples(ctx, missing, del)
}

// dropShadowingAliases removes, from Resources the config does not
// define, aliases that are a config Resource's name or alias: forwards
// resolve aliases in list order, so such an alias could capture the
// config Resource's forwards.
func dropShadowingAliases(ctx context.Context, st store.Store, alog *audit.Log, inConfig map[string]bool) error {
	all, err := st.ListResources(ctx)
	if err != nil {
		return err
	}
	for _, r := range all {
		if inConfig[r.Name] && r.FromConfig() {
			continue
		}
		var keep, dropped []string
		for _, a := range r.Aliases {
			if inConfig[a] {
				dropped = append(dropped, a)
			} else {
				keep = append(keep, a)
			}
		}
		if len(dropped) == 0 {
			continue
		}
		r.Aliases = keep
		if _, err := alog.Append(ctx, store.Event{Actor: "bastion", Action: "resource.alias_removed", Target: r.Name, Decision: "allow",
			Reason: "the alias is a name of a config Resource", Details: map[string]string{"aliases": strings.Join(dropped, ",")}}); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		if err := st.PutResource(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
