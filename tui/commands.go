package tui

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// bastionAddr is what the TUI understood of Options.Host.
type bastionAddr struct {
	dest string // [user@]host, "" when Host could not be parsed
	port int    // 0 when none was given
}

// parseHost reads a command line such as "ssh -p 2222 alice@localhost".
func parseHost(host string) bastionAddr {
	f := strings.Fields(host)
	if len(f) == 0 || f[0] != "ssh" {
		return bastionAddr{}
	}
	var a bastionAddr
	withArg := "BbcDEeFIiJLlmOoPpQRSWw"
	for i := 1; i < len(f); i++ {
		t := f[i]
		switch {
		case t == "-p" && i+1 < len(f):
			a.port, _ = strconv.Atoi(f[i+1])
			i++
		case strings.HasPrefix(t, "-p") && len(t) > 2:
			a.port, _ = strconv.Atoi(t[2:])
		case len(t) == 2 && t[0] == '-' && strings.IndexByte(withArg, t[1]) >= 0:
			i++ // an option and its argument
		case strings.HasPrefix(t, "-"):
			// a flag, or an option with its argument attached
		case a.dest == "":
			a.dest = t
		}
	}
	if strings.HasPrefix(a.dest, "ssh://") {
		d := strings.TrimPrefix(a.dest, "ssh://")
		if h, p, ok := strings.Cut(d, ":"); ok {
			a.dest = h
			a.port, _ = strconv.Atoi(p)
		} else {
			a.dest = d
		}
	}
	return a
}

// local tells whether the bastion runs on the user's own machine, where a
// local forward must not take the bastion's own port.
func (a bastionAddr) local() bool {
	h := a.dest
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		h = h[i+1:]
	}
	return h == "localhost" || h == "127.0.0.1" || h == "::1" || h == "[::1]"
}

// localPort is the port to suggest on the user's side for -L.
func (a bastionAddr) localPort(want int) int {
	if a.local() && want == a.port {
		return want + 1
	}
	return want
}

// jump is the ProxyJump argument, "" when unknown.
func (a bastionAddr) jump() string {
	if a.dest == "" {
		return ""
	}
	if a.port != 0 && a.port != 22 {
		return a.dest + ":" + strconv.Itoa(a.port)
	}
	return a.dest
}

// howto is one line of the detail pane: a label and an exact command, or a
// sentence when cmd is "".
type howto struct{ label, cmd, text string }

// connectLines are the exact commands that reach it through the bastion.
func connectLines(host string, it Item) []howto {
	if host == "" {
		host = "ssh bastion"
	}
	a := parseHost(host)
	if !it.Reachable {
		return []howto{
			{text: fmt.Sprintf("You cannot reach %s yet. Press enter to request access, or:", it.Name)},
			{label: "Request", cmd: fmt.Sprintf(`%s request create %s --reason "..."`, host, it.Name)},
		}
	}
	switch it.Kind {
	case "ssh":
		lp := a.localPort(2222)
		out := []howto{{label: "Shell", cmd: fmt.Sprintf("%s -t %s", host, it.Name)}}
		if j := a.jump(); j != "" {
			out = append(out, howto{label: "Jump", cmd: fmt.Sprintf("ssh -J %s %s", j, it.Name)})
		}
		out = append(out,
			howto{label: "Forward", cmd: fmt.Sprintf("%s -N -L %d:%s:22", host, lp, it.Name)},
			howto{text: "Press enter to open a shell on " + it.Name + " now."})
		return out
	case "kube":
		lp := a.localPort(6443)
		return []howto{
			{label: "Config", cmd: fmt.Sprintf("%s kubeconfig %s", host, it.Name)},
			{label: "Forward", cmd: fmt.Sprintf("%s -N -L %d:%s:443", host, lp, it.Name)},
			{text: "Keep the forward open, then run kubectl with that kubeconfig."},
		}
	default: // tcp
		if len(it.Ports) == 0 {
			return []howto{
				{label: "Forward", cmd: fmt.Sprintf("%s -N -L PORT:%s:PORT", host, it.Name)},
				{text: "No port is allowed on " + it.Name + " yet."},
			}
		}
		p := it.Ports[0]
		lp := a.localPort(p)
		return []howto{
			{label: "Forward", cmd: fmt.Sprintf("%s -N -L %d:%s:%d", host, lp, it.Name, p)},
			{text: fmt.Sprintf("Keep it open, then connect to localhost:%d.", lp)},
		}
	}
}

// labelString renders labels as "k=v k=v", sorted by key.
func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, " ")
}

// matches reports whether every word of the filter occurs, ignoring case,
// in the name, kind, project or labels of it.
func matches(it Item, filter string) bool {
	hay := strings.ToLower(it.Name + " " + it.Kind + " " + it.Project + " " + labelString(it.Labels))
	for _, w := range strings.Fields(strings.ToLower(filter)) {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}
