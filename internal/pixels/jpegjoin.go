package pixels

/*
#cgo pkg-config: libjpeg
#include <stdlib.h>
#include "jpegjoin.h"
*/
import "C"

import (
	"fmt"
	"image"
	"unsafe"

	"github.com/iiifd/iiifd/internal/fault"
)

// JoinJPEG returns the part r of the image that the JPEG tiles form,
// across to a row, row by row, joined losslessly in the DCT domain: the
// coefficients of the blocks under r are copied from the tiles into one
// JPEG, with Huffman tables made for it, so the result decodes to exactly
// the tiles' pixels there. The tiles must be coded alike (the stored
// tiles of one level of a TIFF are: one set of tables), their size and
// r's corner multiples of the MCU. This is how an unscaled region over
// several stored tiles (a 512-pixel tile of a pyramid stored in 256-pixel
// tiles) is served without decoding and encoding. An error means the
// tiles could not be joined (the region is then better rendered).
func JoinJPEG(tiles [][]byte, across int, r image.Rectangle) ([]byte, error) {
	n := len(tiles)
	if n == 0 || across < 1 || n%across != 0 {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: join of %d tiles, %d across", n, across), msgProcess)
	}
	// The tiles are copied to C memory: the C side keeps pointers to
	// them in an array, which cgo does not allow of Go memory.
	ptrs := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(uintptr(0))))
	lens := C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.size_t(0))))
	defer C.free(ptrs)
	defer C.free(lens)
	ps := unsafe.Slice((**C.uchar)(ptrs), n)
	ls := unsafe.Slice((*C.size_t)(lens), n)
	for i, t := range tiles {
		if len(t) == 0 {
			for _, p := range ps[:i] {
				C.free(unsafe.Pointer(p))
			}
			return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: join: tile %d is empty", i), msgProcess)
		}
		ps[i] = (*C.uchar)(C.CBytes(t))
		ls[i] = C.size_t(len(t))
	}
	defer func() {
		for _, p := range ps {
			C.free(unsafe.Pointer(p))
		}
	}()
	var (
		out    *C.uchar
		size   C.size_t
		errBuf [200]C.char
	)
	if C.iiifd_jpeg_join((**C.uchar)(ptrs), (*C.size_t)(lens), C.int(n), C.int(across),
		C.int(r.Min.X), C.int(r.Min.Y), C.int(r.Dx()), C.int(r.Dy()), &out, &size, &errBuf[0], C.size_t(len(errBuf))) != 0 {
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: lossless JPEG join: %s", C.GoString(&errBuf[0])), msgProcess)
	}
	defer C.iiifd_jpeg_join_free(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}

// JoinJPEG is JoinJPEG, for the request pipeline.
func (Engine) JoinJPEG(tiles [][]byte, across int, r image.Rectangle) ([]byte, error) {
	return JoinJPEG(tiles, across, r)
}
