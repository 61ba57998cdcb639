// Package goengine is iiifd's image engine in pure Go: what renders
// where cgo and libvips cannot go, in a WebAssembly worker at the edge and
// in a browser's Service Worker. It implements the engine interface of
// the request pipeline (service.Engine) with the answers of the native
// libvips engine (package pixels): the same output sizes, geometry,
// rotation bounding boxes and backgrounds, colour handling and alpha
// rules, so that both engines serve the same images within a small
// tolerance.
//
// Its steps copy libvips 8.14's arithmetic where it matters for the
// pixels (the shrink and Lanczos-3 reduce of vips_resize with their
// fixed-point tables and pixel offsets, the bicubic affine transform of
// vips_rotate and of upsizing, the sRGB to grey conversion in linear
// light, the flatten, premultiply and threshold steps), because visible
// differences between the edge and the server would make one URL mean
// two images.
//
// Memory is the constraint that shapes it: a Cloudflare worker has a
// 128 MB isolate. A render streams: stored tiles are decoded one tile row
// at a time, and only the rows under the plan's region are kept; scaling
// reads rows as they come and keeps only the rows its filters span; an
// unrotated PNG is encoded row by row as it is made. Only rotation (which
// reads its input out of order), JPEG (whose encoder takes a whole image,
// held as 4:2:0 YCbCr at 1.5 bytes a pixel) and GIF (which needs all the
// pixels to choose a palette) hold a whole output image.
package goengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"runtime/debug"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"

	// Decoders for image.Decode and image.DecodeConfig.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/webp"
)

// Public messages, as the native engine words them: they never contain
// paths or decoder text, which go to the cause.
const (
	msgUndecodable = "the source image could not be decoded"
	msgUnsupported = "the source image format is not supported"
	msgProcess     = "the image could not be processed"
	msgEncode      = "the image could not be encoded"
)

// DefaultMaxSourcePixels bounds the flat images (JPEG, PNG, GIF, WebP
// read through Input) that Render decodes whole: 16 megapixels, some 48
// MiB of RGB, which leaves room in a 128 MB isolate for the output and
// the encoder. Larger flat sources are refused with a 501 before any
// pixel is decoded; they should be stored as tiled pyramids.
const DefaultMaxSourcePixels = 16 << 20

// Limits bounds what the engine decodes. Zero fields take the defaults
// noted.
type Limits struct {
	// MaxSourcePixels bounds the width times height of a flat source
	// that Render decodes whole; default DefaultMaxSourcePixels.
	MaxSourcePixels int64
}

// Engine renders plans with pure-Go decoders, scalers and encoders. It
// is safe for concurrent use; it holds no state between renders.
type Engine struct {
	opt engine.EncodeOptions
	lim Limits
}

// New returns an engine that encodes with opt (resolved to its
// defaults) and decodes within lim (its first value; defaults when none
// is given).
func New(opt engine.EncodeOptions, lim ...Limits) *Engine {
	e := &Engine{opt: opt.Resolved()}
	if len(lim) > 0 {
		e.lim = lim[0]
	}
	if e.lim.MaxSourcePixels <= 0 {
		e.lim.MaxSourcePixels = DefaultMaxSourcePixels
	}
	return e
}

// formats are the output formats this engine writes. WebP is left out:
// see docs/RATIONALE.md ("The pure-Go engine").
var formats = []iiif.Format{iiif.FormatJPG, iiif.FormatPNG, iiif.FormatGIF}

// Formats lists the output formats the engine writes.
func (*Engine) Formats() []iiif.Format { return append([]iiif.Format(nil), formats...) }

func canWrite(f iiif.Format) bool {
	for _, g := range formats {
		if g == f {
			return true
		}
	}
	return false
}

// Trim hands freed memory back to the host. In WebAssembly the linear
// memory never shrinks, but returning spans lets the Go runtime reuse
// them before it grows the memory again.
func (*Engine) Trim() { debug.FreeOSMemory() }

// Header describes a flat image that the pure-Go probe did not size,
// from its header alone. Formats the engine cannot decode get the
// native engine's 500 for an unsupported source.
func (e *Engine) Header(ctx context.Context, in engine.Input) (probe.Info, error) {
	if err := ctx.Err(); err != nil {
		return probe.Info{}, err
	}
	ir, err := inputReader(in)
	if err != nil {
		return probe.Info{}, err
	}
	r := &watchedReader{r: ir}
	cfg, name, err := image.DecodeConfig(io.NewSectionReader(r, 0, in.Size))
	if err != nil {
		if rerr := readError(ctx, r); rerr != nil {
			return probe.Info{}, rerr
		}
		return probe.Info{}, fault.Wrap(fault.Internal, fmt.Errorf("goengine: header: %w", err), msgUnsupported)
	}
	return probe.Info{
		Format: probe.Format(name),
		Width:  cfg.Width, Height: cfg.Height,
		Levels: []probe.Level{{Width: cfg.Width, Height: cfg.Height, SubIFD: -1}},
	}, nil
}

