package goengine

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
)

// rows is a stream of 8-bit pixel rows, top to bottom: width pixels of
// bands interleaved samples each. bands is 1 (grey), 2 (grey, alpha), 3
// (RGB) or 4 (RGBA, not premultiplied), as libvips loads images.
type rows interface {
	size() (width, height, bands int)
	// next returns the next row. It stays valid until the next call.
	next() ([]uint8, error)
}

// imageRows reads rows of a rectangle of a decoded image.
type imageRows struct {
	img    image.Image
	r      image.Rectangle
	bands  int
	y      int
	buf    []uint8
	chroma [2][]uint8
}

// newImageRows reads rectangle r of img; gray says the file's pixels are
// grey even though img's model is not (a grey PNG with transparency).
func newImageRows(img image.Image, gray bool, r image.Rectangle) *imageRows {
	r = r.Intersect(img.Bounds())
	b := bandsOf(img, gray)
	return &imageRows{img: img, r: r, bands: b, y: r.Min.Y, buf: make([]uint8, r.Dx()*b)}
}

func (s *imageRows) size() (int, int, int) { return s.r.Dx(), s.r.Dy(), s.bands }

func (s *imageRows) next() ([]uint8, error) {
	if s.y >= s.r.Max.Y {
		return nil, fmt.Errorf("goengine: read past the last row")
	}
	readRow(s.img, s.y, s.r.Min.X, s.r.Max.X, s.bands, s.buf, &s.chroma)
	s.y++
	return s.buf, nil
}

// bandsOf is the number of bands libvips would load img with.
func bandsOf(img image.Image, gray bool) int {
	switch m := img.(type) {
	case *image.Gray, *image.Gray16:
		return 1
	case *image.YCbCr, *image.CMYK, *image.RGBA, *image.RGBA64:
		return 3
	case *image.Paletted:
		return paletteBands(m.Palette)
	}
	if gray {
		return 2
	}
	return 4
}

// paletteBands is 4 when the palette has a transparent entry, else 3:
// libvips expands palettes to RGB or RGBA.
func paletteBands(p color.Palette) int {
	for _, c := range p {
		if _, _, _, a := c.RGBA(); a != 0xffff {
			return 4
		}
	}
	return 3
}

