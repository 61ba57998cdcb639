package goengine

import (
	"fmt"
	"math"
	"sync"
)

// The resize stage is libvips 8.14's vips_resize with the Lanczos-3
// kernel, as the native engine calls it, step for step: a box shrink by
// the integer part of the reduction (vips_shrinkv/h with "ceil"), a
// Lanczos-3 reduce by what remains (vips_reducev/h, with libvips' "gap"
// of 2, its pixel offsets and its 1/64-pixel coefficient tables), first
// vertically then horizontally, and for enlargements a bicubic affine
// transform with libvips' input offset of half a pixel. 8-bit images are
// rounded where libvips rounds (12-bit fixed-point coefficients);
// images with alpha are premultiplied and computed in floating point, as
// libvips computes them after vips_premultiply. Copying the arithmetic,
// rather than using another good filter, is what keeps the two engines'
// outputs within a grey level or two of each other.

// frows is a stream of float rows, top to bottom.
type frows interface {
	size() (width, height, bands int)
	next() ([]float32, error)
}

const (
	transformScale   = 64   // VIPS_TRANSFORM_SCALE: coefficient tables per pixel
	interpolateShift = 12   // VIPS_INTERPOLATE_SHIFT
	interpolateScale = 4096 // VIPS_INTERPOLATE_SCALE
	reduceGap        = 2.0  // vips_resize's default "gap"
)

// fixedRound is libvips' unsigned_fixed_round: (v + 2048) >> 12, a floor
// division also for negative v.
func fixedRound(v float64) float64 {
	return math.Floor((v + interpolateScale/2) / interpolateScale)
}

// clampU8 clips v to 0..255. It compares rather than calling the min
// and max builtins: for floats those are calls into the runtime in
// WebAssembly (runtime.fmin64 and fmax64, which order NaNs and zeros),
// and they took a fifth of a thumbnail's time there.
func clampU8(v float64) float64 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return v
}

// window keeps the last rows of a sequential stream so that a filter can
// read rows by index, clamped to the image as libvips' "extend copy"
// embedding does.
type window struct {
	src   frows
	h     int
	rows  [][]float32
	have  int
	width int
}

func newWindow(src frows, keep int) *window {
	w, h, b := src.size()
	win := &window{src: src, h: h, rows: make([][]float32, keep), width: w * b}
	for i := range win.rows {
		win.rows[i] = make([]float32, w*b)
	}
	return win
}

func (w *window) get(y int) ([]float32, error) {
	y = min(max(y, 0), w.h-1)
	for w.have <= y {
		r, err := w.src.next()
		if err != nil {
			return nil, err
		}
		copy(w.rows[w.have%len(w.rows)], r)
		w.have++
	}
	if y < w.have-len(w.rows) {
		return nil, fmt.Errorf("goengine: row %d left the window", y)
	}
	return w.rows[y%len(w.rows)], nil
}

// toFloat turns 8-bit rows into float rows, premultiplying by alpha as
// vips_premultiply does when the image has it.
type toFloat struct {
	src   rows
	alpha bool
	buf   []float32
}

func (t *toFloat) size() (int, int, int) { return t.src.size() }

func (t *toFloat) next() ([]float32, error) {
	row, err := t.src.next()
	if err != nil {
		return nil, err
	}
	_, _, b := t.src.size()
	if !t.alpha {
		for i, v := range row {
			t.buf[i] = float32(v)
		}
		return t.buf, nil
	}
	for i := 0; i < len(row); i += b {
		a := row[i+b-1]
		na := float32(a) / 255
		for k := 0; k < b-1; k++ {
			t.buf[i+k] = float32(row[i+k]) * na
		}
		t.buf[i+b-1] = float32(a)
	}
	return t.buf, nil
}

// vshrink is vips_shrinkv with "ceil": each output row averages f input
// rows, the last rows repeated past the bottom; 8-bit images round.
type vshrink struct {
	src     frows
	f, y, h int
	integer bool
	acc     []float64
	out     []float32
	last    []float32
	srcY    int
}

func (s *vshrink) size() (int, int, int) {
	w, _, b := s.src.size()
	return w, s.h, b
}

