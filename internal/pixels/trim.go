package pixels

/*
#include <malloc.h>
#include <vips/vips.h>
*/
import "C"

import (
	"sync/atomic"
	"time"
)

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