// Render reads the flat image in (JPEG, PNG, GIF or WebP), executes p on
// level in.Level of it and writes the encoded image to w. in.Path is not
// read (the engine runs where there is no file system): the bytes come
// from in.Reader. Pyramidal TIFF and JPEG 2000 sources are refused with
// a 501: the hosts of this engine give it their stored tiles as a Mosaic
// instead. The source is decoded whole, so sources over the engine's
// MaxSourcePixels are refused from their header with a 501.
func (e *Engine) Render(ctx context.Context, in engine.Input, p *plan.Plan, w io.Writer) error {
	if err := e.check(ctx, p, in.Overlay); err != nil {
		return err
	}
	if in.Level.Page != 0 || in.Level.SubIFD > 0 {
		return fault.New(fault.NotImplemented, "this server reads pyramid levels only as stored tiles")
	}
	ir, err := inputReader(in)
	if err != nil {
		return err
	}
	r := &watchedReader{r: ir}
	head, err := peek(r, 32)
	if err != nil {
		if rerr := readError(ctx, r); rerr != nil {
			return rerr
		}
		return err
	}
	if !flatFormat(head) {
		return fault.New(fault.NotImplemented, "%s", "this server reads only JPEG, PNG, GIF and WebP images whole; other sources must be tiled pyramids")
	}
	cfg, _, err := image.DecodeConfig(io.NewSectionReader(r, 0, in.Size))
	if err != nil {
		if rerr := readError(ctx, r); rerr != nil {
			return rerr
		}
		return fault.Wrap(fault.Internal, fmt.Errorf("goengine: decode config: %w", err), msgUndecodable)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > e.lim.MaxSourcePixels {
		return fault.New(fault.NotImplemented,
			"the source image has %d pixels, more than the %d this server decodes whole; store it as a tiled pyramid", px, e.lim.MaxSourcePixels)
	}
	img, _, err := image.Decode(io.NewSectionReader(r, 0, in.Size))
	if err != nil {
		if rerr := readError(ctx, r); rerr != nil {
			return rerr
		}
		return fault.Wrap(fault.Internal, fmt.Errorf("goengine: decode: %w", err), msgUndecodable)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var src rows = newImageRows(img, pngGray(head), img.Bounds())
	if s := in.Level.Shrink; s > 1 {
		src = newShrinkRows(src, s)
	}
	if lw, lh, _ := src.size(); !p.LevelRegion.Overlaps(image.Rect(0, 0, lw, lh)) {
		return fault.Wrap(fault.Internal,
			fmt.Errorf("goengine: region %v outside the level %dx%d", p.LevelRegion, lw, lh), msgProcess)
	}
	return e.run(ctx, newCropRows(src, p.LevelRegion), p, w)
}

// RenderMosaic executes p on the image that the tiles of m form, and
// writes the encoded image to w. Only the tiles under p.LevelRegion are
// decoded, one tile row at a time.
func (e *Engine) RenderMosaic(ctx context.Context, m engine.Mosaic, p *plan.Plan, w io.Writer) error {
	if err := m.Check(); err != nil {
		return fault.Wrap(fault.Internal, err, msgProcess)
	}
	if err := e.check(ctx, p, m.Overlay); err != nil {
		return err
	}
	src, err := newMosaicRows(ctx, m, p.LevelRegion)
	if err != nil {
		return err
	}
	return e.run(ctx, src, p, w)
}

// check refuses what no render can do: a done context, an invalid plan,
// a format the engine does not write, an overlay.
func (e *Engine) check(ctx context.Context, p *plan.Plan, ov *engine.Overlay) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p == nil {
		return fault.Wrap(fault.Internal, errors.New("goengine: nil plan"), msgProcess)
	}
	if p.Width <= 0 || p.Height <= 0 || p.OutWidth <= 0 || p.OutHeight <= 0 ||
		p.LevelRegion.Empty() || p.Rotation < 0 || p.Rotation >= 360 || math.IsNaN(p.Rotation) {
		return fault.Wrap(fault.Internal,
			fmt.Errorf("goengine: invalid plan: region %v size %dx%d out %dx%d rotation %g",
				p.LevelRegion, p.Width, p.Height, p.OutWidth, p.OutHeight, p.Rotation), msgProcess)
	}
	if !canWrite(p.Format) {
		return fault.New(fault.NotImplemented, "the %s format is not supported by this server", p.Format)
	}
	if ov != nil && ov.Opacity > 0 {
		// Overlays come from plugins, which only the native server runs.
		return fault.New(fault.NotImplemented, "overlays are not supported by this server")
	}
	return nil
}

// inputReader returns the reader of in's bytes.
func inputReader(in engine.Input) (io.ReaderAt, error) {
	if in.Reader == nil || in.Size <= 0 {
		return nil, fault.Wrap(fault.Internal, errors.New("goengine: input without a reader"), msgProcess)
	}
	return in.Reader, nil
}

// readError turns a failed decode into the client's error when its
// cause was not the decoder's: the context's error when it is done, the
// reader's fault when a read failed; nil when the bytes were read but are
// not a good image.
func readError(ctx context.Context, r *watchedReader) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if r.err != nil {
		return engine.ReadFault(r.err)
	}
	return nil
}

// peek reads the first n bytes of r (fewer when r is shorter).
func peek(r io.ReaderAt, n int) ([]byte, error) {
	b := make([]byte, n)
	m, err := r.ReadAt(b, 0)
	if m > 0 && (err == nil || errors.Is(err, io.EOF)) {
		return b[:m], nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return nil, fault.Wrap(fault.Internal, errors.New("goengine: empty source"), msgUndecodable)
	}
	return nil, err
}

// flatFormat reports whether head starts a JPEG, PNG, GIF or WebP file.
func flatFormat(head []byte) bool {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}),
		bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")),
		bytes.HasPrefix(head, []byte("GIF8")),
		len(head) >= 12 && bytes.Equal(head[:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WEBP")):
		return true
	}
	return false
}

// pngGray reports whether head starts a PNG whose pixels are grey
// (colour types 0 and 4), which Go's decoder returns as NRGBA when they
// have transparency but libvips loads as one grey band and alpha.
func pngGray(head []byte) bool {
	return len(head) > 25 && bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")) &&
		(head[25] == 0 || head[25] == 4)
}
