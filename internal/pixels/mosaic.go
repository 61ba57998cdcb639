package pixels

/*
#include "bridge.h"
#include "mosaic.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/tracing"
)

// RenderMosaic decodes the tiles of m, joins them into one image and
// executes p on it exactly as Render does on a loaded level:
// p.LevelRegion is in the pixels of the joined image. Each tile must
// decode to the size m gives it; a tile that does not, or does not
// decode, fails the render with a fault that names no path.
func RenderMosaic(ctx context.Context, m engine.Mosaic, p *plan.Plan, opt engine.EncodeOptions, w io.Writer) error {
	if err := m.Check(); err != nil {
		return fault.Wrap(fault.Internal, err, msgProcess)
	}
	return execute(ctx, p, func(r *render) error {
		_, span := tracing.Start(ctx, "decode")
		imgs, err := r.loadTiles(m)
		tracing.End(span, err)
		if err != nil {
			return err
		}
		var joined *C.VipsImage
		if C.iiifd_arrayjoin(&imgs[0], C.int(len(imgs)), C.int(m.Across),
			C.int(m.TileWidth), C.int(m.TileHeight), &joined) != 0 {
			return r.failure("arrayjoin", msgProcess)
		}
		r.keep(joined)
		// arrayjoin gives every cell the full grid size; the last column
		// and row may hold less.
		img := joined
		if w, h := m.Size(); int(img.Xsize) != w || int(img.Ysize) != h {
			img = r.step(img, "crop", func(in *C.VipsImage, out **C.VipsImage) C.int {
				return C.iiifd_extract_area(in, out, 0, 0, C.int(w), C.int(h))
			})
		}
		if r.err != nil {
			return r.err
		}
		// Tiles are loaded for random access (each is decoded whole, into
		// memory, when first read), so the joined image is too.
		return r.process(img, true, p, opt, m.Overlay, w)
	})
}

// loadTiles opens every tile of m, checking its size.
func (r *render) loadTiles(m engine.Mosaic) ([]*C.VipsImage, error) {
	imgs := make([]*C.VipsImage, len(m.Tiles))
	for i, t := range m.Tiles {
		img, err := r.loadBytes(t.Data)
		if err != nil {
			return nil, err
		}
		if int(img.Xsize) != t.Width || int(img.Ysize) != t.Height {
			return nil, fault.Wrap(fault.Internal,
				fmt.Errorf("pixels: tile %d is %dx%d, want %dx%d", i, img.Xsize, img.Ysize, t.Width, t.Height),
				msgUndecodable)
		}
		imgs[i] = img
	}
	return imgs, nil
}

// loadBytes loads an encoded image held in memory with an allow-listed
// loader, for random access. The render owns the image.
func (r *render) loadBytes(data []byte) (*C.VipsImage, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fault.Wrap(fault.Internal, errors.New("pixels: empty tile"), msgUndecodable)
	}
	src := C.iiifd_source_from_bytes(unsafe.Pointer(&data[0]), C.size_t(len(data)))
	if src == nil {
		return nil, r.failure("source", msgProcess)
	}
	defer C.g_object_unref(C.gpointer(src))
	name := C.iiifd_find_load_source(src)
	if name == nil {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: tile: no loader: %s", vipsError()), msgUndecodable)
	}
	if _, err := allowLoader(C.GoString(name), true); err != nil {
		return nil, err
	}
	var img *C.VipsImage
	if C.iiifd_load_source(name, src, C.VIPS_ACCESS_RANDOM, C.VIPS_FAIL_ON_ERROR, &img) != 0 {
		return nil, r.failure("tile load", msgUndecodable)
	}
	r.keep(img)
	return img, nil
}