func (s *vshrink) next() ([]float32, error) {
	_, sh, _ := s.src.size()
	clear(s.acc)
	for k := 0; k < s.f; k++ {
		if s.srcY < sh {
			r, err := s.src.next()
			if err != nil {
				return nil, err
			}
			copy(s.last, r)
			s.srcY++
		}
		for i, v := range s.last {
			s.acc[i] += float64(v)
		}
	}
	for i, v := range s.acc {
		if s.integer {
			s.out[i] = float32(math.Floor((v + float64(s.f/2)) / float64(s.f)))
		} else {
			s.out[i] = float32(v / float64(s.f))
		}
	}
	s.y++
	return s.out, nil
}

// reduceKernel is one axis of a vips_reduceh/v: the residual shrink after
// the integer box shrink, its offset and its coefficient tables.
type reduceKernel struct {
	shrink float64
	offset float64
	n      int
	f      [transformScale + 1][]float64
	i      [transformScale + 1][]float64 // the 12-bit integer coefficients
	o      [transformScale + 1][]float64 // the 2.6 fixed-point ones of the vector path
}

// newReduce plans one axis of a reduction from in to out pixels as
// vips_reduceh/v do with vips_resize's gap: it returns the integer box
// shrink and the kernel for the rest (nil when nothing remains).
func newReduce(in int, shrink float64) (int, int, *reduceKernel) {
	out := int(float64(in)/shrink + 0.5) // VIPS_ROUND_UINT
	out = max(out, 1)
	extra := float64(out)*shrink - float64(in)
	f := max(1, int(math.Floor(float64(in)/float64(out)/reduceGap)))
	if f > 1 {
		shrink /= float64(f)
		extra /= float64(f)
	}
	if shrink == 1 {
		return f, out, nil
	}
	k := &reduceKernel{shrink: shrink, offset: (1+extra)/2 - 1}
	k.n = 2*int(math.RoundToEven(3*shrink)) + 1
	for x := 0; x <= transformScale; x++ {
		c := lanczos3Mask(shrink, float64(float32(x)/transformScale), k.n)
		k.f[x] = c
		k.i[x] = make([]float64, k.n)
		for j, v := range c {
			k.i[x][j] = float64(int(v * interpolateScale))
		}
		k.o[x] = toFixedPoint(c, 64)
	}
	return f, out, k
}

// toFixedPoint is vips_vector_to_fixed_point: coefficients scaled and
// rounded so that they sum to the scaled sum exactly, as the vector
// (orc) path of vips_reducev uses them for 8-bit images.
func toFixedPoint(in []float64, scale int) []float64 {
	n := len(in)
	fsum := 0.0
	for _, v := range in {
		fsum += v
	}
	target := int(math.RoundToEven(fsum * float64(scale)))
	high := float64(scale + (n+1)/2)
	low := float64(scale - (n+1)/2)
	out := make([]int, n)
	sum := 0
	for {
		guess := (high + low) / 2
		sum = 0
		for i, v := range in {
			out[i] = int(math.RoundToEven(v * guess))
			sum += out[i]
		}
		if sum == target {
			break
		}
		if sum < target {
			low = guess
		}
		if sum > target {
			high = guess
		}
		if high-low <= 0.01 {
			break
		}
	}
	if sum != target {
		each, extra := (target-sum)/n, (target-sum)%n
		dir := 1
		if extra < 0 {
			dir, extra = -1, -extra
		}
		for i := range out {
			out[i] += each
		}
		for i := 0; i < extra; i++ {
			out[i] += dir
		}
	}
	f := make([]float64, n)
	for i, v := range out {
		f[i] = float64(v)
	}
	return f
}

// lanczos3Mask is libvips' calculate_coefficients_lanczos for a = 3.
func lanczos3Mask(shrink, x float64, n int) []float64 {
	const a = 3.0
	c := make([]float64, n)
	half := x + float64(n)/2 - 1
	sum := 0.0
	for i := range c {
		xp := (float64(i) - half) / shrink
		var l float64
		switch {
		case xp == 0:
			l = 1
		case xp < -a || xp > a:
			l = 0
		default:
			l = a * math.Sin(math.Pi*xp) * math.Sin(math.Pi*xp/a) / (math.Pi * math.Pi * xp * xp)
		}
		c[i] = l
		sum += l
	}
	for i := range c {
		c[i] /= sum
	}
	return c
}

