package stepup

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Requirement is what a session demands of the caller's last strong
// login: made within MaxAge, and, if ACR is set, with one of those acr
// values. The zero Requirement demands nothing.
type Requirement struct {
	MaxAge time.Duration
	ACR    []string
	// Impossible is set by Combine when two requirements admit no common
	// acr: nothing satisfies it, and the refusal says so.
	Impossible bool
	// From names where the requirement came from ("kube sessions",
	// "project prod", "Resource prod-db"), for messages.
	From []string
}

// maxMaxAge bounds a step-up's maximum age: past it, "recent" means
// nothing (sessions are capped at 4 h anyway).
const maxMaxAge = 24 * time.Hour

// IsZero reports whether r demands nothing.
func (r Requirement) IsZero() bool { return r.MaxAge == 0 && len(r.ACR) == 0 && !r.Impossible }

// Parse reads the short form used by `resources add --step-up` and the
// config: a maximum age, then any number of ",acr=VALUE" ("10m",
// "1h,acr=sk,acr=sk-uv"). "" is the zero Requirement.
func Parse(s string) (Requirement, error) {
	var r Requirement
	s = strings.TrimSpace(s)
	if s == "" {
		return r, nil
	}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "acr="); ok {
			if v == "" || strings.ContainsAny(v, " \t") {
				return Requirement{}, fmt.Errorf("step-up %q: acr=%q is not an acr value", s, v)
			}
			if !slices.Contains(r.ACR, v) {
				r.ACR = append(r.ACR, v)
			}
			continue
		}
		if i != 0 {
			return Requirement{}, fmt.Errorf("step-up %q: %q is neither the maximum age (first) nor acr=VALUE", s, part)
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return Requirement{}, fmt.Errorf("step-up %q: %q is not a duration (e.g. 10m, 1h)", s, part)
		}
		r.MaxAge = d
	}
	return r, r.validate(s)
}

func (r Requirement) validate(s string) error {
	switch {
	case r.MaxAge < 0:
		return fmt.Errorf("step-up %q: the maximum age must be positive", s)
	case r.MaxAge == 0 && len(r.ACR) == 0:
		return fmt.Errorf("step-up %q: give a maximum age (e.g. 10m) and, optionally, acr=VALUE", s)
	case r.MaxAge > maxMaxAge:
		return fmt.Errorf("step-up %q: the maximum age is above %s", s, maxMaxAge)
	}
	return nil
}

// String is the short form Parse reads.
func (r Requirement) String() string {
	var parts []string
	if r.MaxAge > 0 {
		parts = append(parts, shortDuration(r.MaxAge))
	}
	for _, a := range r.ACR {
		parts = append(parts, "acr="+a)
	}
	return strings.Join(parts, ",")
}

// UnmarshalYAML accepts the short form ("10m,acr=sk") or a mapping
// {max_age: 10m, acr: [sk, sk-uv]}.
func (r *Requirement) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v, err := Parse(n.Value)
		if err != nil {
			return err
		}
		*r = v
		return nil
	}
	var m struct {
		MaxAge time.Duration `yaml:"max_age"`
		ACR    []string      `yaml:"acr"`
	}
	// Unknown keys are errors here too: a typo in a security setting
	// must not silently demand less.
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k := 0; k+1 < len(n.Content); k += 2 {
		if key := n.Content[k].Value; key != "max_age" && key != "acr" {
			return fmt.Errorf("line %d: step_up: unknown field %q (max_age, acr)", n.Content[k].Line, key)
		}
	}
	*r = Requirement{MaxAge: m.MaxAge, ACR: m.ACR}
	return r.validate(r.String())
}

// Combine is the requirement both a and b impose: the shorter maximum age,
// and the acr values both accept. It is the strictest of the two, or
// stricter: a session that satisfies it satisfies each.
func Combine(a, b Requirement) Requirement {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	}
	out := Requirement{MaxAge: a.MaxAge, Impossible: a.Impossible || b.Impossible,
		From: append(append([]string(nil), a.From...), b.From...)}
	if out.MaxAge == 0 || (b.MaxAge > 0 && b.MaxAge < out.MaxAge) {
		out.MaxAge = b.MaxAge
	}
	switch {
	case len(a.ACR) == 0:
		out.ACR = append([]string(nil), b.ACR...)
	case len(b.ACR) == 0:
		out.ACR = append([]string(nil), a.ACR...)
	default:
		for _, v := range a.ACR {
			if slices.Contains(b.ACR, v) {
				out.ACR = append(out.ACR, v)
			}
		}
		if len(out.ACR) == 0 {
			out.Impossible = true
		}
	}
	return out
}

// Kinds are the session kinds a requirement can name.
var Kinds = []string{"ssh", "tcp", "kube", "sftp"}

// Config is the step_up section of the bastion's config.
type Config struct {
	// Remember is how long a step-up made with `ssh bastion step-up`
	// (or the device login that bound a key) satisfies requirements on
	// new connections with the same key (default 15 m).
	Remember time.Duration `yaml:"remember"`
	// Sessions are the requirements by session kind (ssh, tcp, kube,
	// sftp); Projects by project.
	Sessions map[string]Requirement `yaml:"sessions"`
	Projects map[string]Requirement `yaml:"projects"`
	// IdentityProvider says the bastion has one (oidc:), so that
	// `step-up` can satisfy a requirement; refusals suggest it only
	// then. Set from the oidc section, not from step_up.
	IdentityProvider bool `yaml:"-"`
}

// DefaultRemember is Config.Remember's default.
const DefaultRemember = 15 * time.Minute

// Validate checks the section.
func (c Config) Validate() error {
	if c.Remember < 0 || c.Remember > maxMaxAge {
		return fmt.Errorf("step_up.remember: must be between 0 and %s", maxMaxAge)
	}
	for k := range c.Sessions {
		if !slices.Contains(Kinds, k) {
			return fmt.Errorf("step_up.sessions: %q is not a session kind (%s)", k, strings.Join(Kinds, ", "))
		}
	}
	for p := range c.Projects {
		if p == "" {
			return errors.New("step_up.projects: empty project name")
		}
	}
	return nil
}

// For is the requirement a session of kind to a Resource in project with
// its own step-up (store.Resource.StepUp) must meet. A malformed Resource
// step-up is an error: the caller refuses (fail closed).
func (c Config) For(kind, resource, project, own string) (Requirement, error) {
	var out Requirement
	if r, ok := c.Sessions[kind]; ok && !r.IsZero() {
		r.From = []string{kind + " sessions"}
		out = Combine(out, r)
	}
	if r, ok := c.Projects[project]; ok && project != "" && !r.IsZero() {
		r.From = []string{"project " + project}
		out = Combine(out, r)
	}
	if own != "" {
		r, err := Parse(own)
		if err != nil {
			return Requirement{}, fmt.Errorf("the Resource %s has a malformed step-up (%v); an admin must fix it", resource, err)
		}
		r.From = []string{"Resource " + resource}
		out = Combine(out, r)
	}
	return out, nil
}

// shortDuration prints 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
