//go:build !linux

package ingest

import "os/exec"

// contain does nothing where the kernel cannot kill a child when its
// parent dies: the worker alone is then killed by the parent on
// cancellation.
func contain(cmd *exec.Cmd) {}

// reap does nothing: the worker has no process group of its own here.
func reap(cmd *exec.Cmd) {}

// limitProcess does nothing: the limits are Linux's (prlimit).
func limitProcess(pid int, l Limits) error { return nil }

// setOwnLimits does nothing here.
func setOwnLimits(l Limits) error { return nil }