// tapIndex returns the unclamped first index and table index of o.
func (k *reduceKernel) tapIndex(o int) (int, int) {
	X := (float64(o)+0.5)*k.shrink - 0.5 - k.offset
	sx := int(X * transformScale * 2)
	return int(X), ((sx & (transformScale*2 - 1)) + 1) >> 1
}

// tap returns, for output pixel o, the first input index of the kernel's
// window (before clamping) and its coefficient table.
func (k *reduceKernel) tap(o int, integer bool) (int, []float64) {
	X := (float64(o)+0.5)*k.shrink - 0.5 - k.offset
	ix := int(X)
	sx := int(X * transformScale * 2)
	t := ((sx & (transformScale*2 - 1)) + 1) >> 1
	first := ix - (int(math.Ceil(float64(k.n)/2)) - 1)
	if integer {
		return first, k.i[t]
	}
	return first, k.f[t]
}

// vreduce is vips_reducev.
type vreduce struct {
	win     *window
	k       *reduceKernel
	h, y    int
	integer bool
	out     []float32
	acc     []float64
	acc32   []float32
	w, b    int
}

func (r *vreduce) size() (int, int, int) { return r.w, r.h, r.b }

func (r *vreduce) next() ([]float32, error) {
	first, c := r.k.tap(r.y, r.integer)
	if r.integer {
		// 8-bit images take vips_reducev's vector path: 2.6 fixed-point
		// coefficients, a bias of 32 and a shift by 6. The sums are of
		// integers below 2^24 (255 times the coefficients' absolute sum,
		// about 100), so float32 holds them exactly.
		_, t := r.k.tapIndex(r.y)
		c = r.k.o[t]
		if r.acc32 == nil {
			r.acc32 = make([]float32, len(r.out))
		}
		acc := r.acc32
		clear(acc)
		// Four rows a pass: the sums are exact whatever their order, and
		// the accumulator is read and written a quarter as often.
		j := 0
		for ; j+4 <= len(c); j += 4 {
			var rs [4][]float32
			for k := range rs {
				row, err := r.win.get(first + j + k)
				if err != nil {
					return nil, err
				}
				rs[k] = row[:len(acc)]
			}
			c0, c1, c2, c3 := float32(c[j]), float32(c[j+1]), float32(c[j+2]), float32(c[j+3])
			r0, r1, r2, r3 := rs[0], rs[1][:len(rs[0])], rs[2][:len(rs[0])], rs[3][:len(rs[0])]
			for i, v := range r0 {
				acc[i] += c0*v + c1*r1[i] + c2*r2[i] + c3*r3[i]
			}
		}
		for ; j < len(c); j++ {
			row, err := r.win.get(first + j)
			if err != nil {
				return nil, err
			}
			c32 := float32(c[j])
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += c32 * v
			}
		}
		out := r.out[:len(acc)]
		for i, v := range acc {
			// floor((v + 32) / 64), clipped: v is an integer, and an
			// arithmetic shift floors.
			q := int32(v+32) >> 6
			if q < 0 {
				q = 0
			} else if q > 255 {
				q = 255
			}
			out[i] = float32(q)
		}
		r.y++
		return r.out, nil
	}
	if r.acc == nil {
		r.acc = make([]float64, len(r.out))
	}
	acc := r.acc
	clear(acc)
	for j, cj := range c {
		row, err := r.win.get(first + j)
		if err != nil {
			return nil, err
		}
		if cj == 0 {
			continue
		}
		row = row[:len(acc)]
		for i, v := range row {
			acc[i] += cj * float64(v)
		}
	}
	for i, v := range acc {
		r.out[i] = float32(v)
	}
	r.y++
	return r.out, nil
}

// hpass transforms every row on its own: shrinkh, reduceh, and the
// horizontal half of the bicubic enlargement.
type hpass struct {
	src frows
	w   int
	fn  func(in, out []float32)
	out []float32
}

func (h *hpass) size() (int, int, int) {
	_, ht, b := h.src.size()
	return h.w, ht, b
}

func (h *hpass) next() ([]float32, error) {
	row, err := h.src.next()
	if err != nil {
		return nil, err
	}
	h.fn(row, h.out)
	return h.out, nil
}

// hfilter is a horizontal filter with its taps worked out once for
// every output pixel (they are the same on every row): input indexes,
// already clamped to the row as libvips' "extend copy" makes them, and
// coefficients.
type hfilter struct {
	outW, n int
	idx     []int32   // outW*n
	coef    []float64 // outW*n
	round   rounding
	f       float64 // the divisor of the box shrinks
}

