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
	"os"
	"strings"
	"unsafe"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/probe"
)

// loader describes a libvips loader iiifd allows.
type loader struct {
	format probe.Format
	// random says the loader reads any region cheaply (tiled formats), so
	// it is opened for random access; the others are opened sequentially.
	random bool
	// scale says the loader takes shrink-on-load as "scale" rather than
	// "shrink".
	scale bool
}

// loaders is the allow-list of loaders, by libvips nickname. Anything else
// libvips could open (SVG, PDF, FITS, ImageMagick...) is refused: iiifd
// serves raster images, and every loader is attack surface. Each has a
// variant reading a VipsSource, nicknamed with "_source" appended.
var loaders = map[string]loader{
	"jpegload": {format: probe.JPEG},
	"pngload":  {format: probe.PNG},
	"gifload":  {format: probe.GIF},
	"webpload": {format: probe.WebP, scale: true},
	"tiffload": {format: probe.TIFF, random: true},
	"jp2kload": {format: probe.JP2, random: true},
	"heifload": {format: probe.HEIF, random: true},
}

// allowLoader checks the loader libvips found, by nickname: a file
// loader, or a source loader when fromSource is set.
func allowLoader(nick string, fromSource bool) (loader, error) {
	if strings.HasPrefix(nick, "magick") {
		// ImageMagick claims whatever no other loader takes, such as a
		// TIFF whose directory is missing: for iiifd that is an
		// unreadable file, not a format to support.
		return loader{}, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: no loader but %s", nick), msgUndecodable)
	}
	base, isSource := strings.CutSuffix(nick, "_source")
	ld, ok := loaders[base]
	if !ok || isSource != fromSource {
		return loader{}, fault.Wrap(fault.Unsupported,
			fmt.Errorf("pixels: loader %s is not allowed", nick), msgUnsupported)
	}
	return ld, nil
}

// findLoader returns the nickname and description of the loader for path.
func findLoader(path string) (string, loader, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", loader{}, fault.Wrap(fault.NotFound, err, msgNotFound)
		}
		return "", loader{}, fault.Wrap(fault.Internal, err, msgUndecodable)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	name := C.iiifd_find_load(cpath)
	if name == nil {
		return "", loader{}, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: no loader: %s", vipsError()), msgUndecodable)
	}
	nick := C.GoString(name)
	ld, err := allowLoader(nick, false)
	return nick, ld, err
}

// input is an Input made ready for libvips: the name of a local file, or
// a custom source reading the io.ReaderAt. Loaders hold their own
// references to the source, so it lives as long as the images loaded
// from it, past close.
type input struct {
	path string
	src  *C.VipsSource
	rs   *readerSource // nil for a file
}

// openInput prepares in for loading; the reader's reads are bounded by
// ctx. The caller must close the input.
func openInput(ctx context.Context, in engine.Input) (*input, error) {
	switch {
	case in.Path != "":
		return &input{path: in.Path}, nil
	case in.Reader == nil || in.Size < 0:
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: input without a path or a reader (size %d)", in.Size), msgProcess)
	case in.Size == 0:
		return nil, fault.Wrap(fault.Internal, errors.New("pixels: empty source"), msgUndecodable)
	}
	rs := &readerSource{ctx: ctx, r: in.Reader, size: in.Size}
	src, err := newSource(rs)
	if err != nil {
		return nil, err
	}
	return &input{src: src, rs: rs}, nil
}

// close drops the input's reference to its source.
func (i *input) close() {
	if i.src != nil {
		C.g_object_unref(C.gpointer(i.src))
		i.src = nil
	}
}

// failed returns the error to report when a read of the source failed:
// the context's error when it is done, else a fault; nil when no read
// failed (nor for files, whose reads libvips does itself).
func (i *input) failed() error {
	if i.rs == nil {
		return nil
	}
	err := i.rs.failed()
	if err == nil {
		return nil
	}
	if cerr := i.rs.ctx.Err(); cerr != nil {
		return cerr
	}
	return engine.ReadFault(err)
}

// findLoader returns the nickname and description of the loader for the
// input, sniffing a source's first bytes.
func (i *input) findLoader() (string, loader, error) {
	if i.src == nil {
		return findLoader(i.path)
	}
	name := C.iiifd_find_load_source(i.src)
	if name == nil {
		text := vipsError()
		if err := i.failed(); err != nil {
			return "", loader{}, err
		}
		return "", loader{}, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: no loader: %s", text), msgUndecodable)
	}
	nick := C.GoString(name)
	ld, err := allowLoader(nick, true)
	return nick, ld, err
}

// loaderFor returns the loader for level lv of the input: the one the
// header was read with, when the level says (OpenSlide for slides,
// libtiff for TIFFs, which libvips would hand to OpenSlide when they
// look like Aperio slides), else the one libvips finds.
func (i *input) loaderFor(lv probe.Level) (string, loader, error) {
	switch {
	case lv.OpenSlide:
		return "openslideload", openslideLoader, nil
	case lv.TIFF != nil && i.src != nil:
		return "tiffload_source", loaders["tiffload"], nil
	case lv.TIFF != nil:
		return "tiffload", loaders["tiffload"], nil
	}
	return i.findLoader()
}

// load loads the header of one level of the input with the loader nick;
// pixels come later, on demand. The caller owns the image.
func (i *input) load(nick string, ld loader, lv probe.Level) (*C.VipsImage, error) {
	if ld.format == probe.Slide {
		lv.OpenSlide = true
		return loadSlide(i.path, lv)
	}
	var cpath *C.char
	if i.src == nil {
		cpath = C.CString(i.path)
		defer C.free(unsafe.Pointer(cpath))
	}
	cnick := C.CString(nick)
	defer C.free(unsafe.Pointer(cnick))

	subifd := -1
	if ld.format == probe.TIFF && lv.SubIFD >= 0 {
		subifd = lv.SubIFD
	}
	shrink, scale := lv.Shrink, 0.0
	if ld.scale && shrink > 1 {
		shrink, scale = 0, 1/float64(lv.Shrink)
	}
	access := C.VIPS_ACCESS_SEQUENTIAL
	if ld.random {
		access = C.VIPS_ACCESS_RANDOM
	}
	var img *C.VipsImage
	// fail_on=error: truncated or corrupt data is an error, not a grey
	// or partly filled image, while mere warnings (say, stray bytes
	// after the end of a JPEG) still decode.
	if C.iiifd_load(cnick, cpath, i.src, C.int(lv.Page), C.int(subifd), C.int(shrink),
		C.double(scale), C.int(access), C.VIPS_FAIL_ON_ERROR, &img) != 0 {
		text := vipsError()
		if err := i.failed(); err != nil {
			return nil, err
		}
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: loading %s level %+v: %s", nick, lv, text), msgUndecodable)
	}
	return img, nil
}
