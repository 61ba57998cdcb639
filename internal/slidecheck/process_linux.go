package slidecheck

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// contain makes the child the leader of its own process group, killed
// whole on cancellation, and killed by the kernel if this process dies
// first (see ingest's worker, which runs the same way).
func contain(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// limitAddressSpace sets this process's virtual memory limit to n bytes
// (never above its hard limit).
func limitAddressSpace(n int64) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &cur); err != nil {
		return err
	}
	v := uint64(n)
	if cur.Max != unix.RLIM_INFINITY && v > cur.Max {
		v = cur.Max
	}
	return unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: v, Max: v})
}