// rounding is what a horizontal pass does to its sums, as libvips
// rounds each step. It is a value tested once per row rather than a
// function called per sample: an indirect call per sample was a tenth
// of a thumbnail's time in WebAssembly.
type rounding int

const (
	roundNone       rounding = iota // float images: the sum as it is
	roundShrinkInt                  // 8-bit box shrink: floor((s + f/2) / f)
	roundShrinkF                    // float box shrink: s / f
	roundFixedClamp                 // 8-bit reduce: fixed-point round, clipped
	roundFixed                      // 8-bit bicubic: fixed-point round
)

func (f *hfilter) apply(b int) func(in, out []float32) {
	n := f.n
	sum := make([]float64, f.outW*b)
	return func(in, out []float32) {
		switch b {
		case 1:
			for x := 0; x < f.outW; x++ {
				idx := f.idx[x*n : x*n+n]
				coef := f.coef[x*n : x*n+n]
				s := 0.0
				for j, i := range idx {
					s += coef[j] * float64(in[i])
				}
				sum[x] = s
			}
		case 3:
			for x := 0; x < f.outW; x++ {
				idx := f.idx[x*n : x*n+n]
				coef := f.coef[x*n : x*n+n]
				var s0, s1, s2 float64
				for j, i := range idx {
					c := coef[j]
					p := in[int(i)*3 : int(i)*3+3]
					s0 += c * float64(p[0])
					s1 += c * float64(p[1])
					s2 += c * float64(p[2])
				}
				o := sum[x*3 : x*3+3]
				o[0], o[1], o[2] = s0, s1, s2
			}
		default:
			for x := 0; x < f.outW; x++ {
				idx := f.idx[x*n : x*n+n]
				coef := f.coef[x*n : x*n+n]
				for ch := 0; ch < b; ch++ {
					s := 0.0
					for j, i := range idx {
						s += coef[j] * float64(in[int(i)*b+ch])
					}
					sum[x*b+ch] = s
				}
			}
		}
		out = out[:len(sum)]
		switch f.round {
		case roundNone:
			for i, s := range sum {
				out[i] = float32(s)
			}
		case roundShrinkInt:
			half := math.Floor(f.f / 2)
			for i, s := range sum {
				out[i] = float32(math.Floor((s + half) / f.f))
			}
		case roundShrinkF:
			for i, s := range sum {
				out[i] = float32(s / f.f)
			}
		case roundFixedClamp:
			for i, s := range sum {
				out[i] = float32(clampU8(fixedRound(s)))
			}
		case roundFixed:
			for i, s := range sum {
				out[i] = float32(fixedRound(s))
			}
		}
	}
}

func hshrinkFn(inW, f, b int, integer bool) func(in, out []float32) {
	outW := (inW + f - 1) / f
	h := &hfilter{outW: outW, n: f, idx: make([]int32, outW*f), coef: make([]float64, outW*f), f: float64(f)}
	for x := 0; x < outW; x++ {
		for k := 0; k < f; k++ {
			h.idx[x*f+k] = int32(min(x*f+k, inW-1))
			h.coef[x*f+k] = 1
		}
	}
	h.round = roundShrinkF
	if integer {
		h.round = roundShrinkInt
	}
	return h.apply(b)
}

func hreduceFn(inW, outW, b int, k *reduceKernel, integer bool) func(in, out []float32) {
	h := &hfilter{outW: outW, n: k.n, idx: make([]int32, outW*k.n), coef: make([]float64, outW*k.n)}
	for x := 0; x < outW; x++ {
		first, c := k.tap(x, integer)
		for j, cj := range c {
			h.idx[x*k.n+j] = int32(min(max(first+j, 0), inW-1))
			h.coef[x*k.n+j] = cj
		}
	}
	if integer {
		h.round = roundFixedClamp
	}
	return h.apply(b)
}

// bicubic tables: libvips' Catmull-Rom coefficients at 1/64 pixel, as
// doubles and as 12-bit integers.
var (
	bicubicOnce sync.Once
	bicubicF    [transformScale + 1][4]float64
	bicubicI    [transformScale + 1][4]float64
)

