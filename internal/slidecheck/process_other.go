//go:build !linux

package slidecheck

import "os/exec"

// contain is a no-op where process groups and the parent-death signal
// are not available: the timeout still kills the child.
func contain(*exec.Cmd) {}

// limitAddressSpace is not available here.
func limitAddressSpace(int64) error { return nil }
