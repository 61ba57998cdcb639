package pixels

/*
#cgo LDFLAGS: -lopenjph -lstdc++
#cgo CXXFLAGS: -O2 -std=c++14
#cgo pkg-config: vips openjph
#include <stdlib.h>
#include "htj2k.h"
*/
import "C"

import (
	"fmt"
	"image"
	"io"
	"os"
	"runtime/cgo"
	"unsafe"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// Debian's openjph.pc names no library (its Libs line is empty), hence
// the explicit -lopenjph next to pkg-config, which still checks that the
// package is installed.

// msgHTUnsupported is the public message for an HT codestream that the
// HT decoder cannot read right: refused, never decoded by OpenJPEG into
// grey.
const msgHTUnsupported = "this High-Throughput JPEG 2000 codestream uses features the server cannot decode correctly"

// probeJ2K returns how the JPEG 2000 codestream of in is coded, nil when
// the probe cannot tell (libvips then reports what is wrong, if anything).
func probeJ2K(in engine.Input) (*probe.J2KCoding, error) {
	r, size, closeFn, err := inputReader(in)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	info, err := probe.Read(r, size)
	if err != nil || len(info.Levels) == 0 {
		return nil, nil
	}
	return info.Levels[0].J2K, nil
}

// renderHT executes p on the level in.Level of the High-Throughput JPEG
// 2000 codestream c, decoding with OpenJPH only the region p needs.
func (r *render) renderHT(in engine.Input, c *probe.J2KCoding, p *plan.Plan, opt engine.EncodeOptions, w io.Writer) error {
	if err := checkHT(c); err != nil {
		return err
	}
	rd, size, closeFn, err := inputReader(in)
	if err != nil {
		return err
	}
	defer closeFn()
	rs := &readerSource{ctx: r.ctx, r: rd, size: size}
	r.sources = append(r.sources, rs)
	img, at, err := r.loadHT(rs, c, in.Level.Page, p.LevelRegion)
	if err != nil {
		return err
	}
	// The image is the region (clipped to the level): the plan's region
	// is moved to its origin.
	q := *p
	q.LevelRegion = p.LevelRegion.Sub(at)
	return r.process(img, true, &q, opt, in.Overlay, w)
}

// inputReader returns in's bytes as an io.ReaderAt.
func inputReader(in engine.Input) (io.ReaderAt, int64, func(), error) {
	if in.Path == "" {
		return in.Reader, in.Size, func() {}, nil
	}
	f, err := os.Open(in.Path)
	if err != nil {
		return nil, 0, nil, fault.Wrap(fault.Internal, err, msgUnreadable)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, fault.Wrap(fault.Internal, err, msgUnreadable)
	}
	return f, st.Size(), func() { f.Close() }, nil
}

// checkHT refuses, with 501, codestreams that the HT decoder does not
// reconstruct as iiifd serves them: code-blocks mixing HT and classic
// coding, signed or subsampled components, components of several depths.
func checkHT(c *probe.J2KCoding) error {
	var why string
	switch {
	case c.Mixed:
		why = "code-blocks mix HT and classic coding"
	case c.Signed:
		why = "signed samples"
	case c.Subsampled:
		why = "subsampled components"
	case c.MixedDepth:
		why = "components of different depths"
	default:
		return nil
	}
	return fault.Wrap(fault.NotImplemented, fmt.Errorf("pixels: HTJ2K with %s", why), msgHTUnsupported)
}

// loadHT decodes region of the resolution level reduce of the HT
// codestream with OpenJPH, and returns it as a memory image, with the
// position of its top-left pixel in the level: the region clipped to the
// level. A tiled codestream is first cut down to the tiles under the
// region, so that only their bytes are read and decoded; an untiled one
// is read through the source, with the resolution levels above the one
// wanted skipped and decoding stopped below the region.
func (r *render) loadHT(rs *readerSource, c *probe.J2KCoding, reduce int, region image.Rectangle) (*C.VipsImage, image.Point, error) {
	var (
		data   []byte
		origin image.Point
		handle cgo.Handle
	)
	if c.Tiled && !c.PackedHeaders {
		tiles, err := probe.ReadJ2KTiles(readerAtFunc(rs.readAt), c)
		if err == nil {
			data, origin, err = tiles.Cut(reduce, region, func(p []byte, off int64) error {
				return rs.readAt(p, c.Offset+off)
			})
		}
		if err != nil {
			if rerr := r.readFailure(); rerr != nil {
				return nil, image.Point{}, rerr
			}
			return nil, image.Point{}, fault.Wrap(fault.Internal, err, msgUndecodable)
		}
	} else {
		handle = cgo.NewHandle(rs)
		defer handle.Delete()
	}
	var (
		img    *C.VipsImage
		ox, oy C.int
		errBuf [320]C.char
	)
	rel := region.Sub(origin)
	var ptr *C.uint8_t
	length := c.Length
	if data != nil {
		// Go memory, pinned for the call: OpenJPH keeps no pointer past
		// it (the image gets a copy of the pixels).
		ptr = (*C.uint8_t)(unsafe.Pointer(&data[0]))
		length = int64(len(data))
	}
	rc := C.iiifd_htj2k_load(ptr, C.uintptr_t(handle), C.int64_t(c.Offset), C.int64_t(length),
		C.int(reduce), C.int(rel.Min.X), C.int(rel.Min.Y), C.int(rel.Dx()), C.int(rel.Dy()),
		&img, &ox, &oy, &errBuf[0], C.size_t(len(errBuf)))
	if rc != 0 {
		if rerr := r.readFailure(); rerr != nil {
			return nil, image.Point{}, rerr
		}
		return nil, image.Point{}, fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: HTJ2K: %s", C.GoString(&errBuf[0])), msgUndecodable)
	}
	r.keep(img)
	return img, origin.Add(image.Pt(int(ox), int(oy))), nil
}

// readerAtFunc adapts a read function to io.ReaderAt.
type readerAtFunc func(p []byte, off int64) error

func (f readerAtFunc) ReadAt(p []byte, off int64) (int, error) {
	if err := f(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}