func bicubicTables() {
	bicubicOnce.Do(func() {
		for x := 0; x <= transformScale; x++ {
			t := float64(float32(x) / transformScale)
			cr1 := 1 - t
			cr2 := -0.5 * t
			cr3 := cr1 * cr2
			cone := cr1 * cr3
			cfou := t * cr3
			cr4 := cfou - cone
			ctwo := cr1 - cone + cr4
			cthr := t - cfou - cr4
			bicubicF[x] = [4]float64{cone, ctwo, cthr, cfou}
			for i := 0; i < 4; i++ {
				bicubicI[x][i] = float64(int(bicubicF[x][i] * interpolateScale))
			}
		}
	})
}

// bicubicTap returns for a position in libvips' "space 2" of an affine
// transform (the input shifted by the interpolator's window offset and a
// one-pixel border) the first input index of the 4-pixel stencil and the
// table index.
func bicubicTap(pos float64) (int, int) {
	ix := int(pos)
	sx := int(pos * transformScale * 2)
	t := ((sx & (transformScale*2 - 1)) + 1) >> 1
	return ix - 3, t
}

// upAxis is one axis of vips_resize's enlargement, vips_affine with a
// scale s (1 for an axis that is not enlarged) and input offset 0.5:
// output pixel o samples input position o/s - 0.5.
type upAxis struct {
	in, out int
	ia      float64
}

func newUpAxis(in int, s float64) upAxis {
	out := int(math.Floor(float64(in)*s + 0.5))
	return upAxis{in: in, out: max(out, 1), ia: 1 / s}
}

// pos is o's position in space 2: ia*o, minus the input offset (0.5,
// less the one-pixel border), plus the window offset (1).
func (a upAxis) pos(o int) float64 { return a.ia*float64(o) + 0.5 + 1 }

func hbicubicFn(a upAxis, b int, integer bool) func(in, out []float32) {
	bicubicTables()
	h := &hfilter{outW: a.out, n: 4, idx: make([]int32, a.out*4), coef: make([]float64, a.out*4)}
	for x := 0; x < a.out; x++ {
		first, t := bicubicTap(a.pos(x))
		c := &bicubicF[t]
		if integer {
			c = &bicubicI[t]
		}
		for j := 0; j < 4; j++ {
			h.idx[x*4+j] = int32(min(max(first+j, 0), a.in-1))
			h.coef[x*4+j] = c[j]
		}
	}
	if integer {
		h.round = roundFixed
	}
	return h.apply(b)
}

// vbicubic is the vertical half of the enlargement, over rows that the
// horizontal half made.
type vbicubic struct {
	win     *window
	a       upAxis
	y       int
	integer bool
	w, b    int
	out     []float32
	acc     []float64
}

func (v *vbicubic) size() (int, int, int) { return v.w, v.a.out, v.b }

func (v *vbicubic) next() ([]float32, error) {
	first, t := bicubicTap(v.a.pos(v.y))
	c := &bicubicF[t]
	if v.integer {
		c = &bicubicI[t]
	}
	if v.acc == nil {
		v.acc = make([]float64, len(v.out))
	}
	acc := v.acc
	clear(acc)
	for j := 0; j < 4; j++ {
		row, err := v.win.get(first + j)
		if err != nil {
			return nil, err
		}
		cj := c[j]
		row = row[:len(acc)]
		for i, p := range row {
			acc[i] += cj * float64(p)
		}
	}
	for i, s := range acc {
		if v.integer {
			s = clampU8(fixedRound(s))
		}
		v.out[i] = float32(s)
	}
	v.y++
	return v.out, nil
}

// toU8 ends the float stages: it unpremultiplies images with alpha and
// casts to 8 bits as libvips does (clipped, truncated), then makes the
// rows exactly width x height, cropping or repeating edge pixels around
// the centre, as the native engine's fit does after vips_resize.
type toU8 struct {
	src       frows
	alpha     bool
	w, h      int
	sw, sh, b int
	dx, dy    int // where the source's top-left lands in the output
	y, srcY   int
	cur       []uint8
	out       []uint8
}

func newToU8(src frows, alpha bool, w, h int) *toU8 {
	sw, sh, b := src.size()
	t := &toU8{src: src, alpha: alpha, w: w, h: h, sw: sw, sh: sh, b: b,
		cur: make([]uint8, sw*b), out: make([]uint8, w*b)}
	t.dx, t.dy = fitOffset(sw, w), fitOffset(sh, h)
	return t
}

