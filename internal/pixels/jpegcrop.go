package pixels

/*
#cgo pkg-config: libturbojpeg
#include <stdlib.h>
#include "jpegcrop.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/iiifd/iiifd/internal/fault"
)

// CropJPEG returns the top-left width×height of a JPEG, cut losslessly in
// the DCT domain: the coefficients of the blocks kept are copied as they
// are, so the result decodes to exactly the pixels the JPEG has there.
// This is how the edge tiles of a JPEG-tiled TIFF, which TIFF pads to the
// full tile size, pass through without being decoded and encoded again.
// An error means the JPEG could not be cut (it is then better rendered).
func CropJPEG(jpeg []byte, width, height int) ([]byte, error) {
	if len(jpeg) == 0 {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: crop of an empty JPEG"), msgProcess)
	}
	var (
		out    *C.uchar
		n      C.size_t
		errBuf [200]C.char
	)
	// Go memory, read during the call only.
	if C.iiifd_jpeg_crop_top_left((*C.uchar)(unsafe.Pointer(&jpeg[0])), C.size_t(len(jpeg)),
		C.int(width), C.int(height), &out, &n, &errBuf[0], C.size_t(len(errBuf))) != 0 {
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: lossless JPEG crop: %s", C.GoString(&errBuf[0])), msgProcess)
	}
	defer C.iiifd_jpeg_free(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// CropJPEG is CropJPEG, for the request pipeline.
func (Engine) CropJPEG(jpeg []byte, width, height int) ([]byte, error) {
	return CropJPEG(jpeg, width, height)
}
