package goengine

import "image"

// libjpeg (which libvips decodes JPEG with) and Go's decoder agree on the
// coefficients but not on what comes after: libjpeg upsamples subsampled
// chroma with a triangle filter ("fancy upsampling", its default) where
// Go repeats each chroma sample, and it converts YCbCr to RGB with its
// own tables. On stored tiles, almost always 4:2:0, repeating chroma
// alone costs some 2 dB of PSNR against the native server on colourful
// edges, so the engine redoes both steps as libjpeg does.

// yccTables are libjpeg's jdcolor.c tables (16-bit fixed point).
type yccTables struct {
	crR, cbB, crG, cbG [256]int32
}

func (t *yccTables) rgb(y, cb, cr uint8) (uint8, uint8, uint8) {
	Y := int32(y)
	r := Y + t.crR[cr]
	g := Y + ((t.cbG[cb] + t.crG[cr]) >> 16)
	b := Y + t.cbB[cb]
	return clip8(r), clip8(g), clip8(b)
}

func clip8(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

var ycc = func() *yccTables {
	const half = 1 << 15
	fix := func(x float64) int32 { return int32(x*65536 + 0.5) }
	t := &yccTables{}
	for i := 0; i < 256; i++ {
		x := int32(i - 128)
		t.crR[i] = (fix(1.40200)*x + half) >> 16
		t.cbB[i] = (fix(1.77200)*x + half) >> 16
		t.crG[i] = -fix(0.71414)*x + half
		t.cbG[i] = -fix(0.34414) * x
	}
	return t
}()

// fancyChroma returns row y of m's Cb and Cr planes upsampled to full
// width as libjpeg's h2v2 and h2v1 fancy upsamplers make them, or false
// for other subsamplings (then chroma is repeated, as libjpeg's plain
// upsampler does for them). The slices are kept in buf and valid until
// its next use.
func fancyChroma(m *image.YCbCr, y int, buf *[2][]uint8) ([]uint8, []uint8, bool) {
	w := m.Rect.Dx()
	if w < 2 {
		return nil, nil, false
	}
	var vertical bool
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio420:
		vertical = true
	case image.YCbCrSubsampleRatio422:
	default:
		return nil, nil, false
	}
	cw := (w + 1) / 2
	ch := (m.Rect.Dy() + 1) / 2
	ly := y - m.Rect.Min.Y
	cy := ly
	if vertical {
		cy = ly / 2
	}
	for k := range buf {
		if cap(buf[k]) < 2*cw {
			buf[k] = make([]uint8, 2*cw)
		}
		buf[k] = buf[k][:2*cw]
	}
	out := *buf
	for k, plane := range [2][]uint8{m.Cb, m.Cr} {
		row := plane[cy*m.CStride : cy*m.CStride+cw]
		o := out[k]
		if !vertical {
			// h2v1: (3*this + neighbour + 1 or 2) >> 2.
			o[0] = row[0]
			o[1] = uint8((int(row[0])*3 + int(row[1]) + 2) >> 2)
			for i := 1; i < cw-1; i++ {
				o[2*i] = uint8((int(row[i])*3 + int(row[i-1]) + 1) >> 2)
				o[2*i+1] = uint8((int(row[i])*3 + int(row[i+1]) + 2) >> 2)
			}
			if cw > 1 {
				i := cw - 1
				o[2*i] = uint8((int(row[i])*3 + int(row[i-1]) + 1) >> 2)
				o[2*i+1] = row[i]
			}
			continue
		}
		// h2v2: column sums with the nearer neighbouring chroma row
		// (above for even rows, below for odd; edge rows repeated), then
		// the same triangle across.
		ny := cy - 1
		if ly%2 == 1 {
			ny = cy + 1
		}
		ny = min(max(ny, 0), ch-1)
		nrow := plane[ny*m.CStride : ny*m.CStride+cw]
		col := func(i int) int { return int(row[i])*3 + int(nrow[i]) }
		this, next := col(0), col(min(1, cw-1))
		o[0] = uint8((this*4 + 8) >> 4)
		o[1] = uint8((this*3 + next + 7) >> 4)
		last := this
		this = next
		for i := 1; i < cw-1; i++ {
			next = col(i + 1)
			o[2*i] = uint8((this*3 + last + 8) >> 4)
			o[2*i+1] = uint8((this*3 + next + 7) >> 4)
			last, this = this, next
		}
		if cw > 1 {
			i := cw - 1
			o[2*i] = uint8((this*3 + last + 8) >> 4)
			o[2*i+1] = uint8((this*4 + 7) >> 4)
		}
	}
	return out[0][:w], out[1][:w], true
}