// fitOffset is where a length-n run lands, centred, in a length-want
// one: libvips' fit crops (n-want)/2 from the start, or embeds at
// (want-n)/2.
func fitOffset(n, want int) int {
	if n > want {
		return -((n - want) / 2)
	}
	return (want - n) / 2
}

func (t *toU8) size() (int, int, int) { return t.w, t.h, t.b }

func (t *toU8) next() ([]uint8, error) {
	// Source row for output row t.y, clamped (extend copy).
	want := min(max(t.y-t.dy, 0), t.sh-1)
	for t.srcY <= want {
		row, err := t.src.next()
		if err != nil {
			return nil, err
		}
		t.cast(row)
		t.srcY++
	}
	// The source's columns in one copy; the columns outside it (the fit
	// embeds, rarely more than a pixel) repeat its edge pixels.
	b := t.b
	x0, x1 := max(t.dx, 0), min(t.dx+t.sw, t.w)
	copy(t.out[x0*b:x1*b], t.cur[(x0-t.dx)*b:(x1-t.dx)*b])
	for x := 0; x < t.w; x++ {
		if x == x0 {
			x = x1
			if x >= t.w {
				break
			}
		}
		sx := min(max(x-t.dx, 0), t.sw-1)
		copy(t.out[x*b:x*b+b], t.cur[sx*b:sx*b+b])
	}
	t.y++
	return t.out, nil
}

func (t *toU8) cast(row []float32) {
	b := t.b
	if !t.alpha {
		for i, v := range row {
			t.cur[i] = uint8(clampU8(float64(v)))
		}
		return
	}
	for i := 0; i < len(row); i += b {
		a := float64(row[i+b-1])
		f := 0.0
		if a != 0 {
			f = 255 / a
		}
		for k := 0; k < b-1; k++ {
			t.cur[i+k] = uint8(clampU8(f * float64(row[i+k])))
		}
		t.cur[i+b-1] = uint8(clampU8(a))
	}
}

// resize returns src scaled to exactly width x height as the native
// engine's resize step makes it. Sources already of that size pass.
func resize(src rows, width, height int) rows {
	sw, sh, b := src.size()
	if sw == width && sh == height {
		return src
	}
	alpha := b == 2 || b == 4
	integer := !alpha
	var cur frows = &toFloat{src: src, alpha: alpha, buf: make([]float32, sw*b)}

	hscale := float64(width) / float64(sw)
	vscale := float64(height) / float64(sh)
	hscale = max(hscale, 1/float64(sw))
	vscale = max(vscale, 1/float64(sh))

	if vscale < 1 {
		f, out, k := newReduce(sh, 1/vscale)
		if f > 1 {
			cur = &vshrink{src: cur, f: f, h: (sh + f - 1) / f, integer: integer,
				acc: make([]float64, sw*b), out: make([]float32, sw*b), last: make([]float32, sw*b)}
		}
		if k != nil {
			cur = &vreduce{win: newWindow(cur, k.n+2), k: k, h: out, integer: integer,
				out: make([]float32, sw*b), w: sw, b: b}
		}
	}
	if hscale < 1 {
		f, out, k := newReduce(sw, 1/hscale)
		w := sw
		if f > 1 {
			w = (sw + f - 1) / f
			cur = &hpass{src: cur, w: w, fn: hshrinkFn(sw, f, b, integer), out: make([]float32, w*b)}
		}
		if k != nil {
			cur = &hpass{src: cur, w: out, fn: hreduceFn(w, out, b, k, integer), out: make([]float32, out*b)}
		}
	}
	if hscale > 1 || vscale > 1 {
		cw, ch, _ := cur.size()
		hs, vs := 1.0, 1.0
		if hscale > 1 {
			hs = hscale
		}
		if vscale > 1 {
			vs = vscale
		}
		ha, va := newUpAxis(cw, hs), newUpAxis(ch, vs)
		cur = &hpass{src: cur, w: ha.out, fn: hbicubicFn(ha, b, integer), out: make([]float32, ha.out*b)}
		cur = &vbicubic{win: newWindow(cur, 6), a: va, integer: integer, w: ha.out, b: b,
			out: make([]float32, ha.out*b)}
	}
	return newToU8(cur, alpha, width, height)
}
