package etcdtest

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes etcd exit if the test binary dies without cleaning up
// (a timeout's panic, a kill).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
