package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// Requests is the access-request service (subsystems/requests).
type Requests interface {
	Create(ctx context.Context, p authn.Principal, names []string, reason string, ttl time.Duration) (store.AccessRequest, error)
	Get(ctx context.Context, p authn.Principal, id string) (store.AccessRequest, error)
	List(ctx context.Context, p authn.Principal, pendingOnly bool) ([]store.AccessRequest, error)
	Wait(ctx context.Context, id string) (store.AccessRequest, error)
	Approve(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error)
	Deny(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error)
	Drop(ctx context.Context, p authn.Principal, id, reason string) (store.AccessRequest, error)
	Search(ctx context.Context, p authn.Principal, kind string, labels map[string]string, query string) ([]store.Resource, error)
}

func newRequest(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "request", Short: "Just-in-time access: search, create, list, show, approve, deny, drop", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() }}
	svc := func() (Requests, error) {
		if e.deps.Requests == nil {
			return nil, fmt.Errorf("access requests are not enabled on this bastion")
		}
		return e.deps.Requests, nil
	}
	var kind, query string
	var labels []string
	search := &cobra.Command{Use: "search [--kind K] [--label k=v] [--query TEXT]", Short: "Resources you may request but cannot reach yet", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := svc()
			if err != nil {
				return err
			}
			want := map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok {
					return fmt.Errorf("--label %q: want k=v", l)
				}
				want[k] = v
			}
			rs, err := s.Search(e.ctx, e.p, kind, want, query)
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, r := range rs {
				rows = append(rows, []string{r.Name, r.Kind, r.Project, labelsString(r.Labels), fmt.Sprintf("%s request create %s --reason \"...\"", e.deps.Host, r.Name)})
			}
			return e.render(rs, []string{"NAME", "KIND", "PROJECT", "LABELS", "REQUEST WITH"}, rows)
		}}
	search.Flags().StringVar(&kind, "kind", "", "ssh, tcp or kube")
	search.Flags().StringSliceVar(&labels, "label", nil, "label k=v (repeatable)")
	search.Flags().StringVar(&query, "query", "", "text in the name, project or labels")

	var reason string
	var ttl time.Duration
	var wait bool
	create := &cobra.Command{Use: "create NAME... --reason TEXT [--ttl 1h] [--wait]", Short: "Ask for act on Resources; --wait blocks until a reviewer decides",
		Example: fmt.Sprintf("  %s request create web-1 --reason \"INC-7 look at logs\" --ttl 30m --wait", e.deps.Host),
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				// The words after --reason are its text (see
				// joinTextFlags), so the names must come first.
				return fmt.Errorf("name the Resources first, then the reason: %s request create web-1 --reason \"INC-7 look at logs\"", e.deps.Host)
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := svc()
			if err != nil {
				return err
			}
			if err := checkText("--reason", reason, maxReason); err != nil {
				return err
			}
			r, err := s.Create(e.ctx, e.p, args, reason, ttl)
			if err != nil {
				return err
			}
			if !wait {
				if e.output == "json" {
					return e.render(r, nil, nil)
				}
				fmt.Fprintf(e.out, "request %s filed for %s (ttl %s); a reviewer approves it with: %s request approve %s\n",
					r.ID, strings.Join(r.Resources, ", "), r.TTL, e.deps.Host, r.ID)
				return nil
			}
			fmt.Fprintf(e.errOut, "request %s filed for %s; waiting for a reviewer (Ctrl-C stops waiting, the request stays)...\n", r.ID, strings.Join(r.Resources, ", "))
			r, err = s.Wait(e.ctx, r.ID)
			if err != nil {
				return fmt.Errorf("stopped waiting for %s: %v; see `%s request show %s`", r.ID, err, e.deps.Host, r.ID)
			}
			if e.output == "json" {
				return e.render(r, nil, nil)
			}
			fmt.Fprintln(e.out, requestLine(r))
			if r.State != "approved" {
				return &exitError{code: 1}
			}
			return nil
		}}
	create.Flags().StringVar(&reason, "reason", "", "why you need access (required)")
	create.Flags().DurationVar(&ttl, "ttl", 0, "how long the grant should last (default 1h; capped by the bastion and the project)")
	create.Flags().BoolVar(&wait, "wait", false, "wait for the decision and print it")

	var pending bool
	list := &cobra.Command{Use: "list [--pending]", Short: "Your requests and those you may review", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := svc()
			if err != nil {
				return err
			}
			rs, err := s.List(e.ctx, e.p, pending)
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, r := range rs {
				rows = append(rows, []string{r.ID, r.User, strings.Join(r.Resources, ","), r.State, r.TTL.String(), r.Reviewer, r.Reason})
			}
			return e.render(rs, []string{"ID", "USER", "RESOURCES", "STATE", "TTL", "REVIEWER", "REASON"}, rows)
		}}
	list.Flags().BoolVar(&pending, "pending", false, "only pending requests")

	show := &cobra.Command{Use: "show ID", Short: "One request", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, err := svc()
			if err != nil {
				return err
			}
			r, err := s.Get(e.ctx, e.p, args[0])
			if err != nil {
				return err
			}
			rows := [][]string{{"id", r.ID}, {"user", r.User}, {"resources", strings.Join(r.Resources, ",")}, {"reason", r.Reason},
				{"state", r.State}, {"ttl", r.TTL.String()}, {"created", r.Created.Format(time.RFC3339)}, {"reviewer", r.Reviewer},
				{"review reason", r.ReviewReason}, {"expires", timeString(r.Expires)}, {"ended", timeString(r.Ended)}}
			return e.render(r, []string{"FIELD", "VALUE"}, rows)
		}}

	decide := func(use, short string, run func(Requests, string, string) (store.AccessRequest, error)) *cobra.Command {
		var why string
		c := &cobra.Command{Use: use + " ID [--reason TEXT]", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				s, err := svc()
				if err != nil {
					return err
				}
				if err := checkText("--reason", why, maxReason); err != nil {
					return err
				}
				r, err := run(s, args[0], why)
				if err != nil {
					return err
				}
				if e.output == "json" {
					return e.render(r, nil, nil)
				}
				fmt.Fprintln(e.out, requestLine(r))
				return nil
			}}
		c.Flags().StringVar(&why, "reason", "", "the reason, shown to the requester and audited")
		return c
	}
	approve := decide("approve", "Approve a pending request (reviewers of its project; never your own)", func(s Requests, id, why string) (store.AccessRequest, error) {
		return s.Approve(e.ctx, e.p, id, why)
	})
	deny := decide("deny", "Deny a pending request, with a reason", func(s Requests, id, why string) (store.AccessRequest, error) {
		return s.Deny(e.ctx, e.p, id, why)
	})
	drop := decide("drop", "End an approved grant early (the requester or a reviewer)", func(s Requests, id, why string) (store.AccessRequest, error) {
		return s.Drop(e.ctx, e.p, id, why)
	})
	cmd.AddCommand(search, create, list, show, approve, deny, drop)
	return cmd
}

// requestLine is the one line a requester or reviewer reads about a request.
func requestLine(r store.AccessRequest) string {
	why := ""
	if r.ReviewReason != "" {
		why = ": " + r.ReviewReason
	}
	switch r.State {
	case "approved":
		return fmt.Sprintf("%s approved by %s%s; act on %s until %s", r.ID, r.Reviewer, why, strings.Join(r.Resources, ", "), r.Expires.Format(time.RFC3339))
	case "denied":
		return fmt.Sprintf("%s denied by %s%s", r.ID, r.Reviewer, why)
	case "dropped":
		return fmt.Sprintf("%s dropped by %s; the grant on %s has ended", r.ID, r.EndedBy, strings.Join(r.Resources, ", "))
	}
	return fmt.Sprintf("%s is %s", r.ID, r.State)
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}
