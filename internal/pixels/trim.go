package pixels

/*
#include <malloc.h>
#include <vips/vips.h>
*/
import "C"

import (
	"os"
	"sync/atomic"
	"time"
)

// tuneMalloc sets glibc's malloc up for renders. By default it serves
// blocks from 128 KiB up (decoded tiles, libvips' region buffers,
// libjpeg's coefficient arrays: each render allocates a few megabytes in
// such blocks) with fresh mmaps, and gives an arena's free top back to
// the system past 128 KiB: the kernel then zeroes new pages and unmaps
// old ones on every render, some 10% of a thumbnail's CPU time under load
// (docs/RATIONALE.md, "Rendered requests against IIPImage"). Blocks up to
// 8 MiB now come from the arenas, and an arena keeps up to 16 MiB free at
// its top; Trim still hands everything back after large renders. An
// environment that tunes malloc itself is left alone.
func tuneMalloc() {
	for _, v := range []string{"GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} {
		if _, ok := os.LookupEnv(v); ok {
			return
		}
	}
	C.mallopt(C.M_MMAP_THRESHOLD, 8<<20)
	C.mallopt(C.M_TRIM_THRESHOLD, 16<<20)
}

var lastTrim atomic.Int64

// Trim hands memory that libvips and the codecs freed back to the
// operating system (glibc's malloc_trim). glibc keeps freed memory in its
// arenas, so after a large render the process's resident size would stay
// high and count against a container's limit. It runs at most once a
// second, since trimming takes the arenas' locks.
func Trim() {
	now := time.Now().UnixNano()
	last := lastTrim.Load()
	if now-last < int64(time.Second) || !lastTrim.CompareAndSwap(last, now) {
		return
	}
	C.malloc_trim(0)
}

// Version returns the version of the libvips the process runs with, e.g.
// "8.14.1". Rendered bytes depend on it, so it is part of cache keys.
func Version() string { return C.GoString(C.vips_version_string()) }
