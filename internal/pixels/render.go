package pixels

/*
#include "bridge.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math"

	"runtime"
	"runtime/cgo"

	"sync"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/tracing"
)

// Public messages. They never contain paths or libvips' text, which go to
// the cause.
const (
	msgNotFound    = "the source image was not found"
	msgUndecodable = "the source image could not be decoded"
	msgUnsupported = "the source image format is not supported"
	msgProcess     = "the image could not be processed"
	msgEncode      = "the image could not be encoded"
	msgUnreadable  = "the source image could not be read"
)

var errNotStarted = fault.Wrap(fault.Internal,
	errors.New("pixels: Startup was not called"), msgProcess)

// Render reads the level in.Level of the image in, applies p and
// streams the image, encoded as p.Format, to w.
//
// Only what p needs is decoded: the level is loaded lazily, with random
// access for tiled formats (TIFF, JPEG 2000), so a crop reads only the
// tiles under it, and sequentially for strip formats (JPEG, PNG, WebP,
// GIF), so a crop decodes only down to its last row. The steps are: crop
// p.LevelRegion; bring the pixels to 8-bit sRGB or grey; apply the quality;
// flatten alpha onto white for JPEG; resize to exactly p.Width x p.Height;
// mirror, then rotate clockwise, giving exactly p.OutWidth x p.OutHeight;
// threshold for bitonal; encode without metadata.
//
// Render returns ctx.Err() when ctx is done before or while it works: the
// running libvips computation is killed. When w fails, Render stops and
// returns w's error (wrapped). Other failures are *fault.Error values
// whose public messages name no path. Some bytes may have been written
// to w when Render fails.
func Render(ctx context.Context, in engine.Input, p *plan.Plan, opt engine.EncodeOptions, w io.Writer) error {
	return execute(ctx, p, func(r *render) error {
		_, span := tracing.Start(ctx, "decode")
		if c := in.Level.J2K; c != nil && c.HT {
			tracing.End(span, nil)
			return r.renderHT(in, c, p, opt, w)
		}
		img, ld, err := r.load(in, p)
		tracing.End(span, err)
		if err != nil {
			return err
		}
		if ld.format == probe.JP2 && in.Level.J2K == nil {
			// A JPEG 2000 input given without its probe: look, as
			// OpenJPEG would decode an HT codestream into grey.
			c, err := probeJ2K(in)
			if err != nil {
				return err
			}
			if c != nil && c.HT {
				return r.renderHT(in, c, p, opt, w)
			}
		}
		return r.process(img, ld.random, p, opt, in.Overlay, w)
	})
}

// execute checks what every render needs, then runs run on one OS thread
// with a fresh render whose images are all released when it returns.
func execute(ctx context.Context, p *plan.Plan, run func(r *render) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !started.Load() {
		return errNotStarted
	}
	if err := checkPlan(p); err != nil {
		return err
	}

	// libvips keeps per-thread state (buffers freed by
	// vips_thread_shutdown); keep the whole render on one OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer C.vips_thread_shutdown()
	clearVipsError()

	r := newRender(ctx)
	defer r.close()
	return run(r)
}

func checkPlan(p *plan.Plan) error {
	if p == nil {
		return fault.Wrap(fault.Internal, errors.New("pixels: nil plan"), msgProcess)
	}
	if p.Width <= 0 || p.Height <= 0 || p.OutWidth <= 0 || p.OutHeight <= 0 ||
		p.LevelRegion.Empty() || p.Rotation < 0 || p.Rotation >= 360 ||
		math.IsNaN(p.Rotation) {
		return fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: invalid plan: region %v size %dx%d out %dx%d rotation %g",
				p.LevelRegion, p.Width, p.Height, p.OutWidth, p.OutHeight, p.Rotation),
			msgProcess)
	}
	if !canWrite(p.Format) {
		return fault.New(fault.NotImplemented, "the %s format is not supported by this server", p.Format)
	}
	return nil
}

// render is the state of one Render call. It records every image the
// render makes, so that all are unreferenced on every path, and so that
// all can be killed when the context is done.
type render struct {
	ctx      context.Context
	stopKill func() bool

	// sources are the render's readers, whose failures explain a
	// failed load or save.
	sources []*readerSource

	mu     sync.Mutex
	images []*C.VipsImage
	killed bool
	closed bool

	err error // the first error; later steps do nothing once it is set
}

func newRender(ctx context.Context) *render {
	r := &render{ctx: ctx}
	r.stopKill = context.AfterFunc(ctx, r.kill)
	return r
}

// kill asks libvips to stop computing this render's images, and keeps
// asking until the render is closed. libvips checks an image's kill flag
// whenever it prepares a region of it, so the computation stops within a
// tile or so, on whichever thread runs it; but the first check to see the
// flag also clears it, and a worker that sees it in a corner which does
// not pass the error on would let the computation run to its end, hence
// the repeats. kill may be called from any goroutine, any number of times.
func (r *render) kill() {
	if !r.setKill() {
		return
	}
	go func() {
		t := time.NewTicker(killRepeat)
		defer t.Stop()
		for range t.C {
			if !r.setKill() {
				return
			}
		}
	}()
}

// killRepeat is how often kill sets the kill flags again.
const killRepeat = 20 * time.Millisecond

// setKill sets the kill flag of every image of the render and reports
// whether it did: it does nothing once the render is closed, or, after
// the first time, while a repeat is already running.
func (r *render) setKill() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	for _, img := range r.images {
		C.vips_image_set_kill(img, 1)
	}
	if r.killed {
		return false // the first call's goroutine repeats it
	}
	r.killed = true
	return true
}

// keep records img as owned by the render.
func (r *render) keep(img *C.VipsImage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images = append(r.images, img)
	if r.killed {
		C.vips_image_set_kill(img, 1)
	}
}

// close unreferences every image of the render. After it, kill does
// nothing, so no image is touched after it is freed.
func (r *render) close() {
	r.stopKill()
	r.mu.Lock()
	r.closed = true
	images := r.images
	r.images = nil
	r.mu.Unlock()
	for i := len(images) - 1; i >= 0; i-- {
		C.g_object_unref(C.gpointer(images[i]))
	}
}

// step runs one libvips operation on img unless an earlier step failed,
// records its output and returns it. On failure it records the error and
// returns img.
func (r *render) step(img *C.VipsImage, name string, op func(in *C.VipsImage, out **C.VipsImage) C.int) *C.VipsImage {
	if r.err != nil {
		return img
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return img
	}
	var out *C.VipsImage
	if op(img, &out) != 0 {
		r.err = r.failure(name, msgProcess)
		return img
	}
	r.keep(out)
	return out
}

// failure builds the error for a failed libvips call: the context's error
// when it is done (the failure is then the kill), else a fault carrying
// libvips' message as its cause.
func (r *render) failure(step, public string) error {
	text := vipsError()
	if err := r.readFailure(); err != nil {
		return err
	}
	if public != msgUndecodable && isDecodeError(text) {
		public = msgUndecodable
	}
	return fault.Wrap(fault.Internal, fmt.Errorf("pixels: %s: %s", step, text), "%s", public)
}

// readFailure returns the context's error when it is done (a failure is
// then the kill), else the fault of a failed read of a source, else nil.
func (r *render) readFailure() error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	for _, s := range r.sources {
		if err := s.failed(); err != nil {
			return engine.ReadFault(err)
		}
	}
	return nil
}

// process executes p on img, the loaded level (random says it can be read
// out of order), and encodes the result to w: every step of a render after
// the load, shared by files and stitched tiles.
//
// libvips computes on demand: the transform span covers building the
// pipeline, and the encode span the pixel work itself (decoding the tiles
// read, resampling, rotating, compressing), which the encoder drives.
func (r *render) process(img *C.VipsImage, random bool, p *plan.Plan, opt engine.EncodeOptions, ov *engine.Overlay, w io.Writer) (err error) {
	_, span := tracing.Start(r.ctx, "transform")
	defer func() { tracing.End(span, err) }()
	// Crop. The planner's level sizes come from the header probe; clip to
	// what the decoder really produced in case they differ by a pixel.
	bounds := image.Rect(0, 0, int(img.Xsize), int(img.Ysize))
	region := p.LevelRegion.Intersect(bounds)
	if region.Empty() {
		return fault.Wrap(fault.Internal,
			fmt.Errorf("pixels: region %v outside the level %v", p.LevelRegion, bounds), msgProcess)
	}
	if region != bounds {
		img = r.step(img, "crop", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_extract_area(in, out, C.int(region.Min.X), C.int(region.Min.Y),
				C.int(region.Dx()), C.int(region.Dy()))
		})
	}

	img = r.colour(img, p.Quality)
	hasAlphaFormat := formatHasAlpha(p.Format)
	if !hasAlphaFormat && hasAlpha(img) {
		img = r.step(img, "flatten", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_flatten(in, out, 255)
		})
		img = r.uchar(img)
	}

	// A bitonal output thresholds the scaled pixels, so a level of
	// rounding turns pixels from black to white: it is scaled with
	// vips_resize's own arithmetic, which the edge's pure-Go engine
	// repeats exactly (see resize).
	exact := p.Quality == iiif.QualityBitonal
	if p.Orientation > 1 {
		// The crop is in stored pixels: scale it to the output's size as
		// stored, then turn it as shown. Turning reads its input out of
		// order, as rotation does: from a sequential decoder the scaled
		// image (bounded by the size limits) is held in memory first.
		w, h := plan.OrientedSize(p.Orientation, p.Width, p.Height)
		img = r.resize(img, w, h, exact)
		if !random {
			img = r.step(img, "materialise", func(in *C.VipsImage, out **C.VipsImage) C.int {
				return C.iiifd_copy_memory(in, out)
			})
		}
		img = r.orient(img, p.Orientation)
	} else {
		img = r.resize(img, p.Width, p.Height, exact)
	}

	if p.Mirror {
		img = r.step(img, "mirror", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_flip_horizontal(in, out)
		})
	}
	if p.Rotation != 0 {
		if !random {
			// Rotation reads its input out of order, which a sequential
			// decoder cannot serve. The scaled image is bounded by the
			// planner's size limits: hold it in memory.
			img = r.step(img, "materialise", func(in *C.VipsImage, out **C.VipsImage) C.int {
				return C.iiifd_copy_memory(in, out)
			})
		}
		img = r.rotate(img, p.Rotation, p.OutWidth, p.OutHeight, hasAlphaFormat)
	}
	if p.Quality == iiif.QualityBitonal {
		// Last, after every step that interpolates (resize, rotate), so
		// that only 0 and 255 remain, in every band, alpha included.
		img = r.step(img, "threshold", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_threshold(in, out)
		})
	}
	img = r.fit(img, p.OutWidth, p.OutHeight, C.VIPS_EXTEND_BACKGROUND, background(hasAlphaFormat))
	img = r.overlay(img, ov, p.Quality)
	if r.err != nil {
		return r.err
	}
	// A bitonal image without alpha can be written with one bit per pixel.
	oneBit := p.Quality == iiif.QualityBitonal && img.Bands == 1
	pixels := int64(p.OutWidth) * int64(p.OutHeight)
	tracing.End(span, nil)
	_, span = tracing.Start(r.ctx, "encode", attribute.String("iiifd.format", string(p.Format)))
	return r.save(img, p.Format, saveOptions(opt, p.Format, pixels, oneBit), w)
}

func (r *render) load(in engine.Input, p *plan.Plan) (*C.VipsImage, loader, error) {
	if in.Level.OpenSlide && in.Level.Associated == "" {
		// A slide's level: only the plan's region, from an open handle.
		img, err := r.loadSlideRegion(in.Path, in.Level, p.LevelRegion)
		return img, openslideLoader, err
	}
	i, err := openInput(r.ctx, in)
	if err != nil {
		return nil, loader{}, err
	}
	defer i.close()
	if i.rs != nil {
		r.sources = append(r.sources, i.rs)
	}
	nick, ld, err := i.loaderFor(in.Level)
	if err == nil {
		var img *C.VipsImage
		if img, err = i.load(nick, ld, in.Level); err == nil {
			r.keep(img)
			return img, ld, nil
		}
	}
	if cerr := r.ctx.Err(); cerr != nil {
		return nil, ld, cerr
	}
	return nil, ld, err
}

func hasAlpha(img *C.VipsImage) bool { return C.vips_image_hasalpha(img) != 0 }

func isGray(img *C.VipsImage) bool {
	switch C.vips_image_guess_interpretation(img) {
	case C.VIPS_INTERPRETATION_B_W, C.VIPS_INTERPRETATION_GREY16:
		return true
	}
	return false
}

// uchar casts img to 8 bits per sample unless it is already.
func (r *render) uchar(img *C.VipsImage) *C.VipsImage {
	if r.err != nil || img.BandFmt == C.VIPS_FORMAT_UCHAR {
		return img
	}
	return r.step(img, "cast", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.iiifd_cast_uchar(in, out)
	})
}

func (r *render) colourspace(img *C.VipsImage, space C.VipsInterpretation) *C.VipsImage {
	return r.step(img, "colourspace", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.iiifd_colourspace(in, out, C.int(space))
	})
}

// colour brings img to 8-bit sRGB, or 8-bit grey for grey sources, keeping
// alpha, and then applies the quality: gray and bitonal make one grey
// band (plus alpha), color makes sRGB, default keeps what the source is.
func (r *render) colour(img *C.VipsImage, q iiif.Quality) *C.VipsImage {
	if r.err != nil {
		return img
	}
	gray := isGray(img)
	target := C.VipsInterpretation(C.VIPS_INTERPRETATION_sRGB)
	if gray {
		target = C.VIPS_INTERPRETATION_B_W
	}
	if !gray && C.iiifd_has_icc(img) != 0 {
		// Colour-manage with the embedded profile (CMYK, Adobe RGB...).
		// A broken profile is not worth failing the request for: fall
		// back to libvips' own conversion below.
		var out *C.VipsImage
		if C.iiifd_icc_to_srgb(img, &out) == 0 {
			r.keep(out)
			img = out
		} else {
			warn("pixels: ignoring an unusable ICC profile: " + vipsError())
		}
	}
	if C.vips_image_guess_interpretation(img) != target || img.BandFmt != C.VIPS_FORMAT_UCHAR {
		img = r.colourspace(img, target)
	}
	img = r.uchar(img)

	// Keep the colour bands and one alpha band; drop any others.
	want := 3
	if gray {
		want = 1
	}
	if hasAlpha(img) {
		want++
	}
	if r.err == nil && int(img.Bands) > want {
		img = r.step(img, "bands", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_extract_bands(in, out, 0, C.int(want))
		})
	}

	switch q {
	case iiif.QualityGray, iiif.QualityBitonal:
		if !gray {
			img = r.colourspace(img, C.VIPS_INTERPRETATION_B_W)
		}
	case iiif.QualityColor:
		if gray {
			img = r.colourspace(img, C.VIPS_INTERPRETATION_sRGB)
		}
	}
	return r.uchar(img)
}

// resize scales img to exactly width x height with a Lanczos-3 kernel,
// with independent horizontal and vertical scales. Alpha is premultiplied
// around the resampling so that transparent pixels do not bleed colour.
// exact asks for vips_resize's arithmetic to the last rounding (no
// quarter-turned reduction).
func (r *render) resize(img *C.VipsImage, width, height int, exact bool) *C.VipsImage {
	if r.err != nil || (int(img.Xsize) == width && int(img.Ysize) == height) {
		return img
	}
	hscale := float64(width) / float64(img.Xsize)
	vscale := float64(height) / float64(img.Ysize)
	alpha := hasAlpha(img)
	if alpha {
		img = r.step(img, "premultiply", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_premultiply(in, out)
		})
	}
	img = r.step(img, "resize", func(in *C.VipsImage, out **C.VipsImage) C.int {
		if !exact && hscale > 0.25 && hscale < 1 && vscale > 0.25 && vscale < 1 {
			// A downscale by less than 4 both ways is, in vips_resize
			// (its gap of 2: no box shrink first), a Lanczos-3
			// reduction vertically (vips_reducev, vectorised with Orc)
			// then horizontally (vips_reduceh, plain C in libvips 8.14,
			// some five times slower per pixel and most of a
			// thumbnail's time). Done instead as a vertical reduction
			// of the image turned a quarter, then turned back: the same
			// kernel and sample positions, vips_resize's pixels within
			// fixed-point rounding (TestResizeZonePlate), in some 40% of
			// the time. The turns stream: each output strip needs a
			// strip of rows of the first reduction. That rounding is
			// within a level, but the edge engine repeats vips_resize
			// exactly, and a threshold (bitonal) makes a level a black
			// or white pixel: exact renders skip it.
			return C.iiifd_reduce_turned(in, out, C.double(1/hscale), C.double(1/vscale))
		}
		return C.iiifd_resize(in, out, C.double(hscale), C.double(vscale))
	})
	if alpha {
		img = r.step(img, "unpremultiply", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_unpremultiply(in, out)
		})
	}
	img = r.uchar(img)
	// libvips rounds the output size; repeat the edge pixels if it came
	// out a pixel short, crop if a pixel long.
	return r.fit(img, width, height, C.VIPS_EXTEND_COPY, 0)
}

// fit makes img exactly width x height by cropping or extending it, keeping
// it centred.
func (r *render) fit(img *C.VipsImage, width, height int, extend C.VipsExtend, bg float64) *C.VipsImage {
	if r.err != nil || (int(img.Xsize) == width && int(img.Ysize) == height) {
		return img
	}
	w, h := int(img.Xsize), int(img.Ysize)
	if w > width || h > height {
		cw, ch := min(w, width), min(h, height)
		x, y := (w-cw)/2, (h-ch)/2
		img = r.step(img, "fit", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_extract_area(in, out, C.int(x), C.int(y), C.int(cw), C.int(ch))
		})
		w, h = cw, ch
	}
	if w < width || h < height {
		x, y := (width-w)/2, (height-h)/2
		img = r.step(img, "fit", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_embed(in, out, C.int(x), C.int(y), C.int(width), C.int(height),
				C.int(extend), C.double(bg))
		})
	}
	return img
}

// background is the value of pixels a rotation exposes: transparent
// (all bands 0, alpha included) for formats with alpha, white otherwise.
func background(alphaFormat bool) float64 {
	if alphaFormat {
		return 0
	}
	return 255
}

// formatHasAlpha reports whether iiifd keeps alpha when writing f.
func formatHasAlpha(f iiif.Format) bool {
	return f != iiif.FormatJPG && f != iiif.FormatPDF
}

// rotate turns img clockwise by deg degrees. Multiples of 90 are exact
// pixel moves; other angles resample with a bicubic interpolator onto the
// bounding box, exposing transparent corners (an alpha band is added as
// needed) or white ones for formats without alpha.
func (r *render) rotate(img *C.VipsImage, deg float64, outW, outH int, alphaFormat bool) *C.VipsImage {
	if r.err != nil {
		return img
	}
	var angle C.VipsAngle
	switch deg {
	case 90:
		angle = C.VIPS_ANGLE_D90
	case 180:
		angle = C.VIPS_ANGLE_D180
	case 270:
		angle = C.VIPS_ANGLE_D270
	}
	if angle != 0 {
		return r.step(img, "rot", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_rot(in, out, C.int(angle))
		})
	}

	alpha := hasAlpha(img)
	if alphaFormat && !alpha {
		img = r.step(img, "addalpha", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_addalpha(in, out)
		})
		alpha = true
	}
	if alpha {
		img = r.step(img, "premultiply", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_premultiply(in, out)
		})
	}
	bg := background(alphaFormat)
	img = r.step(img, "rotate", func(in *C.VipsImage, out **C.VipsImage) C.int {
		return C.iiifd_rotate(in, out, C.double(deg), C.double(bg))
	})
	if alpha {
		img = r.step(img, "unpremultiply", func(in *C.VipsImage, out **C.VipsImage) C.int {
			return C.iiifd_unpremultiply(in, out)
		})
	}
	img = r.uchar(img)
	return r.fit(img, outW, outH, C.VIPS_EXTEND_BACKGROUND, bg)
}

// sink is what the custom target's callbacks reach through a cgo.Handle.
// libvips calls them from its own threads, one at a time.
type sink struct {
	w   io.Writer
	r   *render
	mu  sync.Mutex
	err error // the writer's error
}

func (r *render) save(img *C.VipsImage, f iiif.Format, opt C.iiifd_save_options, w io.Writer) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	saver, seeks := saverOf(f)
	if seeks {
		return r.saveMemory(img, f, saver, opt, w)
	}
	s := &sink{w: w, r: r}
	h := cgo.NewHandle(s)
	defer h.Delete()
	rc := C.iiifd_save(img, saver, &opt, C.uintptr_t(h))

	s.mu.Lock()
	werr := s.err
	s.mu.Unlock()
	if rc == 0 {
		return nil
	}
	if werr != nil {
		vipsError() // clear it: the writer's error says it all
		return fmt.Errorf("pixels: writing the image: %w", werr)
	}
	return r.saveFailure(f)
}

// writeChunk is how much of an encoded image saveMemory hands to the
// writer at once, checking the context in between.
const writeChunk = 256 << 10

// saveMemory encodes img into memory, then copies it to w.
func (r *render) saveMemory(img *C.VipsImage, f iiif.Format, saver C.int, opt C.iiifd_save_options, w io.Writer) error {
	var blob *C.VipsBlob
	if C.iiifd_save_memory(img, saver, &opt, &blob) != 0 {
		return r.saveFailure(f)
	}
	defer C.iiifd_blob_unref(blob)
	var n C.size_t
	data := C.iiifd_blob_data(blob, &n)
	buf := unsafe.Slice((*byte)(data), int(n))
	for len(buf) > 0 {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		chunk := buf[:min(len(buf), writeChunk)]
		m, err := w.Write(chunk)
		if err == nil && m < len(chunk) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fmt.Errorf("pixels: writing the image: %w", err)
		}
		buf = buf[len(chunk):]
	}
	return nil
}

// saveFailure builds the error for a failed save: the context's error when
// it is done (the failure is then the kill), else a fault. Pixels are
// decoded during the save, so a bad source shows up here too.
func (r *render) saveFailure(f iiif.Format) error {
	text := vipsError()
	if err := r.readFailure(); err != nil {
		return err
	}
	public := msgEncode
	if isDecodeError(text) {
		public = msgUndecodable
	}
	return fault.Wrap(fault.Internal, fmt.Errorf("pixels: saving %s: %s", f, text), "%s", public)
}

//export iiifdGoWrite
func iiifdGoWrite(h C.uintptr_t, data unsafe.Pointer, n C.int64_t) C.int64_t {
	s := cgo.Handle(h).Value().(*sink)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.r.ctx.Err() != nil {
		return -1
	}
	// The writer must not keep buf (io.Writer's contract): it is libvips'
	// buffer, reused once this returns.
	buf := unsafe.Slice((*byte)(data), int(n))
	m, err := s.w.Write(buf)
	if err == nil && m < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.err = err
		s.r.kill() // stop the computation promptly
		return -1
	}
	return C.int64_t(m)
}

//export iiifdGoEnd
func iiifdGoEnd(h C.uintptr_t) C.int {
	s := cgo.Handle(h).Value().(*sink)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return -1
	}
	return 0
}

func warn(msg string) {
	if f := warnFunc.Load(); f != nil {
		(*f)(msg)
	}
}
