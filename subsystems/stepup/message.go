package stepup

import (
	"fmt"
	"strings"
	"time"
)

// Describe says what a requirement needs, for people: "a strong login
// within 10m (acr sk or sk-uv)".
func Describe(r Requirement) string {
	var b strings.Builder
	b.WriteString("a strong login (security key or identity provider)")
	if r.MaxAge > 0 {
		b.WriteString(" within " + shortDuration(r.MaxAge))
	}
	if len(r.ACR) > 0 {
		b.WriteString(" with acr " + strings.Join(r.ACR, " or "))
	}
	if r.Impossible {
		b.WriteString(", which no login can give: the step-up requirements that apply accept no common acr; an admin must fix them")
	}
	return b.String()
}

// Have says what the caller has: "your last strong login: none (you
// logged in with publickey 3h ago)".
func Have(l Login, now time.Time) string {
	ago := Ago(now.Sub(l.At))
	acr := ""
	if l.ACR != "" {
		acr = ", acr " + l.ACR
	}
	if !l.Strong {
		return fmt.Sprintf("your last strong login: none on this connection (you logged in with %s %s)", l.Method, ago)
	}
	return fmt.Sprintf("your last strong login: %s %s%s", l.Method, ago, acr)
}

// Ago is a duration as people say it: "3h ago", "12m ago", "just now".
func Ago(d time.Duration) string {
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// HowTo is how to satisfy a step-up; host is how users reach the bastion,
// idp whether it has an identity provider (`step-up` needs one).
func HowTo(host string, idp bool) string {
	if !idp {
		return fmt.Sprintf("log in with a registered security key (make one with `ssh-keygen -t ed25519-sk`, register it with `%s keys add`); this bastion has no identity provider for `step-up`", host)
	}
	return fmt.Sprintf("run `%s step-up` (a login at your identity provider) or log in with your security key", host)
}

// Refusal is the whole message of a refused session: what was refused
// (what), the reason code, what was needed, what the caller has, and how
// to fix it (how, from HowTo).
func Refusal(what string, d Decision, how string, now time.Time) string {
	if d.Err != nil {
		return fmt.Sprintf("%s refused (step_up_required): the step-up could not be checked: %v; try again shortly", what, d.Err)
	}
	from := ""
	if len(d.Need.From) > 0 {
		from = " (" + strings.Join(d.Need.From, ", ") + ")"
	}
	return fmt.Sprintf("%s refused (step_up_required): it needs %s%s; %s. To continue, %s.",
		what, Describe(d.Need), from, Have(d.Have, now), how)
}

// Expired is the message of a session cut because it outlived its step-up.
func Expired(what string, need Requirement, how string) string {
	return fmt.Sprintf("%s ended (step_up_expired): it needs %s, and the login that satisfied it is now too old; %s, then open it again",
		what, Describe(need), how)
}
