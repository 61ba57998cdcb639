//go:build !linux

package ingest

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child when its
// parent dies: the worker is then killed by the parent on cancellation
// only.
func dieWithParent(cmd *exec.Cmd) {}
