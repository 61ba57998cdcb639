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
	out           []uint8
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

// rot90Rows streams r turned clockwise by 90, 180 or 270 degrees,
// exactly, reading it out of order instead of making a turned copy.
type rot90Rows struct {
	r   *raster
	deg int
	y   int
	buf []uint8
}

func newRot90Rows(r *raster, deg int) *rot90Rows {
	w := r.w
	if deg != 180 {
		w = r.h
	}
	return &rot90Rows{r: r, deg: deg, buf: make([]uint8, w*r.b)}
}

func (s *rot90Rows) size() (int, int, int) {
	if s.deg == 180 {
		return s.r.w, s.r.h, s.r.b
	}
	return s.r.h, s.r.w, s.r.b
}

func (s *rot90Rows) next() ([]uint8, error) {
	w, h, b := s.r.w, s.r.h, s.r.b
	ow, _, _ := s.size()
	y := s.y
	s.y++
	for x := 0; x < ow; x++ {
		var sx, sy int
		switch s.deg {
		case 90:
			sx, sy = y, h-1-x
		case 180:
			sx, sy = w-1-x, h-1-y
		default:
			sx, sy = w-1-y, x
		}
		copy(s.buf[x*b:x*b+b], s.r.pix[(sy*w+sx)*b:])
	}
	return s.buf, nil
}

// rotateRows streams r turned clockwise by deg degrees (not a multiple
// of 90) as the native engine's vips_rotate makes it: onto the bounding
// box of the turned image, rounded as libvips rounds it, sampling with
// libvips' bicubic interpolator at each output pixel's inverse-mapped
// position, with exposed corners painted the background. With alpha (the
// output format has it) the image gets an opaque alpha if it has none
// and is resampled premultiplied: the native engine premultiplies, and
// vips_affine, seeing an alpha band, premultiplies again and undoes one
// of the two, so this does exactly that. Without alpha, 8-bit samples are
// interpolated with libvips' 12-bit fixed-point coefficients.
type rotateRows struct {
	r                  *raster
	alpha, alphaFormat bool
	b                  int // output bands
	ia, ib, ic, id     float64
	ol, ot, ow, oh     int
	bg                 float64
	y                  int
	buf                []uint8
	px                 []float64
}

func newRotateRows(r *raster, deg float64, alphaFormat bool) *rotateRows {
	bicubicTables()
	alpha := r.b == 2 || r.b == 4
	b := r.b
	if alphaFormat && !alpha {
		b++ // an opaque alpha, added as samples are read
	}
	rad := deg * math.Pi / 180
	a, bm := math.Cos(rad), -math.Sin(rad)
	c, d := -bm, a
	det := a*d - bm*c
	s := &rotateRows{r: r, alpha: alpha || alphaFormat, alphaFormat: alphaFormat, b: b,
		ia: d / det, ib: -bm / det, ic: -c / det, id: a / det, bg: 255}
	if alphaFormat {
		s.bg = 0
	}
	// The output area: the corners mapped forward, rounded to nearest.
	W, H := float64(r.w), float64(r.h)
	left, right := minMax([4]float64{0, a * W, bm * H, a*W + bm*H})
	top, bottom := minMax([4]float64{0, c * W, d * H, c*W + d*H})
	s.ol, s.ot = roundInt(left), roundInt(top)
	s.ow, s.oh = roundInt(right-left), roundInt(bottom-top)
	s.buf = make([]uint8, s.ow*b)
	s.px = make([]float64, b)
	return s
}

func (s *rotateRows) size() (int, int, int) { return s.ow, s.oh, s.b }

// sample is band k of source pixel x, y as the resampler sees it: the
// background outside the image, premultiplied twice with alpha.
func (s *rotateRows) sample(x, y, k int) float64 {
	r := s.r
	if x < 0 || y < 0 || x >= r.w || y >= r.h {
		return s.bg
	}
	p := r.pix[(y*r.w+x)*r.b:]
	if !s.alpha {
		return float64(p[k])
	}
	al := float32(255)
	if r.b == 2 || r.b == 4 {
		al = float32(p[r.b-1])
	}
	if k == s.b-1 {
		return float64(al)
	}
	na := al / 255
	v := float32(p[k]) * na // the native engine's premultiply
	return float64(v * na)  // vips_affine's
}

func (s *rotateRows) next() ([]uint8, error) {
	b := s.b
	oy := float64(s.y + s.ot)
	s.y++
	for x := 0; x < s.ow; x++ {
		ox := float64(x + s.ol)
		// Space 2: plus one for the -1 of the border-adjusted input
		// offset, plus one for the window offset.
		sx := s.ia*ox + s.ib*oy + 2
		sy := s.ic*ox + s.id*oy + 2
		q := s.buf[x*b : x*b+b]
		fx, fy := math.Floor(sx), math.Floor(sy)
		if fx < 1 || fx > float64(1+s.r.w) || fy < 1 || fy > float64(1+s.r.h) {
			for k := range q {
				q[k] = uint8(s.bg)
			}
			continue
		}
		x0, tx := bicubicTap(sx)
		y0, ty := bicubicTap(sy)
		cx, cy := &bicubicF[tx], &bicubicF[ty]
		if !s.alpha {
			cx, cy = &bicubicI[tx], &bicubicI[ty]
		}
		for k := 0; k < b; k++ {
			v := 0.0
			for j := 0; j < 4; j++ {
				rs := 0.0
				for i := 0; i < 4; i++ {
					rs += cx[i] * s.sample(x0+i, y0+j, k)
				}
				if !s.alpha {
					rs = fixedRound(rs)
				}
				v += cy[j] * rs
			}
			if !s.alpha {
				v = clampU8(fixedRound(v))
			}
			s.px[k] = v
		}
		if !s.alpha {
			for k := range q {
				q[k] = uint8(s.px[k])
			}
			continue
		}
		// vips_affine's unpremultiply (by the raw alpha), then the
		// native engine's (by the clipped one), then the cast to 8 bits.
		raw := s.px[b-1]
		al := clampF(raw, 0, 255)
		f1, f2 := 0.0, 0.0
		if raw != 0 {
			f1 = 255 / raw
		}
		if al != 0 {
			f2 = 255 / al
		}
		for k := 0; k < b-1; k++ {
			v := float64(float32(s.px[k] * f1))
			q[k] = uint8(clampU8(v * f2))
		}
		q[b-1] = uint8(al)
	}
	return s.buf, nil
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

// clampF clips v to lo..hi by comparing (see clampU8).
func clampF(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