// readRow converts pixels x0..x1 of row y of img to bands samples each,
// 8 bits, not premultiplied, into dst.
func readRow(img image.Image, y, x0, x1, bands int, dst []uint8, scratch *[2][]uint8) {
	i := 0
	put := func(r, g, b, a uint8) {
		switch bands {
		case 1:
			dst[i] = r
		case 2:
			dst[i], dst[i+1] = r, a
		case 3:
			dst[i], dst[i+1], dst[i+2] = r, g, b
		default:
			dst[i], dst[i+1], dst[i+2], dst[i+3] = r, g, b, a
		}
		i += bands
	}
	switch m := img.(type) {
	case *image.YCbCr:
		cb, cr, ok := fancyChroma(m, y, scratch)
		if ok && bands == 3 {
			// The common case, every pixel of every stored tile: ycc.rgb
			// written out here, as the compiler does not inline it and a
			// call per pixel is dear in WebAssembly.
			lx0, lx1 := x0-m.Rect.Min.X, x1-m.Rect.Min.X
			yrow := m.Y[(y-m.Rect.Min.Y)*m.YStride:][lx0:lx1]
			cb, cr := cb[lx0:lx1], cr[lx0:lx1]
			out := dst[:3*len(yrow)]
			t := ycc
			for k, yv := range yrow {
				Y := int32(yv)
				u, v := cb[k], cr[k]
				r := Y + t.crR[v]
				g := Y + ((t.cbG[u] + t.crG[v]) >> 16)
				b := Y + t.cbB[u]
				if uint32(r) > 255 {
					r = ^(r >> 31) & 255
				}
				if uint32(g) > 255 {
					g = ^(g >> 31) & 255
				}
				if uint32(b) > 255 {
					b = ^(b >> 31) & 255
				}
				o := out[3*k : 3*k+3]
				o[0], o[1], o[2] = uint8(r), uint8(g), uint8(b)
			}
			return
		}
		for x := x0; x < x1; x++ {
			yi := m.YOffset(x, y)
			var u, v uint8
			if ok {
				u, v = cb[x-m.Rect.Min.X], cr[x-m.Rect.Min.X]
			} else {
				ci := m.COffset(x, y)
				u, v = m.Cb[ci], m.Cr[ci]
			}
			r, g, b := ycc.rgb(m.Y[yi], u, v)
			put(r, g, b, 255)
		}
	case *image.Gray:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := x0; x < x1; x++ {
			v := row[x-m.Rect.Min.X]
			put(v, v, v, 255)
		}
	case *image.NRGBA:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := x0; x < x1; x++ {
			p := row[(x-m.Rect.Min.X)*4:]
			put(p[0], p[1], p[2], p[3])
		}
	case *image.RGBA:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := x0; x < x1; x++ {
			p := row[(x-m.Rect.Min.X)*4:]
			r, g, b := unpremul(p[0], p[3]), unpremul(p[1], p[3]), unpremul(p[2], p[3])
			put(r, g, b, p[3])
		}
	case *image.Paletted:
		pal := make([][4]uint8, len(m.Palette))
		for k, c := range m.Palette {
			n := color.NRGBAModel.Convert(c).(color.NRGBA)
			pal[k] = [4]uint8{n.R, n.G, n.B, n.A}
		}
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for x := x0; x < x1; x++ {
			k := int(row[x-m.Rect.Min.X])
			var c [4]uint8
			if k < len(pal) {
				c = pal[k]
			}
			put(c[0], c[1], c[2], c[3])
		}
	default:
		for x := x0; x < x1; x++ {
			n := color.NRGBA64Model.Convert(img.At(x, y)).(color.NRGBA64)
			put(uint8(n.R>>8), uint8(n.G>>8), uint8(n.B>>8), uint8(n.A>>8))
		}
	}
}

func unpremul(v, a uint8) uint8 {
	if a == 0 || a == 255 {
		return v
	}
	return uint8(min(255, (int(v)*255+int(a)/2)/int(a)))
}

// shrinkRows averages blocks of f×f pixels: the reduced levels that
// libjpeg decodes by DCT scaling (shrink-on-load), which a Go decoder
// cannot. Edge blocks average the pixels they have, and the level is
// ceil(width/f) by ceil(height/f), as libjpeg sizes it.
type shrinkRows struct {
	src         rows
	f           int
	w, h, bands int
	sw, sh, y   int
	acc         []uint32
	out         []uint8
}

func newShrinkRows(src rows, f int) *shrinkRows {
	sw, sh, b := src.size()
	w, h := (sw+f-1)/f, (sh+f-1)/f
	return &shrinkRows{src: src, f: f, w: w, h: h, bands: b, sw: sw, sh: sh,
		acc: make([]uint32, w*b), out: make([]uint8, w*b)}
}

func (s *shrinkRows) size() (int, int, int) { return s.w, s.h, s.bands }

func (s *shrinkRows) next() ([]uint8, error) {
	clear(s.acc)
	y0 := s.y * s.f
	y1 := min(y0+s.f, s.sh)
	for y := y0; y < y1; y++ {
		row, err := s.src.next()
		if err != nil {
			return nil, err
		}
		for x := 0; x < s.sw; x++ {
			o := (x / s.f) * s.bands
			for b := 0; b < s.bands; b++ {
				s.acc[o+b] += uint32(row[x*s.bands+b])
			}
		}
	}
	for x := 0; x < s.w; x++ {
		n := uint32((min((x+1)*s.f, s.sw) - x*s.f) * (y1 - y0))
		for b := 0; b < s.bands; b++ {
			s.out[x*s.bands+b] = uint8((s.acc[x*s.bands+b] + n/2) / n)
		}
	}
	s.y++
	return s.out, nil
}

