package pixels

/*
#cgo pkg-config: libturbojpeg
#include <stdlib.h>
#include "jpegcrop.h"
*/
import "C"

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/tracing"
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

// cropMosaicJPEG renders a plan that only crops JPEG tiles to a JPEG
// directly with TurboJPEG: the tiles under the region are decoded into one
// buffer and the region encoded, with none of libvips' pipeline, thread
// pool and per-request set-up, which cost a small render more than its
// pixels do. The decoder and encoder are libjpeg-turbo's, which libvips
// uses too, with the same upsampling and the same chroma subsampling
// (4:2:0 below quality 90), so the output differs from libvips' only by
// Huffman tables (not optimised here). It reports false, having written
// nothing, when the plan or the tiles are not for this path.
func cropMosaicJPEG(ctx context.Context, m engine.Mosaic, p *plan.Plan, opt engine.EncodeOptions, w io.Writer) (bool, error) {
	if p == nil || m.Overlay != nil || p.Format != iiif.FormatJPG || p.Rotation != 0 || p.Mirror ||
		p.Width != p.LevelRegion.Dx() || p.Height != p.LevelRegion.Dy() ||
		p.OutWidth != p.Width || p.OutHeight != p.Height || p.LevelRegion.Min.X < 0 || p.LevelRegion.Min.Y < 0 {
		return false, nil
	}
	if m.Check() != nil {
		return false, nil // RenderMosaic says what is wrong
	}
	if mw, mh := m.Size(); p.LevelRegion.Max.X > mw || p.LevelRegion.Max.Y > mh {
		return false, nil
	}
	var gray C.int // 0 colour, 1 grey, 2 as the tiles are
	switch p.Quality {
	case iiif.QualityDefault:
		gray = 2
	case iiif.QualityColor:
	case iiif.QualityGray:
		gray = 1
	default:
		return false, nil
	}
	if !started.Load() {
		return false, errNotStarted
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, span := tracing.Start(ctx, "encode", attribute.String("iiifd.format", string(p.Format)), attribute.Bool("iiifd.turbojpeg", true))
	n := len(m.Tiles)
	// The tile pointers go to C in C memory: a Go slice of Go pointers
	// may not be passed.
	ptrs := (*[1 << 20]*C.uchar)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(uintptr(0)))))[:n:n]
	lens := (*[1 << 20]C.size_t)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.size_t(0)))))[:n:n]
	sizes := (*[1 << 21]C.int)(C.malloc(C.size_t(2*n) * C.size_t(unsafe.Sizeof(C.int(0)))))[: 2*n : 2*n]
	defer C.free(unsafe.Pointer(&ptrs[0]))
	defer C.free(unsafe.Pointer(&lens[0]))
	defer C.free(unsafe.Pointer(&sizes[0]))
	var pins runtime.Pinner
	defer pins.Unpin()
	for i, t := range m.Tiles {
		if len(t.Data) == 0 {
			tracing.End(span, nil)
			return false, nil
		}
		pins.Pin(&t.Data[0])
		ptrs[i] = (*C.uchar)(unsafe.Pointer(&t.Data[0]))
		lens[i] = C.size_t(len(t.Data))
		sizes[2*i], sizes[2*i+1] = C.int(t.Width), C.int(t.Height)
	}
	var (
		out    *C.uchar
		size   C.size_t
		errBuf [200]C.char
	)
	r := p.LevelRegion
	rc := C.iiifd_jpeg_mosaic_crop(&ptrs[0], &lens[0], &sizes[0], C.int(n), C.int(m.Across), C.int(m.TileWidth), C.int(m.TileHeight),
		C.int(r.Min.X), C.int(r.Min.Y), C.int(r.Dx()), C.int(r.Dy()), C.int(opt.Resolved().JPEGQuality), gray,
		&out, &size, &errBuf[0], C.size_t(len(errBuf)))
	switch rc {
	case 1:
		tracing.End(span, nil)
		return false, nil // libvips converts what this path does not
	case 0:
	default:
		err := fault.Wrap(fault.Internal, fmt.Errorf("pixels: tiles: %s", C.GoString(&errBuf[0])), msgUndecodable)
		tracing.End(span, err)
		return true, err
	}
	defer C.iiifd_jpeg_free(out)
	_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(out)), int(size)))
	if err != nil {
		err = fmt.Errorf("pixels: writing the image: %w", err)
	}
	tracing.End(span, err)
	return true, err
}
