package ingest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill the worker if this process dies
// without killing it (SIGKILL, a crash), so that no worker outlives it.
// The kernel does so when the thread that started the worker ends, so
// Subprocess keeps its goroutine locked to that thread until the worker
// is waited for.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
