package ingest

import (
	"os/exec"
	"syscall"
)

// contain makes the worker the leader of its own process group, and
// cancellation (a time limit, a shutdown) kill that whole group, so that
// nothing the worker started outlives it. The kernel also kills the worker
// if this process dies without killing it (SIGKILL, a crash), so that no
// worker outlives it; it does so when the thread that started the worker
// ends, so Subprocess keeps its goroutine locked to that thread until the
// worker is waited for.
func contain(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