// mosaicRows reads the rows of a rectangle of the image that a mosaic's
// tiles form, decoding one tile row at a time and keeping of each tile
// only the pixels under the rectangle.
type mosaicRows struct {
	ctx   context.Context
	m     engine.Mosaic
	r     image.Rectangle
	bands int
	grays []bool // per tile: a grey PNG (see pngGray)

	band       []uint8    // rows band0..band1 of r, r.Dx() pixels each
	chroma     [2][]uint8 // readRow's upsampled chroma, reused
	band0, end int        // image rows held: [band0, end)
	y          int        // next image row
}

// newMosaicRows checks every tile under r from its header (format, size)
// before any is decoded, and decides the bands of the whole: grey when
// every tile is grey, with alpha when any tile has it.
func newMosaicRows(ctx context.Context, m engine.Mosaic, r image.Rectangle) (*mosaicRows, error) {
	w, h := m.Size()
	r = r.Intersect(image.Rect(0, 0, w, h))
	if r.Empty() {
		return nil, fault.Wrap(fault.Internal, fmt.Errorf("goengine: region %v outside the mosaic %dx%d", r, w, h), msgProcess)
	}
	s := &mosaicRows{ctx: ctx, m: m, r: r, y: r.Min.Y, grays: make([]bool, len(m.Tiles))}
	gray, alpha := true, false
	for i, t := range m.Tiles {
		if !tileRect(m, i).Overlaps(r) {
			continue
		}
		if int64(t.Width)*int64(t.Height) > maxTilePixels {
			return nil, fault.Wrap(fault.Internal, fmt.Errorf("goengine: tile %d is %dx%d", i, t.Width, t.Height), msgUndecodable)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(t.Data))
		if err != nil {
			return nil, fault.Wrap(fault.Internal, fmt.Errorf("goengine: tile %d: %w", i, err), msgUndecodable)
		}
		if cfg.Width != t.Width || cfg.Height != t.Height {
			return nil, fault.Wrap(fault.Internal,
				fmt.Errorf("goengine: tile %d is %dx%d, want %dx%d", i, cfg.Width, cfg.Height, t.Width, t.Height), msgUndecodable)
		}
		s.grays[i] = pngGray(t.Data)
		switch cm := cfg.ColorModel.(type) {
		case color.Palette:
			gray = false
			alpha = alpha || paletteBands(cm) == 4
		default:
			switch cm {
			case color.GrayModel, color.Gray16Model:
			case color.YCbCrModel, color.CMYKModel, color.RGBAModel, color.RGBA64Model:
				gray = false
			default:
				alpha = true
				gray = gray && s.grays[i]
			}
		}
	}
	switch {
	case gray && alpha:
		s.bands = 2
	case gray:
		s.bands = 1
	case alpha:
		s.bands = 4
	default:
		s.bands = 3
	}
	return s, nil
}

// maxTilePixels bounds one stored tile: a tile is decoded whole, and
// stored tiles are a few hundred pixels square; a larger one is a
// damaged or hostile source.
const maxTilePixels = 4096 * 4096

// tileRect is the rectangle tile i covers in the mosaic's image.
func tileRect(m engine.Mosaic, i int) image.Rectangle {
	x, y := (i%m.Across)*m.TileWidth, (i/m.Across)*m.TileHeight
	t := m.Tiles[i]
	return image.Rect(x, y, x+t.Width, y+t.Height)
}

func (s *mosaicRows) size() (int, int, int) { return s.r.Dx(), s.r.Dy(), s.bands }

func (s *mosaicRows) next() ([]uint8, error) {
	if s.y >= s.r.Max.Y {
		return nil, fmt.Errorf("goengine: read past the last row")
	}
	if s.y >= s.end {
		if err := s.decodeBand(); err != nil {
			return nil, err
		}
	}
	stride := s.r.Dx() * s.bands
	o := (s.y - s.band0) * stride
	s.y++
	return s.band[o : o+stride], nil
}

