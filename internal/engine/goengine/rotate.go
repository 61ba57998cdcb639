package goengine

import (
	"math"
)

// raster is a whole 8-bit image in memory, bands interleaved.
type raster struct {
	w, h, b int
	pix     []uint8
}

// collect reads all of src into a raster.
func collect(src rows) (*raster, error) {
	w, h, b := src.size()
	r := &raster{w: w, h: h, b: b, pix: make([]uint8, w*h*b)}
	for y := 0; y < h; y++ {
		row, err := src.next()
		if err != nil {
			return nil, err
		}
		copy(r.pix[y*w*b:], row)
	}
	return r, nil
}

// rasterRows streams a raster's rows.
type rasterRows struct {
	r *raster
	y int
}

func (s *rasterRows) size() (int, int, int) { return s.r.w, s.r.h, s.r.b }

func (s *rasterRows) next() ([]uint8, error) {
	n := s.r.w * s.r.b
	row := s.r.pix[s.y*n : s.y*n+n]
	s.y++
	return row, nil
}

// mirrorRows flips each row left to right.
type mirrorRows struct {
	src rows
	buf []uint8
}

func (m *mirrorRows) size() (int, int, int) { return m.src.size() }

func (m *mirrorRows) next() ([]uint8, error) {
	row, err := m.src.next()
	if err != nil {
		return nil, err
	}
	w, _, b := m.src.size()
	for x := 0; x < w; x++ {
		copy(m.buf[x*b:x*b+b], row[(w-1-x)*b:(w-x)*b])
	}
	return m.buf, nil
}

// thresholdRows makes every sample of every band, alpha included, 0 or
// 255: at least 128 is 255, as the native engine's bitonal step.
type thresholdRows struct {
	src rows
	buf []uint8
}

func (t *thresholdRows) size() (int, int, int) { return t.src.size() }

func (t *thresholdRows) next() ([]uint8, error) {
	row, err := t.src.next()
	if err != nil {
		return nil, err
	}
	for i, v := range row {
		if v >= 128 {
			t.buf[i] = 255
		} else {
			t.buf[i] = 0
		}
	}
	return t.buf, nil
}

// embedRows makes rows exactly w x h around the centre, cropping or
// filling with bg (every band), as the native engine's fit does with a
// background.
type embedRows struct {
	src           rows
	w, h, b       int
	sw, sh        int
	dx, dy, y, sy int
	bg            uint8
	cur, out      []uint8
}

func newEmbedRows(src rows, w, h int, bg uint8) rows {
	sw, sh, b := src.size()
	if sw == w && sh == h {
		return src
	}
	return &embedRows{src: src, w: w, h: h, b: b, sw: sw, sh: sh,
		dx: fitOffset(sw, w), dy: fitOffset(sh, h), bg: bg, out: make([]uint8, w*b)}
}

func (e *embedRows) size() (int, int, int) { return e.w, e.h, e.b }

func (e *embedRows) next() ([]uint8, error) {
	sy := e.y - e.dy
	e.y++
	// Skip source rows above a crop.
	for e.sy < min(sy, e.sh) {
		if _, err := e.src.next(); err != nil {
			return nil, err
		}
		e.sy++
	}
	if sy < 0 || sy >= e.sh {
		for i := range e.out {
			e.out[i] = e.bg
		}
		return e.out, nil
	}
	row, err := e.src.next()
	if err != nil {
		return nil, err
	}
	e.sy++
	for x := 0; x < e.w; x++ {
		sx := x - e.dx
		o := e.out[x*e.b : x*e.b+e.b]
		if sx < 0 || sx >= e.sw {
			for i := range o {
				o[i] = e.bg
			}
			continue
		}
		copy(o, row[sx*e.b:sx*e.b+e.b])
	}
	return e.out, nil
}

// rot90 turns r clockwise by 90, 180 or 270 degrees, exactly.
func rot90(r *raster, deg int) *raster {
	w, h, b := r.w, r.h, r.b
	if deg == 180 {
		out := &raster{w: w, h: h, b: b, pix: make([]uint8, len(r.pix))}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				copy(out.pix[(y*w+x)*b:(y*w+x)*b+b], r.pix[((h-1-y)*w+(w-1-x))*b:])
			}
		}
		return out
	}
	out := &raster{w: h, h: w, b: b, pix: make([]uint8, len(r.pix))}
	for y := 0; y < out.h; y++ {
		for x := 0; x < out.w; x++ {
			var sx, sy int
			if deg == 90 {
				sx, sy = y, h-1-x
			} else {
				sx, sy = w-1-y, x
			}
			copy(out.pix[(y*out.w+x)*b:(y*out.w+x)*b+b], r.pix[(sy*w+sx)*b:])
		}
	}
	return out
}

