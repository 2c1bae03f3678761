package subsystems

import (
	"context"
	"fmt"
	"sort"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// ChannelHandler serves one channel of a registered type (for example
// "direct-tcpip"). The context carries the caller's Principal.
type ChannelHandler func(ctx context.Context, conn *gossh.ServerConn, nc gossh.NewChannel)

// SessionHandler serves an exec command, a subsystem or a shell on a
// session channel and returns the exit status. For commands, args[0] is the
// command name.
type SessionHandler func(ctx context.Context, s ssh.Session, args []string) int

// Command is an exec command answered over `ssh bastion NAME ...`.
type Command struct {
	Name    string
	Summary string
	Run     SessionHandler
}

// Module is a feature: it declares what it serves by registering into the
// table. Modules must not reach into the server core.
type Module interface {
	Register(t *Table) error
}

// Table is the single dispatch table of the server.
type Table struct {
	channels   map[string]ChannelHandler
	commands   map[string]Command
	subsystems map[string]SessionHandler
	shell      SessionHandler
	target     TargetHandler
	agent      bool // the target handler decides agent forwarding (ForwardsAgent)
	globals    map[string]GlobalHandler
}

// GlobalHandler may answer a global request (tcpip-forward, ...). The
// context carries the caller's Principal and ends with the connection.
// When it returns Handled false the request is not its to answer, and the
// core refuses it exactly as it refuses every request no module handles.
type GlobalHandler func(ctx context.Context, conn *gossh.ServerConn, req *gossh.Request) GlobalReply

// GlobalReply is a GlobalHandler's answer. A refusal (OK false) with a
// Notice shows the notice on the stderr of the connection's sessions, as
// the core's own refusals do (OpenSSH prints no reason for a failed global
// request); the handler audits its own refusal.
type GlobalReply struct {
	Handled bool
	OK      bool
	Payload []byte
	Notice  string
}

// TargetHandler serves `ssh bastion NAME [-- command]` when NAME is not a
// command; handled is false when NAME is not its to serve either.
type TargetHandler func(ctx context.Context, s ssh.Session, args []string) (code int, handled bool)

// NewTable returns an empty table: with nothing registered, everything is
// refused.
func NewTable() *Table {
	return &Table{
		channels:   map[string]ChannelHandler{},
		commands:   map[string]Command{},
		subsystems: map[string]SessionHandler{},
		globals:    map[string]GlobalHandler{},
	}
}

// Global registers a handler for one global request type. Deny by
// default stays: what the handler declines, the core refuses.
func (t *Table) Global(typ string, h GlobalHandler) error {
	if typ == "" || typ == "default" || silentRequests[typ] {
		return fmt.Errorf("global request %q is reserved by the core", typ)
	}
	if _, dup := t.globals[typ]; dup {
		return fmt.Errorf("global request %q registered twice", typ)
	}
	t.globals[typ] = h
	return nil
}

// Channel registers a handler for a channel type other than "session",
// which the core owns.
func (t *Table) Channel(typ string, h ChannelHandler) error {
	if typ == "session" || typ == "default" {
		return fmt.Errorf("channel type %q is reserved by the core", typ)
	}
	if _, dup := t.channels[typ]; dup {
		return fmt.Errorf("channel type %q registered twice", typ)
	}
	t.channels[typ] = h
	return nil
}

// Command registers an exec command.
func (t *Table) Command(c Command) error {
	if c.Name == "" || c.Run == nil {
		return fmt.Errorf("command needs a name and a handler")
	}
	if _, dup := t.commands[c.Name]; dup {
		return fmt.Errorf("command %q registered twice", c.Name)
	}
	t.commands[c.Name] = c
	return nil
}

// Subsystem registers an `ssh -s NAME` subsystem.
func (t *Table) Subsystem(name string, h SessionHandler) error {
	if _, dup := t.subsystems[name]; dup || name == "default" {
		return fmt.Errorf("subsystem %q registered twice or reserved", name)
	}
	t.subsystems[name] = h
	return nil
}

// Shell registers the handler for a session without a command (the TUI).
func (t *Table) Shell(h SessionHandler) error {
	if t.shell != nil {
		return fmt.Errorf("shell registered twice")
	}
	t.shell = h
	return nil
}

// Target registers the handler for names that are not commands.
func (t *Table) Target(h TargetHandler) error {
	if t.target != nil {
		return fmt.Errorf("target handler registered twice")
	}
	t.target = h
	return nil
}

// ForwardsAgent says that the target handler decides agent forwarding
// (ssh -A) itself, per Resource: the core then lets auth-agent-req through
// to sessions, and refuses it, as before, for every session that the
// target handler does not serve (see agentUnused).
func (t *Table) ForwardsAgent() { t.agent = true }

// Commands lists the registered commands, sorted by name.
func (t *Table) Commands() []Command {
	out := make([]Command, 0, len(t.commands))
	for _, c := range t.commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SubsystemNames lists the registered subsystems, sorted.
func (t *Table) SubsystemNames() []string {
	out := make([]string, 0, len(t.subsystems))
	for n := range t.subsystems {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
