package commands

import (
	"fmt"
	"strconv"
	"strings"
)

// portsFlag is a repeatable list of ports; several flags (--port, --ports)
// may add to the same list, in the order given.
type portsFlag struct{ p *[]int }

func (f portsFlag) String() string {
	if f.p == nil {
		return ""
	}
	return intsString(*f.p)
}

// Set adds one port, or several comma-separated.
func (f portsFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a port (1-65535)", part)
		}
		*f.p = append(*f.p, n)
	}
	return nil
}

func (portsFlag) Type() string { return "port" }
