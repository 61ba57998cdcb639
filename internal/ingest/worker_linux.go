package ingest

import (
	"os/exec"
	"syscall"
)

// reap kills what is left of the process group of a worker that has been
// waited for: processes it started in the background. The group's id is
// free for reuse only once every member has gone, so this reaches no
// other process.
func reap(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

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
