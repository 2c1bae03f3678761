package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nodeNet is the test cluster's own network and mount namespace, held by
// a small shell (the holder). Its network has loopback and the bridge cni0
// (10.88.0.1/24, the node's IP, on which the CNI bridge plugin puts the
// pods); nothing of it exists in the host's network. Its mount namespace
// has a private /run and its own /var/lib and /var/log (bind mounts from
// the work dir), so that the hard-coded paths of containerd, runc, CNI and
// the kubelet never touch the host's. The peers run in it through nsenter.
//
// The holder also cleans up: when its stdin closes (StopKubeNode, or the
// test process died), it kills every process left in its network
// namespace (the peers, the containerd shims) and in the node's cgroups
// (the containers), and removes those cgroups, the only host-global state
// (cgroupfs is not namespaced). Its mounts and the pods' network
// namespaces go with the namespaces once it exits.
type nodeNet struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   string
	done  chan struct{}
	netns *os.File    // /proc/PID/ns/net of the holder
	link  *egressLink // pods -> host (kubelet_net.go)
	cg    string      // cgroup name under every hierarchy
}

// nodeIP is the node's (and the bridge's) address inside the namespace.
const nodeIP = "10.88.0.1"

// holderScript runs as `sh -c SCRIPT holder WORKDIR CGROUP` in new network
// and mount namespaces.
const holderScript = `set -u
W=$1 CG=$2
trap '' INT HUP
fail() { echo "holder: $*"; exit 1; }
mount --make-rprivate / || fail "mount --make-rprivate /"
ip link set lo up || fail "lo up"
ip link add cni0 type bridge && ip addr add ` + nodeIP + `/24 dev cni0 && ip link set cni0 up || fail "bridge cni0"
mount -t tmpfs tmpfs /run || fail "tmpfs /run"
mkdir -p "$W/ns/varlib" "$W/ns/varlog" "$W/ns/sysctl"
mount --bind "$W/ns/varlib" /var/lib || fail "bind /var/lib"
mount --bind "$W/ns/varlog" /var/log || fail "bind /var/log"
# The kubelet sets these sysctls when they differ (on the host's kernel,
# /proc/sys is not namespaced for them): show it the values it wants.
for kv in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do
  f=${kv%=*} g=$(echo ${kv%=*} | tr / _)
  echo ${kv#*=} > "$W/ns/sysctl/$g" && mount --bind "$W/ns/sysctl/$g" "/proc/sys/$f" || fail "sysctl $f"
done
for d in /sys/fs/cgroup/*/; do [ -f "$d/cgroup.procs" ] && mkdir -p "$d$CG"; done
echo ready
cat >/dev/null
echo "cleanup"
me=$$ ns=$(readlink /proc/$$/ns/net)
# others sets $left to the processes in this network namespace but the
# holder (no subshell lists them, so none lists itself).
others() {
  left=""
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$me" ] && continue
    l=$(readlink "$p/ns/net" 2>/dev/null) || continue
    [ "$l" = "$ns" ] && left="$left $pid"
  done
}
incg() { find /sys/fs/cgroup/*/"$CG" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u; }
others; [ -n "$left" ] && kill -TERM $left 2>/dev/null
for i in $(seq 50); do others; [ -z "$left" ] && break; sleep 0.1; done
[ -n "$left" ] && kill -KILL $left 2>/dev/null
for i in $(seq 20); do others; [ -z "$left" ] && break; sleep 0.1; done
for i in $(seq 50); do
  left=$(incg); [ -z "$left" ] && break
  kill -KILL $left 2>/dev/null; sleep 0.1
done
for d in /sys/fs/cgroup/*/"$CG"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
n=0; for d in /sys/fs/cgroup/*/"$CG"; do [ -d "$d" ] && n=$((n+1)); done
others; set -- $left; np=$#; set -- $(incg)
echo "stopped: $np processes left in the namespace, $# in the cgroups, $n cgroup dirs left"
`

// startNodeNet makes the namespaces and waits until the holder set them up.
func startNodeNet(dir string) (*nodeNet, error) {
	n := &nodeNet{log: filepath.Join(dir, "holder.log"), done: make(chan struct{}),
		cg: "bastion-e2e-" + strconv.Itoa(os.Getpid())}
	out, err := os.Create(n.log)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	n.cmd = exec.Command("sh", "-c", holderScript, "holder", dir, n.cg)
	n.cmd.Stdout, n.cmd.Stderr = out, out
	// No Pdeathsig: if the test process dies, the holder sees its stdin
	// close and still cleans up. Its own process group keeps a Ctrl-C
	// meant for the test from killing it before that.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS, Setpgid: true}
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the namespace holder: %w", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(n.log)
		if strings.Contains(string(b), "ready\n") {
			break
		}
		select {
		case <-n.done:
			return nil, fmt.Errorf("the namespace holder exited: %s", b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("the namespace holder is not ready after 20 s: %s", b)
		}
	}
	if n.netns, err = os.Open(fmt.Sprintf("/proc/%d/ns/net", n.cmd.Process.Pid)); err != nil {
		n.stop()
		return nil, err
	}
	if err := n.addEgressLink(); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// enter is the command prefix that runs a program in the namespaces.
func (n *nodeNet) enter() []string {
	return []string{"nsenter", "--target", strconv.Itoa(n.cmd.Process.Pid), "--net", "--mount", "--"}
}

// dial connects to addr inside the namespace: the socket is made on a
// thread that joined the namespace (a socket stays in the namespace it was
// made in). The thread is never handed back: it ends with its goroutine.
func (n *nodeNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		// The thread goes back to the host's namespace before it is
		// unlocked. It must not end: the peers were started with
		// Pdeathsig, which fires when the thread that forked them ends,
		// and that may be this one.
		runtime.LockOSThread()
		host, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{nil, err}
			return
		}
		defer host.Close()
		if err := unix.Setns(int(n.netns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		// Only the socket is made here; connecting goes on elsewhere.
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if unix.Setns(int(host.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with this goroutine
		res <- result{c, err}
	}()
	r := <-res
	return r.c, r.err
}

// relay listens on addr in the host's network and passes every connection
// to the same address inside the namespace, until the listener closes.
func (n *nodeNet) relay(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				in, err := n.dial(ctx, "tcp", addr)
				cancel()
				if err != nil {
					return
				}
				defer in.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(in, c); closeWrite(in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, in); closeWrite(c); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	return l, nil
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// stop makes the holder clean up and waits for it; it returns its last
// line ("stopped: ...").
func (n *nodeNet) stop() (string, error) {
	_ = n.stdin.Close()
	select {
	case <-n.done:
	case <-time.After(60 * time.Second):
		return "", errors.New("the namespace holder did not finish its cleanup within 60 s")
	}
	if n.netns != nil {
		_ = n.netns.Close()
	}
	b, _ := os.ReadFile(n.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1] + n.delEgressLink(), nil
}