// rotate turns r clockwise by deg degrees (not a multiple of 90) as the
// native engine's vips_rotate does: onto the bounding box of the turned
// image, rounded as libvips rounds it, sampling with libvips' bicubic
// interpolator at each output pixel's inverse-mapped position, with
// exposed corners painted bg. With alpha (the output format has it), the
// image is given an opaque alpha if it has none and is resampled
// premultiplied: the native engine premultiplies, and vips_affine, seeing
// an alpha band, premultiplies again and undoes one of the two, so this
// does exactly that. Without alpha, 8-bit samples are interpolated with
// libvips' 12-bit fixed-point coefficients.
func rotate(r *raster, deg float64, alphaFormat bool) *raster {
	bicubicTables()
	if alphaFormat && r.b != 2 && r.b != 4 {
		r = addAlpha(r)
	}
	alpha := r.b == 2 || r.b == 4
	rad := deg * math.Pi / 180
	a, bm := math.Cos(rad), -math.Sin(rad)
	c, d := -bm, a
	det := a*d - bm*c
	ia, ib, ic, id := d/det, -bm/det, -c/det, a/det

	// The output area: the corners mapped forward, rounded to nearest.
	W, H := float64(r.w), float64(r.h)
	xs := [4]float64{0, a * W, bm * H, a*W + bm*H}
	ys := [4]float64{0, c * W, d * H, c*W + d*H}
	left, right := minMax(xs)
	top, bottom := minMax(ys)
	ol, ot := roundInt(left), roundInt(top)
	ow, oh := roundInt(right-left), roundInt(bottom-top)

	b := r.b
	var bg float64 = 255
	if alphaFormat {
		bg = 0
	}
	// The source as float samples, premultiplied twice when with alpha.
	src := make([]float32, len(r.pix))
	for i := 0; i < len(r.pix); i += b {
		if !alpha {
			for k := 0; k < b; k++ {
				src[i+k] = float32(r.pix[i+k])
			}
			continue
		}
		al := float64(r.pix[i+b-1])
		na := float32(al / 255)
		for k := 0; k < b-1; k++ {
			v := float32(r.pix[i+k]) * na // iiifd's premultiply
			src[i+k] = v * na             // vips_affine's
		}
		src[i+b-1] = float32(al)
	}
	sample := func(x, y, k int) float64 {
		if x < 0 || y < 0 || x >= r.w || y >= r.h {
			return bg
		}
		return float64(src[(y*r.w+x)*b+k])
	}
	out := &raster{w: ow, h: oh, b: b, pix: make([]uint8, ow*oh*b)}
	px := make([]float64, b)
	for y := 0; y < oh; y++ {
		oy := float64(y + ot)
		for x := 0; x < ow; x++ {
			ox := float64(x + ol)
			// Space 2: plus one for the -1 of the border-adjusted input
			// offset, plus one for the window offset.
			sx := ia*ox + ib*oy + 2
			sy := ic*ox + id*oy + 2
			q := out.pix[(y*ow+x)*b : (y*ow+x)*b+b]
			fx, fy := math.Floor(sx), math.Floor(sy)
			if fx < 1 || fx > float64(1+r.w) || fy < 1 || fy > float64(1+r.h) {
				for k := range q {
					q[k] = uint8(bg)
				}
				continue
			}
			x0, tx := bicubicTap(sx)
			y0, ty := bicubicTap(sy)
			cx, cy := &bicubicF[tx], &bicubicF[ty]
			if !alpha {
				cx, cy = &bicubicI[tx], &bicubicI[ty]
			}
			for k := 0; k < b; k++ {
				s := 0.0
				for j := 0; j < 4; j++ {
					rs := 0.0
					for i := 0; i < 4; i++ {
						rs += cx[i] * sample(x0+i, y0+j, k)
					}
					if !alpha {
						rs = fixedRound(rs)
					}
					s += cy[j] * rs
				}
				if !alpha {
					s = clampU8(fixedRound(s))
				}
				px[k] = s
			}
			if !alpha {
				for k := range q {
					q[k] = uint8(px[k])
				}
				continue
			}
			// vips_affine's unpremultiply (alpha clipped), then the
			// native engine's, then the cast to 8 bits.
			raw := px[b-1]
			al := clampF(raw, 0, 255)
			f1, f2 := 0.0, 0.0
			if raw != 0 {
				f1 = 255 / raw
			}
			if al != 0 {
				f2 = 255 / al
			}
			for k := 0; k < b-1; k++ {
				v := float64(float32(px[k] * f1))
				q[k] = uint8(clampU8(v * f2))
			}
			q[b-1] = uint8(al)
		}
	}
	return out
}

func addAlpha(r *raster) *raster {
	nb := r.b + 1
	out := &raster{w: r.w, h: r.h, b: nb, pix: make([]uint8, r.w*r.h*nb)}
	for i, j := 0, 0; i < len(r.pix); i, j = i+r.b, j+nb {
		copy(out.pix[j:j+r.b], r.pix[i:i+r.b])
		out.pix[j+r.b] = 255
	}
	return out
}

func minMax(v [4]float64) (float64, float64) {
	lo, hi := v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// roundInt is VIPS_ROUND_INT: half away from zero.
func roundInt(v float64) int {
	if v >= 0 {
		return int(v + 0.5)
	}
	return int(v - 0.5)
}

func clampF(v, lo, hi float64) float64 { return min(hi, max(lo, v)) }
