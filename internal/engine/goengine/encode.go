package goengine

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"io"
	"sort"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
)

// ctxRows checks the render's context every few rows, so that a render
// nobody waits for stops within a band of rows.
type ctxRows struct {
	ctx context.Context
	src rows
	n   int
}

func (c *ctxRows) size() (int, int, int) { return c.src.size() }

func (c *ctxRows) next() ([]uint8, error) {
	if c.n++; c.n%32 == 0 {
		if err := c.ctx.Err(); err != nil {
			return nil, err
		}
	}
	return c.src.next()
}

// errWriter remembers the first error of the client's writer, so that it
// is told apart from the encoder's own failures.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		e.err = err
	}
	return n, err
}

// encode writes the rows of src to w as format f.
func encode(ctx context.Context, src rows, f iiif.Format, opt engine.EncodeOptions, oneBit bool, w io.Writer) error {
	ew := &errWriter{w: w}
	var err error
	switch f {
	case iiif.FormatJPG:
		err = encodeJPEG(src, opt.JPEGQuality, ew)
	case iiif.FormatPNG:
		err = encodePNG(src, opt.PNGCompression, oneBit, ew)
	case iiif.FormatGIF:
		err = encodeGIF(src, ew)
	default:
		return fault.New(fault.NotImplemented, "the %s format is not supported by this server", f)
	}
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if ew.err != nil {
		return fmt.Errorf("goengine: writing the image: %w", ew.err)
	}
	var se interface{ HTTPStatus() int }
	if ok := asStatus(err, &se); ok {
		return err
	}
	return fault.Wrap(fault.Internal, fmt.Errorf("goengine: encoding %s: %w", f, err), msgEncode)
}

// encodeJPEG holds the image as Go's encoder takes it without a copy:
// grey, or YCbCr with 4:2:0 chroma (1.5 bytes a pixel), which is the
// subsampling Go's encoder writes anyway. Chroma is the rounded mean of
// each 2x2 block's per-pixel chroma, as the encoder's own downsampling
// of an RGB image computes it.
func encodeJPEG(src rows, quality int, w io.Writer) error {
	width, height, b := src.size()
	var img image.Image
	switch b {
	case 1:
		g := image.NewGray(image.Rect(0, 0, width, height))
		for y := 0; y < height; y++ {
			row, err := src.next()
			if err != nil {
				return err
			}
			copy(g.Pix[y*g.Stride:], row)
		}
		img = g
	case 3:
		m := image.NewYCbCr(image.Rect(0, 0, width, height), image.YCbCrSubsampleRatio420)
		cw := (width + 1) / 2
		cb := make([]uint32, cw)
		cr := make([]uint32, cw)
		for y := 0; y < height; y++ {
			row, err := src.next()
			if err != nil {
				return err
			}
			rgbToYCbCrRow(row[:3*width], m.Y[y*m.YStride:y*m.YStride+width], cb, cr)
			if y%2 == 1 || y == height-1 {
				// Each sum is of 2x2 pixels, fewer at the right and
				// bottom edges of an odd width or height.
				ny := uint32(1 + y%2)
				o := (y / 2) * m.CStride
				for i := 0; i < cw; i++ {
					n := ny * 2
					if 2*i+1 == width {
						n = ny
					}
					m.Cb[o+i] = uint8((cb[i] + n/2) / n)
					m.Cr[o+i] = uint8((cr[i] + n/2) / n)
				}
				clear(cb)
				clear(cr)
			}
		}
		img = m
	default:
		return fmt.Errorf("goengine: %d bands for JPEG", b)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := jpeg.Encode(bw, img, &jpeg.Options{Quality: quality}); err != nil {
		return err
	}
	return bw.Flush()
}

// rgbToYCbCrRow converts a row of RGB pixels to luma in ys and adds
// their chroma to the sums of pixel pairs in cb and cr, with
// color.RGBToYCbCr's JFIF arithmetic written out: a call per pixel
// was a tenth of a JPEG crop's time in WebAssembly.
func rgbToYCbCrRow(row, ys []uint8, cb, cr []uint32) {
	for x := range ys {
		p := row[3*x : 3*x+3]
		r, g, b := int32(p[0]), int32(p[1]), int32(p[2])
		ys[x] = uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 16)
		u := -11056*r - 21712*g + 32768*b + 257<<15
		if uint32(u)&0xff000000 == 0 {
			u >>= 16
		} else {
			u = ^(u >> 31)
		}
		v := 32768*r - 27440*g - 5328*b + 257<<15
		if uint32(v)&0xff000000 == 0 {
			v >>= 16
		} else {
			v = ^(v >> 31)
		}
		cb[x>>1] += uint32(uint8(u))
		cr[x>>1] += uint32(uint8(v))
	}
}

