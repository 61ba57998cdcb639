package pixels

/*
#include <stdlib.h>
#include "slide.h"
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/iiifd/iiifd/internal/slidecheck"
)

// CheckSlide reads from the slide at path what the server will read
// through OpenSlide (its properties, a region at the start, the middle
// and the end of every level, the smallest level whole when it is at most
// 4 Mpixel, its associated images), and returns OpenSlide's error, or
// slidecheck.ErrNotSlide for a file OpenSlide does not recognise. It is meant for a child process (package slidecheck):
// OpenSlide is C code parsing vendors' formats, and a slide that crashes
// it there only ends that process. It needs no Startup.
func CheckSlide(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var msg [512]C.char
	switch C.iiifd_slide_check(cpath, &msg[0], C.size_t(len(msg))) {
	case 0:
		return nil
	case 1:
		return slidecheck.ErrNotSlide
	}
	return errors.New(C.GoString(&msg[0]))
}
