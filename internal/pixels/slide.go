package pixels

/*
#cgo pkg-config: openslide
#include "bridge.h"
#include "slide.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"unsafe"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/probe"
)

// Whole-slide images in formats only OpenSlide reads (NDPI, MRXS, Philips
// TIFF, Leica SCN, Ventana BIF, VMS...) are described, and converted by
// ingest, through libvips' OpenSlide loader; renders read the region a
// plan needs from kept OpenSlide handles (slidecache.go), and associated
// images through OpenSlide's API too. Aperio SVS and generic tiled TIFFs
// never reach OpenSlide: the TIFF path reads them as well, by range and
// with stored tiles passed through (see docs/RATIONALE.md).

// msgSlide is the public message of a slide OpenSlide could not read.
const msgSlide = "the whole-slide image is damaged or unreadable (OpenSlide could not read it)"

// maxSlideLevels bounds the levels read from a slide's properties.
const maxSlideLevels = 64

// slideTile is the tile size advertised for slide levels whose stored
// tiling OpenSlide does not report (MRXS, NDPI's strips): OpenSlide reads
// any region, so it only sets the grid viewers ask for.
const slideTile = 512

// openslideLoader is the loader entry for slides: tiles on demand.
var openslideLoader = loader{format: probe.Slide, random: true}

// loadSlide opens the whole level (or the associated image) lv of the
// slide at path through libvips' loader (for headers), with its
// transparent parts (outside the scanned area of sparse
// formats) flattened onto the slide's background colour. The caller owns
// the image.
func loadSlide(path string, lv probe.Level) (*C.VipsImage, error) {
	bg := lv.Background
	if path == "" {
		return nil, fault.New(fault.NotImplemented,
			"this whole-slide format is read by OpenSlide, which needs the slide on local disk; serve it from a local root")
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var img *C.VipsImage
	if lv.Associated != "" {
		// Premultiplied pixels over the background: a small image,
		// read whole.
		cassoc := C.CString(lv.Associated)
		defer C.free(unsafe.Pointer(cassoc))
		if C.iiifd_load_associated(cpath, cassoc, C.int(bg[0]), C.int(bg[1]), C.int(bg[2]), &img) != 0 {
			return nil, fault.Wrap(fault.Internal,
				fmt.Errorf("pixels: OpenSlide associated image %q: %s", lv.Associated, vipsError()), msgSlide)
		}
		return img, nil
	}
	if C.iiifd_load_slide(cpath, C.int(lv.Page), &img) != 0 {
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: OpenSlide level %d %q: %s", lv.Page, lv.Associated, vipsError()), msgSlide)
	}
	return flattenSlide(img, bg)
}

// loadSlideWhole opens the full-resolution level of the slide at path,
// flattened onto the background it declares, to be converted whole
// (iiifd ingest). The caller owns the image.
func loadSlideWhole(path string) (*C.VipsImage, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var img *C.VipsImage
	if C.iiifd_load_slide(cpath, 0, &img) != 0 {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: OpenSlide: %s", vipsError()), msgSlide)
	}
	return flattenSlide(img, probe.ParseBackground(prop(img, "openslide.background-color")))
}

// flattenSlide flattens OpenSlide's RGBA img (transparent outside the
// scanned area) onto bg, taking over the reference to img.
func flattenSlide(img *C.VipsImage, bg [3]uint8) (*C.VipsImage, error) {
	if img.Bands != 4 {
		return img, nil
	}
	var flat *C.VipsImage
	rc := C.iiifd_flatten_rgb(img, &flat, C.double(bg[0]), C.double(bg[1]), C.double(bg[2]))
	C.g_object_unref(C.gpointer(img))
	if rc != 0 {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: flatten slide: %s", vipsError()), msgProcess)
	}
	var out *C.VipsImage
	rc = C.iiifd_cast_uchar(flat, &out)
	C.g_object_unref(C.gpointer(flat))
	if rc != 0 {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: cast slide: %s", vipsError()), msgProcess)
	}
	return out, nil
}

// prop returns the string property name of img, "" when absent.
func prop(img *C.VipsImage, name string) string {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	s := C.iiifd_get_string(img, cname)
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// slideProps are the OpenSlide properties a slide's header is made of.
var slideProps = []string{
	"openslide.vendor", "openslide.mpp-x", "openslide.mpp-y", "openslide.objective-power",
	"openslide.background-color", "aperio.Date", "hamamatsu.Created", "leica.creation-date",
	"philips.DICOM_ACQUISITION_DATETIME", "ventana.ScanDate", "mirax.GENERAL.SLIDE_CREATIONDATETIME",
}

// slideHeader describes the slide at path, whose level 0 img is: its
// levels as OpenSlide lists them, its properties and its associated
// images.
func slideHeader(path string, img *C.VipsImage) (probe.Info, error) {
	props := map[string]string{}
	for _, k := range slideProps {
		if v := prop(img, k); v != "" {
			props[k] = v
		}
	}
	slide := probe.SlideFromProperties(props)
	info := probe.Info{
		Format: probe.Slide,
		Width:  int(img.Xsize),
		Height: int(img.Ysize),
		Bands:  3,
		Slide:  slide,
	}
	n, _ := strconv.Atoi(prop(img, "openslide.level-count"))
	for i := 0; i < min(max(n, 1), maxSlideLevels); i++ {
		num := func(f string) int {
			v, _ := strconv.Atoi(prop(img, fmt.Sprintf("openslide.level[%d].%s", i, f)))
			return v
		}
		lv := probe.Level{Page: i, SubIFD: -1, OpenSlide: true, Background: slide.Background,
			Width: num("width"), Height: num("height"),
			TileWidth: num("tile-width"), TileHeight: num("tile-height")}
		if i == 0 {
			lv.Width, lv.Height = info.Width, info.Height
		}
		if lv.TileWidth <= 0 || lv.TileHeight <= 0 || lv.TileWidth > 4096 || lv.TileHeight > 4096 {
			lv.TileWidth, lv.TileHeight = slideTile, slideTile
		}
		if lv.Width < 1 || lv.Height < 1 {
			break
		}
		if p := info.Levels; len(p) > 0 && (lv.Width > p[len(p)-1].Width || lv.Height > p[len(p)-1].Height) {
			break
		}
		info.Levels = append(info.Levels, lv)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	for _, name := range probe.AssociatedNames {
		cname := C.CString(name)
		var w, h C.int64_t
		ok := C.iiifd_associated_size(cpath, cname, &w, &h) == 0
		C.free(unsafe.Pointer(cname))
		if !ok || w > maxDim || h > maxDim {
			continue
		}
		slide.Associated = append(slide.Associated, probe.Associated{Name: name, Level: probe.Level{
			SubIFD: -1, OpenSlide: true, Associated: name, Background: slide.Background,
			Width: int(w), Height: int(h),
		}})
	}
	return info, nil
}

// maxDim is the largest side of an associated image served.
const maxDim = 1 << 16