// encodePNG writes a PNG as its rows come, never holding the image: the
// colour type follows the bands (grey, grey with alpha, RGB, RGBA), 8
// bits a sample, or 1 bit for one-band bitonal images as the native
// engine writes them. Rows are not filtered, as libvips writes them by
// default: choosing a filter per row (the minimum-sum heuristic) made a
// 3584x3584 crop 15% smaller (4.7 MB against 5.5 MB) but took 70% more
// CPU time (1.08 s against 0.63 s), and the edge must answer within its
// time like the server.
func encodePNG(src rows, level int, oneBit bool, w io.Writer) error {
	width, height, b := src.size()
	colourType := [...]byte{0, 0, 4, 2, 6}[b]
	depth := byte(8)
	if oneBit && b == 1 {
		depth = 1
	}
	if _, err := w.Write([]byte("\x89PNG\r\n\x1a\n")); err != nil {
		return err
	}
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = depth, colourType
	if err := writeChunk(w, "IHDR", ihdr[:]); err != nil {
		return err
	}
	cw := &chunkWriter{w: w, buf: make([]byte, 0, 64<<10)}
	zw, err := newZlibWriter(cw, level)
	if err != nil {
		return err
	}
	stride := width * b
	if depth == 1 {
		stride = (width + 7) / 8
	}
	line := make([]byte, stride+1)
	for y := 0; y < height; y++ {
		row, err := src.next()
		if err != nil {
			return err
		}
		if depth == 1 {
			clear(line)
			for x := 0; x < width; x++ {
				if row[x] >= 128 {
					line[1+x/8] |= 0x80 >> (x % 8)
				}
			}
			if _, err := zw.Write(line); err != nil {
				return err
			}
			continue
		}
		line[0] = 0 // filter type None
		copy(line[1:], row)
		if _, err := zw.Write(line); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := cw.flush(); err != nil {
		return err
	}
	return writeChunk(w, "IEND", nil)
}

func writeChunk(w io.Writer, kind string, data []byte) error {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
	copy(hdr[4:], kind)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	crc.Write(data)
	var tail [4]byte
	binary.BigEndian.PutUint32(tail[:], crc.Sum32())
	for _, p := range [][]byte{hdr[:], data, tail[:]} {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// chunkWriter cuts the zlib stream into IDAT chunks.
type chunkWriter struct {
	w   io.Writer
	buf []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), cap(c.buf)-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == cap(c.buf) {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *chunkWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	err := writeChunk(c.w, "IDAT", c.buf)
	c.buf = c.buf[:0]
	return err
}

// encodeGIF writes a GIF. Images of at most 256 colours (grey, bitonal,
// flat graphics) keep them exactly; others get an adaptive palette
// (median cut) and Floyd-Steinberg dithering, as libvips' gifsave does
// with libimagequant. Pixels with alpha below 128 become the transparent
// colour.
func encodeGIF(src rows, w io.Writer) error {
	r, err := collect(src)
	if err != nil {
		return err
	}
	img := gifImage(r)
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := gif.Encode(bw, img, &gif.Options{NumColors: len(img.Palette)}); err != nil {
		return err
	}
	return bw.Flush()
}

// gifImage chooses the palette and the indexes of r.
func gifImage(r *raster) *image.Paletted {
	b := r.b
	alpha := b == 2 || b == 4
	rect := image.Rect(0, 0, r.w, r.h)
	rgb := func(i int) (uint8, uint8, uint8) {
		p := r.pix[i*b:]
		if b <= 2 {
			return p[0], p[0], p[0]
		}
		return p[0], p[1], p[2]
	}
	clear := func(i int) bool { return alpha && r.pix[i*b+b-1] < 128 }
	n := r.w * r.h

	// Exact colours when there are few enough.
	limit := 256
	if alpha {
		limit = 255
	}
	seen := map[uint32]uint8{}
	exact := true
	for i := 0; i < n && exact; i++ {
		if clear(i) {
			continue
		}
		R, G, B := rgb(i)
		k := uint32(R)<<16 | uint32(G)<<8 | uint32(B)
		if _, ok := seen[k]; !ok {
			if len(seen) == limit {
				exact = false
				break
			}
			seen[k] = uint8(len(seen))
		}
	}
	var pal color.Palette
	if exact {
		keys := make([]uint32, 0, len(seen))
		for k := range seen {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for i, k := range keys {
			seen[k] = uint8(i)
			pal = append(pal, color.RGBA{uint8(k >> 16), uint8(k >> 8), uint8(k), 255})
		}
	} else {
		pal = medianCut(r, limit, rgb, clear)
	}
	transparent := -1
	if alpha {
		transparent = len(pal)
		pal = append(pal, color.RGBA{})
	}
	if len(pal) == 0 {
		pal = append(pal, color.RGBA{A: 255})
	}
	out := image.NewPaletted(rect, pal)
	if exact {
		for i := 0; i < n; i++ {
			if clear(i) {
				out.Pix[i] = uint8(transparent)
				continue
			}
			R, G, B := rgb(i)
			out.Pix[i] = seen[uint32(R)<<16|uint32(G)<<8|uint32(B)]
		}
		return out
	}
	ditherFS(r, out, len(pal)-boolInt(alpha), rgb, clear, transparent)
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// medianCut builds a palette of at most k colours from a 15-bit
// histogram of r: boxes of histogram cells are split at the median of
// their longest axis, the box with the most pixels (weighted by its
// extent) first, and each box gives the mean of its pixels.
func medianCut(r *raster, k int, rgb func(int) (uint8, uint8, uint8), clear func(int) bool) color.Palette {
	type cell struct {
		n       uint32
		r, g, b uint64
	}
	hist := make([]cell, 1<<15)
	for i := 0; i < r.w*r.h; i++ {
		if clear(i) {
			continue
		}
		R, G, B := rgb(i)
		c := &hist[int(R>>3)<<10|int(G>>3)<<5|int(B>>3)]
		c.n++
		c.r += uint64(R)
		c.g += uint64(G)
		c.b += uint64(B)
	}
	var cells []int
	for i, c := range hist {
		if c.n > 0 {
			cells = append(cells, i)
		}
	}
	comp := func(i, axis int) int { return (i >> (10 - 5*axis)) & 31 }
	type box struct {
		cells []int
		n     uint64
	}
	stat := func(bx box) (axis, extent int) {
		for a := 0; a < 3; a++ {
			lo, hi := 31, 0
			for _, c := range bx.cells {
				v := comp(c, a)
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi-lo > extent || a == 0 {
				axis, extent = a, hi-lo
			}
		}
		return
	}
	count := func(cs []int) uint64 {
		var s uint64
		for _, c := range cs {
			s += uint64(hist[c].n)
		}
		return s
	}
	boxes := []box{{cells, count(cells)}}
	for len(boxes) < k {
		best, bestScore := -1, uint64(0)
		for i, bx := range boxes {
			if len(bx.cells) < 2 {
				continue
			}
			_, ext := stat(bx)
			if s := bx.n * uint64(ext+1); s > bestScore {
				best, bestScore = i, s
			}
		}
		if best < 0 {
			break
		}
		bx := boxes[best]
		axis, _ := stat(bx)
		sort.Slice(bx.cells, func(i, j int) bool { return comp(bx.cells[i], axis) < comp(bx.cells[j], axis) })
		half, acc, cut := bx.n/2, uint64(0), 1
		for i, c := range bx.cells {
			acc += uint64(hist[c].n)
			if acc >= half {
				cut = max(1, min(i+1, len(bx.cells)-1))
				break
			}
		}
		a, b := bx.cells[:cut], bx.cells[cut:]
		boxes[best] = box{a, count(a)}
		boxes = append(boxes, box{b, count(b)})
	}
	pal := make(color.Palette, 0, len(boxes))
	for _, bx := range boxes {
		var n, R, G, B uint64
		for _, c := range bx.cells {
			h := hist[c]
			n += uint64(h.n)
			R += h.r
			G += h.g
			B += h.b
		}
		if n == 0 {
			continue
		}
		pal = append(pal, color.RGBA{uint8((R + n/2) / n), uint8((G + n/2) / n), uint8((B + n/2) / n), 255})
	}
	return pal
}

// ditherFS maps r to the first k colours of out's palette with
// Floyd-Steinberg error diffusion; nearest colours are remembered per
// 15-bit cell.
func ditherFS(r *raster, out *image.Paletted, k int, rgb func(int) (uint8, uint8, uint8), clear func(int) bool, transparent int) {
	pal := make([][3]int32, k)
	for i := 0; i < k; i++ {
		c := out.Palette[i].(color.RGBA)
		pal[i] = [3]int32{int32(c.R), int32(c.G), int32(c.B)}
	}
	cache := make([]int16, 1<<15)
	for i := range cache {
		cache[i] = -1
	}
	nearest := func(R, G, B int32) int {
		key := int(R>>3)<<10 | int(G>>3)<<5 | int(B>>3)
		if c := cache[key]; c >= 0 {
			return int(c)
		}
		best, bd := 0, int32(1<<30)
		for i, p := range pal {
			dr, dg, db := p[0]-R, p[1]-G, p[2]-B
			if d := dr*dr + dg*dg + db*db; d < bd {
				best, bd = i, d
			}
		}
		cache[key] = int16(best)
		return best
	}
	w := r.w
	errCur := make([][3]int32, w+2)
	errNext := make([][3]int32, w+2)
	for y := 0; y < r.h; y++ {
		clearErr := errNext
		for i := range clearErr {
			clearErr[i] = [3]int32{}
		}
		for x := 0; x < w; x++ {
			i := y*w + x
			if clear(i) {
				out.Pix[i] = uint8(transparent)
				continue
			}
			R, G, B := rgb(i)
			e := errCur[x+1]
			v := [3]int32{
				min(255, max(0, int32(R)+e[0]/16)),
				min(255, max(0, int32(G)+e[1]/16)),
				min(255, max(0, int32(B)+e[2]/16)),
			}
			c := nearest(v[0], v[1], v[2])
			out.Pix[i] = uint8(c)
			for ch := 0; ch < 3; ch++ {
				d := v[ch] - pal[c][ch]
				errCur[x+2][ch] += d * 7
				errNext[x][ch] += d * 3
				errNext[x+1][ch] += d * 5
				errNext[x+2][ch] += d * 1
			}
		}
		errCur, errNext = errNext, errCur
	}
}
