package ingest

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
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

// rlimits lists the limits of l as (resource, value) pairs; zero
// fields are left out.
func rlimits(l Limits) [][2]uint64 {
	var out [][2]uint64
	if l.AddressSpace > 0 {
		out = append(out, [2]uint64{unix.RLIMIT_AS, uint64(l.AddressSpace)})
	}
	if s := uint64(l.CPUTime.Seconds()); s > 0 {
		out = append(out, [2]uint64{unix.RLIMIT_CPU, s})
	}
	if l.OpenFiles > 0 {
		out = append(out, [2]uint64{unix.RLIMIT_NOFILE, uint64(l.OpenFiles)})
	}
	return out
}

// lowered is the limit v as process pid may have it: no higher than its
// current hard limit, which only privileged processes can raise. Soft and
// hard limits are both set, so the worker cannot raise its own either.
func lowered(pid int, resource int, v uint64) (*unix.Rlimit, error) {
	var cur unix.Rlimit
	if err := unix.Prlimit(pid, resource, nil, &cur); err != nil {
		return nil, err
	}
	if cur.Max != unix.RLIM_INFINITY && v > cur.Max {
		v = cur.Max
	}
	return &unix.Rlimit{Cur: v, Max: v}, nil
}

// limitProcess sets l on the running process pid.
func limitProcess(pid int, l Limits) error {
	for _, r := range rlimits(l) {
		lim, err := lowered(pid, int(r[0]), r[1])
		if err == nil {
			err = unix.Prlimit(pid, int(r[0]), lim, nil)
		}
		if err == unix.ESRCH {
			return nil // already gone: Wait reports how it ended
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setOwnLimits sets l on this process.
func setOwnLimits(l Limits) error { return limitProcess(0, l) }
