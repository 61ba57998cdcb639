package pixels

/*
#include "bridge.h"
#include "slide.h"
*/
import "C"

import (
	"container/list"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/probe"
)

// Regions of slides read through OpenSlide are read with OpenSlide's API
// from handles kept open between requests. Opening a slide parses its
// whole structure (Philips' XML, NDPI's and MIRAX's indexes), which
// libvips' loader does on every load; OpenSlide's Deep Zoom server keeps
// one handle per slide for the same reason, and handles are safe to read
// from many threads at once. A region is read whole, as the plan's level
// region (which the planner bounds and Cost charges for), then placed in
// a canvas of the level's size, so that the rest of the render is the
// same as for any image.

// maxSlideHandles bounds the slides kept open (each holds a file
// descriptor and OpenSlide's index of the slide).
const maxSlideHandles = 32

type slideHandle struct {
	key  string
	osr  unsafe.Pointer
	refs int
	elem *list.Element // in slideHandles.idle while refs is 0
	// once marks a handle for one read, never kept; broken one that
	// OpenSlide reported an error on (its errors are sticky), closed when
	// released.
	once, broken bool
}

// openSlide opens the slide at path with OpenSlide.
func openSlide(path string) (unsafe.Pointer, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	osr := C.iiifd_slide_open(cpath)
	if osr == nil {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: OpenSlide: %s", vipsError()), msgSlide)
	}
	return osr, nil
}

var slideHandles = struct {
	sync.Mutex
	open map[string]*slideHandle
	idle *list.List // of *slideHandle, least recently used first
}{open: map[string]*slideHandle{}, idle: list.New()}

// fileKey names the version of the file at path: its device, inode, size
// and modification time, so that a replaced slide is opened afresh, and a
// descriptor path (/proc/self/fd/N, of the source cache) by the file it
// leads to rather than by its number, which is reused.
func fileKey(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprint(path, fi.Size(), fi.ModTime().UnixNano()), nil
	}
	return fmt.Sprint(st.Dev, st.Ino, fi.Size(), fi.ModTime().UnixNano()), nil
}

// stablePath returns the name a handle kept open may reopen the file by:
// OpenSlide opens a slide's file again by name whenever it needs another
// libtiff handle, so a descriptor path (/proc/self/fd/N, which the local
// source and the source cache hand out) must be resolved to the file's
// own name, as it is valid only while the caller holds the descriptor.
// ok is false when the file has no name any more (removed from the
// source cache meanwhile): then only a handle for this one read will do.
func stablePath(path string) (string, bool) {
	if !strings.HasPrefix(path, "/proc/self/fd/") {
		return path, true
	}
	target, err := os.Readlink(path)
	if err != nil || strings.HasSuffix(target, " (deleted)") || !filepath.IsAbs(target) {
		return path, false
	}
	return target, true
}

// acquireSlide returns an open handle on the slide at path; the caller
// releases it.
func acquireSlide(path string) (*slideHandle, error) {
	key, err := fileKey(path)
	if err != nil {
		return nil, fault.Wrap(fault.NotFound, err, msgNotFound)
	}
	name, keep := stablePath(path)
	if !keep {
		osr, err := openSlide(path)
		if err != nil {
			return nil, err
		}
		return &slideHandle{osr: osr, refs: 1, once: true}, nil
	}
	if k2, err := fileKey(name); err != nil || k2 != key {
		// Renamed or replaced since the descriptor was opened.
		osr, err := openSlide(path)
		if err != nil {
			return nil, err
		}
		return &slideHandle{osr: osr, refs: 1, once: true}, nil
	}
	h := &slideHandles
	h.Lock()
	if s, ok := h.open[key]; ok {
		if s.elem != nil {
			h.idle.Remove(s.elem)
			s.elem = nil
		}
		s.refs++
		h.Unlock()
		return s, nil
	}
	h.Unlock()

	osr, err := openSlide(name)
	if err != nil {
		return nil, err
	}
	h.Lock()
	defer h.Unlock()
	if s, ok := h.open[key]; ok {
		// Opened meanwhile by another render: use that one.
		C.iiifd_slide_close(osr)
		if s.elem != nil {
			h.idle.Remove(s.elem)
			s.elem = nil
		}
		s.refs++
		return s, nil
	}
	s := &slideHandle{key: key, osr: osr, refs: 1}
	h.open[key] = s
	for len(h.open) > maxSlideHandles && h.idle.Len() > 0 {
		old := h.idle.Remove(h.idle.Front()).(*slideHandle)
		delete(h.open, old.key)
		C.iiifd_slide_close(old.osr)
	}
	return s, nil
}

// release gives the handle back: kept open for the next request while
// within the bound, else closed.
func (s *slideHandle) release() {
	if s.once {
		C.iiifd_slide_close(s.osr)
		return
	}
	h := &slideHandles
	h.Lock()
	defer h.Unlock()
	s.refs--
	if s.refs > 0 {
		return
	}
	if s.broken || len(h.open) > maxSlideHandles {
		if h.open[s.key] == s {
			delete(h.open, s.key)
		}
		C.iiifd_slide_close(s.osr)
		return
	}
	s.elem = h.idle.PushBack(s)
}

// markBroken keeps the handle from further readers: OpenSlide's errors
// are sticky, so a handle that failed once fails every later read. The
// next request opens the slide afresh (and fails again if the slide is
// damaged, or reads it if the failure was the file's, since replaced).
func (s *slideHandle) markBroken() {
	if s.once {
		return
	}
	h := &slideHandles
	h.Lock()
	defer h.Unlock()
	s.broken = true
	if h.open[s.key] == s {
		delete(h.open, s.key)
	}
}

// loadSlideRegion reads region of level lv of the slide in, flattened
// onto the slide's background, as an image of the level's size whose
// pixels outside region are black (the render crops region). The image
// is kept by the render.
func (r *render) loadSlideRegion(path string, lv probe.Level, region image.Rectangle) (*C.VipsImage, error) {
	if path == "" {
		return nil, fault.New(fault.NotImplemented,
			"this whole-slide format is read by OpenSlide, which needs the slide on local disk; serve it from a local root or give the server a source cache")
	}
	region = region.Intersect(image.Rect(0, 0, lv.Width, lv.Height))
	if region.Empty() {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("pixels: region outside slide level %dx%d", lv.Width, lv.Height), msgProcess)
	}
	s, err := acquireSlide(path)
	if err != nil {
		return nil, err
	}
	defer s.release()
	bg := lv.Background
	var img *C.VipsImage
	if C.iiifd_slide_region(s.osr, C.int(lv.Page), C.int64_t(region.Min.X), C.int64_t(region.Min.Y),
		C.int(region.Dx()), C.int(region.Dy()), C.int(bg[0]), C.int(bg[1]), C.int(bg[2]), &img) != 0 {
		s.markBroken()
		return nil, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: OpenSlide level %d region %v: %s", lv.Page, region, vipsError()), msgSlide)
	}
	r.keep(img)
	img = r.step(img, "embed", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.iiifd_embed(in, out, C.int(region.Min.X), C.int(region.Min.Y), C.int(lv.Width), C.int(lv.Height),
			C.VIPS_EXTEND_BLACK, 0)
	})
	return img, r.err
}
