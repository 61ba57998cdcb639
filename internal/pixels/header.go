package pixels

/*
#include "bridge.h"
*/
import "C"

import (
	"context"
	"runtime"
	"unsafe"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/probe"
)

// maxHeaderLevels bounds how many TIFF pages or sub-IFDs Header opens.
const maxHeaderLevels = 32

// Header reads the header of the image at path with libvips, decoding no
// pixels. It is HeaderOf for a local file.
func Header(path string) (probe.Info, error) {
	return HeaderOf(context.Background(), engine.Input{Path: path})
}

// HeaderOf reads the header of the image in (in.Level is not used) with
// libvips, decoding no pixels. It is the fallback for sources the pure-Go
// probe cannot size (HEIF and AVIF without an ispe box, unusual TIFFs...).
// It reports the format, size and bands, and as Levels the full image
// followed, for a pyramidal TIFF, by its reduced levels: sub-IFDs when the
// first page has them, else the following pages while each is smaller than
// the one before. Tile sizes are not reported. ctx bounds the reads of
// in.Reader.
func HeaderOf(ctx context.Context, in engine.Input) (probe.Info, error) {
	if err := ctx.Err(); err != nil {
		return probe.Info{}, err
	}
	if !started.Load() {
		return probe.Info{}, errNotStarted
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer C.vips_thread_shutdown()
	clearVipsError()

	i, err := openInput(ctx, in)
	if err != nil {
		return probe.Info{}, err
	}
	defer i.close()
	nick, ld, err := i.findLoader()
	if nick == "openslideload" && i.src == nil {
		// Only here: for files that the pure probe could not read or
		// named a slide, and that OpenSlide recognises as one. Renders
		// then read its levels as the header lists them.
		ld, err = openslideLoader, nil
	}
	if err != nil {
		return probe.Info{}, err
	}
	full := probe.Level{SubIFD: -1}
	img, err := i.load(nick, ld, full)
	if err != nil {
		return probe.Info{}, err
	}
	defer C.g_object_unref(C.gpointer(img))

	if ld.format == probe.Slide {
		return slideHeader(i.path, img)
	}
	full.Width, full.Height = int(img.Xsize), int(img.Ysize)
	info := probe.Info{
		Format: ld.format,
		Width:  full.Width,
		Height: full.Height,
		Bands:  int(img.Bands),
		Levels: []probe.Level{full},
	}
	if ld.format == probe.TIFF {
		info.Levels = append(info.Levels, tiffLevels(i, nick, ld, img)...)
	}
	if err := i.failed(); err != nil {
		return probe.Info{}, err
	}
	return info, nil
}

// tiffLevels returns the reduced levels of a pyramidal TIFF whose first
// page is img, loaded from in.
func tiffLevels(in *input, nick string, ld loader, img *C.VipsImage) []probe.Level {
	field := C.CString("n-subifds")
	defer C.free(unsafe.Pointer(field))
	subifds := int(C.iiifd_get_int(img, field, 0))

	var levels []probe.Level
	prevW, prevH := int(img.Xsize), int(img.Ysize)
	add := func(lv probe.Level) bool {
		l, err := in.load(nick, ld, lv)
		if err != nil {
			return false
		}
		w, h := int(l.Xsize), int(l.Ysize)
		C.g_object_unref(C.gpointer(l))
		// A pyramid level is smaller in both directions than the level
		// before it; anything else (thumbnails, masks, unrelated pages)
		// ends the pyramid.
		if w >= prevW || h >= prevH || w < 1 || h < 1 {
			return false
		}
		lv.Width, lv.Height = w, h
		levels = append(levels, lv)
		prevW, prevH = w, h
		return true
	}
	if subifds > 0 {
		for i := 0; i < min(subifds, maxHeaderLevels); i++ {
			if !add(probe.Level{SubIFD: i}) {
				break
			}
		}
		return levels
	}
	pages := int(C.vips_image_get_n_pages(img))
	for i := 1; i < min(pages, maxHeaderLevels); i++ {
		if !add(probe.Level{Page: i, SubIFD: -1}) {
			break
		}
	}
	return levels
}
