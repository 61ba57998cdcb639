package pixels

/*
#cgo pkg-config: libturbojpeg
#include <stdlib.h>
#include "jpegcrop.h"
*/
import "C"

import (
	"fmt"
	"image"
	"unsafe"

	"github.com/iiifd/iiifd/internal/fault"
)

// CropJPEG returns the part r of a JPEG, cut losslessly in the DCT
// domain: the coefficients of the blocks kept are copied as they are, so
// the result decodes to exactly the pixels the JPEG has there. r's corner
// must be on an MCU boundary (a multiple of 8 or 16 pixels, with the
// chroma subsampling). This is how the edge tiles of a JPEG-tiled TIFF,
// which TIFF pads to the full tile size, and the parts of stored tiles a
// plan asks for unscaled (tiles.TIFFCrop) pass through without being
// decoded and encoded again. An error means the JPEG could not be cut (it
// is then better rendered).
func CropJPEG(jpeg []byte, r image.Rectangle) ([]byte, error) {
	if len(jpeg) == 0 {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: crop of an empty JPEG"), msgProcess)
	}
	var (
		out    *C.uchar
		n      C.size_t
		errBuf [200]C.char
	)
	// Go memory, read during the call only.
	if C.iiifd_jpeg_crop((*C.uchar)(unsafe.Pointer(&jpeg[0])), C.size_t(len(jpeg)),
		C.int(r.Min.X), C.int(r.Min.Y), C.int(r.Dx()), C.int(r.Dy()), &out, &n, &errBuf[0], C.size_t(len(errBuf))) != 0 {
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: lossless JPEG crop: %s", C.GoString(&errBuf[0])), msgProcess)
	}
	defer C.iiifd_jpeg_free(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// CropJPEG is CropJPEG, for the request pipeline.
func (Engine) CropJPEG(jpeg []byte, r image.Rectangle) ([]byte, error) {
	return CropJPEG(jpeg, r)
}