// decodeBand decodes the tiles of the tile row holding row s.y, keeping
// rows s.y.. of that tile row that are in the rectangle.
func (s *mosaicRows) decodeBand() error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	ty := s.y / s.m.TileHeight
	y0 := s.y
	y1 := min((ty+1)*s.m.TileHeight, s.r.Max.Y)
	stride := s.r.Dx() * s.bands
	need := stride * (y1 - y0)
	if cap(s.band) < need {
		s.band = nil // let the old band go before the new one is made
		s.band = make([]uint8, need)
	}
	s.band = s.band[:need]
	for tx := 0; tx < s.m.Across; tx++ {
		i := ty*s.m.Across + tx
		tr := tileRect(s.m, i)
		cut := tr.Intersect(image.Rect(s.r.Min.X, y0, s.r.Max.X, y1))
		if cut.Empty() {
			continue
		}
		img, err := decodeTile(s.m.Tiles[i].Data)
		if err != nil {
			if cerr := s.ctx.Err(); cerr != nil {
				return cerr
			}
			return fault.Wrap(fault.Internal, fmt.Errorf("goengine: tile %d: %w", i, err), msgUndecodable)
		}
		if b := img.Bounds(); b.Dx() != tr.Dx() || b.Dy() != tr.Dy() {
			return fault.Wrap(fault.Internal, fmt.Errorf("goengine: tile %d decoded to %v, want %dx%d", i, b, tr.Dx(), tr.Dy()), msgUndecodable)
		}
		tb := bandsOf(img, s.grays[i])
		var tmp []uint8
		if tb != s.bands {
			tmp = make([]uint8, cut.Dx()*tb)
		}
		for y := cut.Min.Y; y < cut.Max.Y; y++ {
			o := (y-y0)*stride + (cut.Min.X-s.r.Min.X)*s.bands
			dst := s.band[o : o+cut.Dx()*s.bands]
			if tmp == nil {
				// The tile has the mosaic's bands: its rows are
				// converted into the band directly.
				readRow(img, y-tr.Min.Y+img.Bounds().Min.Y, cut.Min.X-tr.Min.X+img.Bounds().Min.X,
					cut.Max.X-tr.Min.X+img.Bounds().Min.X, tb, dst, &s.chroma)
				continue
			}
			readRow(img, y-tr.Min.Y+img.Bounds().Min.Y, cut.Min.X-tr.Min.X+img.Bounds().Min.X,
				cut.Max.X-tr.Min.X+img.Bounds().Min.X, tb, tmp, &s.chroma)
			convertBands(tmp, tb, dst, s.bands)
		}
	}
	s.band0, s.end = y0, y1
	return nil
}

// decodeTile decodes one stored tile. PNG is decoded by its own package
// so that a grey PNG with transparency is not mistaken (see pngGray).
func decodeTile(data []byte) (image.Image, error) {
	if bytes.HasPrefix(data, []byte("\x89PNG")) {
		return png.Decode(bytes.NewReader(data))
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	return img, err
}

// convertBands copies pixels of sb bands in src to db bands in dst: grey
// to RGB by repeating, RGB to grey by taking the first band (only tiles
// of a grey mosaic, which are grey, go that way), alpha added opaque or
// dropped.
func convertBands(src []uint8, sb int, dst []uint8, db int) {
	if sb == db {
		copy(dst, src)
		return
	}
	n := len(src) / sb
	for i := 0; i < n; i++ {
		p := src[i*sb : i*sb+sb]
		q := dst[i*db : i*db+db]
		var r, g, b, a uint8
		switch sb {
		case 1:
			r, g, b, a = p[0], p[0], p[0], 255
		case 2:
			r, g, b, a = p[0], p[0], p[0], p[1]
		case 3:
			r, g, b, a = p[0], p[1], p[2], 255
		default:
			r, g, b, a = p[0], p[1], p[2], p[3]
		}
		switch db {
		case 1:
			q[0] = r
		case 2:
			q[0], q[1] = r, a
		case 3:
			q[0], q[1], q[2] = r, g, b
		default:
			q[0], q[1], q[2], q[3] = r, g, b, a
		}
	}
}
