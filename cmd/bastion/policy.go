package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sshbastion/bastion/audit"
	"github.com/sshbastion/bastion/policy"
	"github.com/sshbastion/bastion/store"
)

// modelSecret is where the model in force is kept, so that `model load`
// survives restarts.
const modelSecret = "policy-model"

type modelStore struct{ st store.Secrets }

func (m modelStore) SaveModel(ctx context.Context, src string) error {
	return m.st.PutSecret(ctx, modelSecret, []byte(src))
}

// newPolicy builds the engine over tuples (the cache in front of the
// store), with the stored model or the default one.
func newPolicy(ctx context.Context, st store.Store, tuples policy.TupleReader, log *slog.Logger) (*policy.Engine, error) {
	m, err := policy.LoadDefaultModel()
	if err != nil {
		return nil, fmt.Errorf("default model: %w", err)
	}
	src, err := st.GetSecret(ctx, modelSecret)
	switch {
	case err == nil:
		stored, err := policy.LoadModel(string(src))
		if err != nil {
			// A stored model that no longer loads must not silently widen
			// access: refuse to start rather than fall back.
			return nil, fmt.Errorf("stored model does not load (fix with `model load`, or remove it): %w", err)
		}
		m = stored
		log.Info("loaded the stored authorization model")
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return policy.New(m, tuples), nil
}

// bootstrapPolicy turns the config's admins into domain admin tuples, and
// writes the tenancy edges of configured Resources.
func bootstrapPolicy(ctx context.Context, st store.Store, alog *audit.Log, cfg Config) error {
	dom := "domain:" + cfg.Domain
	var add []store.Tuple
	for _, a := range cfg.Admins {
		add = append(add, store.Tuple{Object: dom, Relation: "admin", Subject: "user:" + a})
	}
	for _, r := range cfg.Resources {
		if r.Project == "" {
			r.Project = "default"
		}
		if err := st.PutResource(ctx, r); err != nil {
			return err
		}
		if r.Project != "" {
			add = append(add,
				store.Tuple{Object: "resource:" + r.Name, Relation: "project", Subject: "project:" + r.Project},
				store.Tuple{Object: "project:" + r.Project, Relation: "domain", Subject: dom})
		}
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
	if len(missing) == 0 {
		return nil
	}
	if err := st.WriteTuples(ctx, missing, nil); err != nil {
		return err
	}
	for _, t := range missing {
		_, _ = alog.Append(ctx, store.Event{Actor: "bastion", Action: "tuple.add", Target: t.String(), Decision: "allow", Reason: "bootstrap from config"})
	}
	return nil
}
