package main

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes the kernel kill the child process when the test
// binary dies, so that a test binary that crashes or times out leaves no
// service or broker running behind it.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
