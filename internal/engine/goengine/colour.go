package goengine

import (
	"math"
	"sync"

	"github.com/iiifd/iiifd/internal/iiif"
)

// colourRows applies a quality to a stream of rows as the native engine
// does: gray and bitonal make one grey band (plus alpha), color makes
// RGB, default keeps the source's bands; then, for formats without alpha,
// flattens alpha onto white.
type colourRows struct {
	src         rows
	w, h        int
	in, out     int // bands
	flatten     bool
	toGray      bool // RGB to grey
	toColour    bool // grey to RGB
	buf, outBuf []uint8
}

func newColourRows(src rows, q iiif.Quality, alphaFormat bool) rows {
	w, h, in := src.size()
	gray := in <= 2
	alpha := in == 2 || in == 4
	c := &colourRows{src: src, w: w, h: h, in: in}
	bands := in
	switch q {
	case iiif.QualityGray, iiif.QualityBitonal:
		if !gray {
			c.toGray = true
			bands = 1
			if alpha {
				bands = 2
			}
		}
	case iiif.QualityColor:
		if gray {
			c.toColour = true
			bands = 3
			if alpha {
				bands = 4
			}
		}
	}
	if alpha && !alphaFormat {
		c.flatten = true
		bands--
	}
	if !c.flatten && !c.toGray && !c.toColour {
		return src
	}
	c.out = bands
	c.buf = make([]uint8, w*(bands+1))
	c.outBuf = make([]uint8, w*bands)
	return c
}

func (c *colourRows) size() (int, int, int) { return c.w, c.h, c.out }

func (c *colourRows) next() ([]uint8, error) {
	row, err := c.src.next()
	if err != nil {
		return nil, err
	}
	// First the colour bands (keeping alpha), then the flatten.
	mid := c.in
	cur := row
	if c.toGray {
		mid = 1 + (c.in+1)%2 // 3 -> 1, 4 -> 2
		lut := grayTables()
		dst := c.buf[:c.w*mid]
		for i := 0; i < c.w; i++ {
			p := row[i*c.in:]
			dst[i*mid] = lut.gray(p[0], p[1], p[2])
			if mid == 2 {
				dst[i*mid+1] = p[3]
			}
		}
		cur = dst
	} else if c.toColour {
		mid = c.in + 2
		dst := c.buf[:c.w*mid]
		convertBands(row, c.in, dst, mid)
		cur = dst
	}
	if !c.flatten {
		copy(c.outBuf, cur)
		return c.outBuf, nil
	}
	// vips_flatten onto white, integer arithmetic as libvips does it for
	// 8-bit images: (v*a + 255*(255-a)) / 255, truncated.
	nb := mid - 1
	for i := 0; i < c.w; i++ {
		p := cur[i*mid:]
		a := int(p[nb])
		for b := 0; b < nb; b++ {
			c.outBuf[i*nb+b] = uint8((int(p[b])*a + 255*(255-a)) / 255)
		}
	}
	return c.outBuf, nil
}

// grayLUT holds libvips' 8-bit sRGB tables: sRGB to linear light and
// back (vips_v2Y_8 and vips_Y2v_8, the latter with a repeated last entry
// for interpolation).
type grayLUT struct {
	v2Y [256]float32
	Y2v [257]int32
}

var (
	grayOnce sync.Once
	grayLut  grayLUT
)

func grayTables() *grayLUT {
	grayOnce.Do(func() {
		for i := 0; i < 256; i++ {
			f := float32(i) / 255
			var v float32
			if f <= 0.0031308 {
				v = 12.92 * f
			} else {
				v = float32((1.0+0.055)*math.Pow(float64(f), 1.0/2.4) - 0.055)
			}
			grayLut.Y2v[i] = int32(math.RoundToEven(float64(255 * v)))
			if f <= 0.04045 {
				grayLut.v2Y[i] = f / 12.92
			} else {
				grayLut.v2Y[i] = float32(math.Pow((float64(f)+0.055)/(1+0.055), 2.4))
			}
		}
		grayLut.Y2v[256] = grayLut.Y2v[255]
	})
	return &grayLut
}

// gray converts one sRGB pixel to grey as libvips' sRGB -> scRGB -> B_W
// route does: luminance 0.2 R + 0.7 G + 0.1 B in linear light, back to
// sRGB through the interpolated table, rounded.
func (l *grayLUT) gray(r, g, b uint8) uint8 {
	y := 0.2*l.v2Y[r] + 0.7*l.v2Y[g] + 0.1*l.v2Y[b]
	yf := y * 255
	if yf < 0 {
		yf = 0
	}
	if yf > 255 {
		yf = 255
	}
	yi := int(yf)
	v := float32(l.Y2v[yi]) + float32(l.Y2v[yi+1]-l.Y2v[yi])*(yf-float32(yi))
	return uint8(math.RoundToEven(float64(v)))
}
