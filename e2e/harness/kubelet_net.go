package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// egressLink is the veth pair that lets pods reach the host: the host end
// has .host, the node end .node (a /30 chosen from the test process's pid,
// so that two test binaries with a node each do not collide). The node's
// namespace forwards and masquerades the pods' traffic to the host out of
// that link, so the host needs no route to the pod network (a route to
// 10.88.0.0/24 would be host-global state that two nodes would fight over).
type egressLink struct {
	hostIf, nodeIf string
	host, node     string
}

func newEgressLink() egressLink {
	i := os.Getpid() % 16384
	base := fmt.Sprintf("10.89.%d.", i/64)
	return egressLink{
		hostIf: "bxh" + strconv.Itoa(os.Getpid()), nodeIf: "bxn" + strconv.Itoa(os.Getpid()),
		host: base + strconv.Itoa(i%64*4+1), node: base + strconv.Itoa(i%64*4+2),
	}
}

// nodeNftRules masquerades what the pods send to the host's end.
const nodeNftRules = `table ip bastion_egress {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.88.0.0/24 ip daddr %s oifname "%s" masquerade
  }
}
`

// addEgressLink makes the veth pair between the host and the node's
// network namespace.
func (n *nodeNet) addEgressLink() error {
	l := newEgressLink()
	pid := strconv.Itoa(n.cmd.Process.Pid)
	run := func(args ...string) error {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	in := []string{"nsenter", "--target", pid, "--net", "--"}
	steps := [][]string{
		{"ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", l.nodeIf, "netns", pid},
		{"ip", "addr", "add", l.host + "/30", "dev", l.hostIf},
		{"ip", "link", "set", l.hostIf, "up"},
		append(in, "ip", "addr", "add", l.node+"/30", "dev", l.nodeIf),
		append(in, "ip", "link", "set", l.nodeIf, "up"),
		append(in, "sysctl", "-qw", "net.ipv4.ip_forward=1"),
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			_ = exec.Command("ip", "link", "del", l.hostIf).Run()
			return err
		}
	}
	cmd := exec.Command("nsenter", "--target", pid, "--net", "--", "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf(nodeNftRules, l.host, l.nodeIf))
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = exec.Command("ip", "link", "del", l.hostIf).Run()
		return fmt.Errorf("nft masquerade in the node: %v: %s", err, out)
	}
	n.link = &l
	return nil
}

// delEgressLink removes the host end (the pair goes with it); it reports
// whether one was left over.
func (n *nodeNet) delEgressLink() string {
	if n.link == nil {
		return ""
	}
	// The namespace's end usually took the pair along when the holder
	// exited; delete the host end in case it did not.
	if err := exec.Command("ip", "link", "show", n.link.hostIf).Run(); err != nil {
		return ", veth removed"
	}
	if out, err := exec.Command("ip", "link", "del", n.link.hostIf).CombinedOutput(); err != nil {
		return fmt.Sprintf(", veth %s LEFT: %v %s", n.link.hostIf, err, out)
	}
	return ", veth removed"
}

// EgressAddress is the host's address that the node's pods can reach
// (the bastion's kube.egress_address in tests).
func (k *KubeNode) EgressAddress() string { return k.net.link.host }
