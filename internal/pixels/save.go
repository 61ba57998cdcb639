package pixels

/*
#include "bridge.h"
#include "save.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
)

// Layout is the form of a pyramid written by SavePyramid.
type Layout int

// Layouts.
const (
	// LayoutTIFF is one tiled, pyramidal TIFF file, each level a page.
	LayoutTIFF Layout = iota
	// LayoutIIIF is a directory of JPEG tiles in the IIIF Image API 3.0
	// level-0 layout: dst/{region}/{w},{h}/0/default.jpg for every tile at
	// every scale factor 1, 2, 4... down to the level that fits in one
	// tile. libvips' own info.json is left in dst; callers replace it.
	LayoutIIIF
)

// Compression is how the tiles of a pyramidal TIFF are compressed.
type Compression int

// Compressions.
const (
	CompressJPEG Compression = iota
	CompressWebP
	CompressDeflate
)

// PyramidOptions says how SavePyramid writes a pyramid. Zero fields take
// the defaults noted.
type PyramidOptions struct {
	Layout      Layout
	TileSize    int         // square tiles, 16..8192; default 512
	Compression Compression // LayoutTIFF only; LayoutIIIF writes JPEG
	Quality     int         // JPEG and WebP Q, 1..100; default 85
	BigTIFF     bool        // LayoutTIFF: write BigTIFF (files over 4 GiB)
	// Progress, when set, is called as the pyramid is computed, from
	// libvips' threads (one at a time, but not always the same one),
	// with percent rising from 0 to 100. It must return quickly.
	Progress func(Progress)
}

// Progress is a report of how far a save has come.
type Progress struct {
	Percent     int   // 0..100
	Done, Total int64 // pixels of the full-resolution image computed, and all of them
}

// Pyramid defaults.
const (
	DefaultTileSize = 512
	minTileSize     = 16
	maxTileSize     = 8192
)

// msgWrite is the public message of a pyramid that could not be written.
const msgWrite = "the pyramid could not be written"

// SavePyramid reads the image at src and writes it to dst as a pyramid in
// the layout opt asks for: a file (LayoutTIFF) or a directory
// (LayoutIIIF), which may exist already and is overwritten. All levels
// are built in one streaming pass over a sequentially opened source, so
// memory use is bounded by the tile size and the image width, not by the
// image size.
//
// Pixels are first brought to 8-bit sRGB, or 8-bit grey for grey sources,
// through an embedded ICC profile when there is one; alpha is kept, except
// for JPEG tiles, where it is flattened onto white. Metadata is not
// copied. EXIF orientation is not applied, as Render does not apply it.
//
// SavePyramid returns ctx.Err() when ctx is done before or while it works
// (the computation is killed), and *fault.Error values otherwise, whose
// public messages name no path. dst may be left half-written on failure:
// the caller removes it.
//
// Beware: libvips 8.14's pyramidal TIFF writer crashes the process (a
// segmentation fault while closing its half-written levels) when the
// save fails part-way, as it does on a truncated source or on
// cancellation. So the source is first decoded to its end once, with
// libvips' fail-on set to errors, and nothing kept (decodeAll): a
// truncated or damaged source is refused there, cleanly, before the save
// starts. That costs a second decode of the source. Cancellation can
// still hit the save part-way: callers that must survive that run
// LayoutTIFF saves in a child process (see package ingest).
func SavePyramid(ctx context.Context, src, dst string, opt PyramidOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !started.Load() {
		return errNotStarted
	}
	if opt.TileSize <= 0 {
		opt.TileSize = DefaultTileSize
	}
	if opt.Quality <= 0 {
		opt.Quality = engine.DefaultJPEGQuality
	}
	if err := opt.validate(); err != nil {
		return fault.Wrap(fault.Internal, err, msgWrite)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer C.vips_thread_shutdown()
	clearVipsError()

	r := newRender(ctx)
	defer r.close()

	nick, _, err := findLoader(src)
	// Pyramids are written upright: a source shown turned or mirrored
	// (an EXIF or TIFF orientation tag) is turned as it is read, and the
	// tag is not written, so that stored tiles can pass through as they
	// are. Turning reads out of order, so such a source is opened for
	// random access (libvips then decodes a large one to a temporary
	// file rather than to memory).
	var o int
	var img *C.VipsImage
	switch {
	case nick == "openslideload":
		// A whole-slide image in a format only OpenSlide reads (Aperio
		// SVS among them: libvips hands it to OpenSlide first).
		img, err = loadSlideWhole(src)
	case err != nil:
		return err
	default:
		// A truncated or damaged source is found here, before a save
		// that would crash on it.
		if err := decodeAll(ctx, src, nick); err != nil {
			return err
		}
		o = FileOrientation(src)
		img, err = loadSequential(src, nick, o > 1)
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	}
	r.keep(img)
	if o > 1 {
		img = r.upright(img, o)
	}

	img = r.colour(img, iiif.QualityDefault)
	jpegTiles := opt.Layout == LayoutIIIF || opt.Compression == CompressJPEG
	if r.err == nil && jpegTiles && hasAlpha(img) {
		img = r.step(img, "flatten", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_flatten(in, out, 255)
		})
		img = r.uchar(img)
	}
	if r.err != nil {
		return r.err
	}

	var progress *progressSink
	if opt.Progress != nil {
		progress = &progressSink{fn: opt.Progress}
		h := cgo.NewHandle(progress)
		// Deleted before r.close unreferences img, the signal's emitter,
		// and after the save, the only computation that emits it.
		defer h.Delete()
		C.iiifd_watch_progress(img, C.uintptr_t(h))
	}

	cdst := C.CString(dst)
	defer C.free(unsafe.Pointer(cdst))
	var rc C.int
	switch opt.Layout {
	case LayoutTIFF:
		rc = C.iiifd_tiffsave_pyramid(img, cdst, C.int(opt.TileSize),
			tiffCompression(opt.Compression), C.int(opt.Quality), cBool(opt.BigTIFF))
	case LayoutIIIF:
		// Huffman tables are not optimised: libvips' own dzsave default,
		// and tiles are small.
		suffix := C.CString(fmt.Sprintf(".jpg[Q=%d,strip]", opt.Quality))
		defer C.free(unsafe.Pointer(suffix))
		rc = C.iiifd_dzsave_iiif3(img, cdst, C.int(opt.TileSize), suffix)
	}
	if rc != 0 {
		text := vipsError()
		if err := ctx.Err(); err != nil {
			return err
		}
		public := msgWrite
		if isDecodeError(text) {
			public = msgUndecodable
		}
		return fault.Wrap(fault.Internal, fmt.Errorf("pixels: saving a pyramid: %s", text), "%s", public)
	}
	if progress != nil {
		// libvips' "eval" stops short of 100 %, and its "posteval" comes
		// after failures too: the end is reported here.
		total := int64(img.Xsize) * int64(img.Ysize)
		progress.report(100, total, total)
	}
	return nil
}

func (o PyramidOptions) validate() error {
	switch {
	case o.Layout != LayoutTIFF && o.Layout != LayoutIIIF:
		return fmt.Errorf("pixels: unknown layout %d", o.Layout)
	case o.Compression < CompressJPEG || o.Compression > CompressDeflate:
		return fmt.Errorf("pixels: unknown compression %d", o.Compression)
	case o.TileSize < minTileSize || o.TileSize > maxTileSize:
		return fmt.Errorf("pixels: tile size %d outside %d..%d", o.TileSize, minTileSize, maxTileSize)
	case o.Quality > 100:
		return errors.New("pixels: quality over 100")
	}
	return nil
}

func tiffCompression(c Compression) C.int {
	switch c {
	case CompressWebP:
		return C.IIIFD_TIFF_WEBP
	case CompressDeflate:
		return C.IIIFD_TIFF_DEFLATE
	}
	return C.IIIFD_TIFF_JPEG
}

// loadSequential opens the first page of path for sequential access, the
// only access a saver that writes top to bottom needs: libvips then
// decodes strip and flat formats in one pass keeping only a band of rows.
// With random set it opens it for random access instead.
func loadSequential(path, nick string, random bool) (*C.VipsImage, error) {
	access := C.int(C.VIPS_ACCESS_SEQUENTIAL)
	if random {
		access = C.VIPS_ACCESS_RANDOM
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cnick := C.CString(nick)
	defer C.free(unsafe.Pointer(cnick))
	var img *C.VipsImage
	if C.iiifd_load(cnick, cpath, nil, 0, -1, 0, 0, access,
		C.VIPS_FAIL_ON_ERROR, &img) != 0 {
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: loading %s: %s", nick, vipsError()), msgUndecodable)
	}
	return img, nil
}

// decodeAll decodes every pixel of the image at path once, failing on
// the first decode error, and keeps none: it finds a truncated or damaged
// source before a save that would crash on it. ctx's end stops it.
func decodeAll(ctx context.Context, path, nick string) error {
	img, err := loadSequential(path, nick, false)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	}
	r := newRender(ctx)
	r.keep(img)
	defer r.close()
	if C.iiifd_decode_all(img) != 0 {
		text := vipsError()
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fault.Wrap(fault.Internal, fmt.Errorf("pixels: decoding %s: %s", nick, text), "%s: %s", msgUndecodable, damage(text))
	}
	return nil
}

// damage says in a few public words what a decoder's error text says
// is wrong with a source; its text itself may name paths.
func damage(text string) string {
	t := strings.ToLower(text)
	switch {
	case strings.Contains(t, "premature end") || strings.Contains(t, "truncated") || strings.Contains(t, "read error") ||
		strings.Contains(t, "unexpected end") || strings.Contains(t, "out of data") || strings.Contains(t, "end of file"):
		return "it is truncated"
	}
	return "its data is damaged"
}

// progressSink is what the eval callback reaches through a cgo.Handle. It
// drops reports that do not move the percentage, since libvips reports
// after every tile.
type progressSink struct {
	fn   func(Progress)
	mu   sync.Mutex
	last int
	sent bool
}

// report passes a report on unless it does not move the percentage.
func (s *progressSink) report(percent int, done, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := min(max(percent, 0), 100)
	if s.sent && p <= s.last {
		return
	}
	s.sent, s.last = true, p
	s.fn(Progress{Percent: p, Done: done, Total: total})
}

//export iiifdGoProgress
func iiifdGoProgress(h C.uintptr_t, percent C.int, done, total C.gint64) {
	// libvips' "eval" stops short of 100 %: that is reported on success.
	cgo.Handle(h).Value().(*progressSink).report(min(int(percent), 99), int64(done), int64(total))
}
