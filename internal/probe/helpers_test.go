package probe

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// countingReader is a ReaderAt over bytes that counts what is read.
type countingReader struct {
	b     []byte
	reads int
	bytes int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	if off < 0 || off > int64(len(c.b)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, c.b[off:])
	c.bytes += int64(n)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// --- a small TIFF writer ---------------------------------------------------

// tiffImage describes one IFD for writeTIFF. Pixel data is zeros, and all
// tiles (or strips) of an image share one block, so that even an image of
// 100,000 tiles makes a small file: only its offset arrays grow.
type tiffImage struct {
	w, h         int
	tw, th       int // tile size; 0 for strips
	rowsPerStrip int // 0: one strip
	spp          int // 0: 3
	nst          uint32
	compression  int // 0: 1 (none)
	jpegTables   []byte
	orientation  int
	subs         []tiffImage // written as SubIFDs of this IFD
}

type tiffEntry struct {
	tag, typ uint16
	vals     []uint64 // integers, for integer types
	raw      []byte   // bytes, for BYTE/UNDEFINED/ASCII
}

// byteOrder is what binary.LittleEndian and binary.BigEndian both are.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

type tiffWriter struct {
	b     []byte
	order byteOrder
	big   bool
}

// writeTIFF writes pages as the main IFD chain of a TIFF.
func writeTIFF(order byteOrder, big bool, pages ...tiffImage) []byte {
	b, _, _ := writeTIFFChain(order, big, pages...)
	return b
}

// writeTIFFChain is writeTIFF, also returning the offset of each page's IFD
// and the position of each page's next-IFD pointer, for tests that break
// the chain.
func writeTIFFChain(order byteOrder, big bool, pages ...tiffImage) (b []byte, ifds, nexts []int64) {
	w := &tiffWriter{order: order, big: big}
	if order == binary.LittleEndian {
		w.b = append(w.b, 'I', 'I')
	} else {
		w.b = append(w.b, 'M', 'M')
	}
	var firstPtr int64
	if big {
		w.b = order.AppendUint16(w.b, 43)
		w.b = order.AppendUint16(w.b, 8)
		w.b = order.AppendUint16(w.b, 0)
		firstPtr = int64(len(w.b))
		w.b = order.AppendUint64(w.b, 0)
	} else {
		w.b = order.AppendUint16(w.b, 42)
		firstPtr = int64(len(w.b))
		w.b = order.AppendUint32(w.b, 0)
	}
	ptr := firstPtr
	for _, p := range pages {
		off, next := w.image(p)
		w.putOffset(ptr, uint64(off))
		ptr = next
		ifds = append(ifds, off)
		nexts = append(nexts, next)
	}
	return w.b, ifds, nexts
}

func (w *tiffWriter) putOffset(at int64, v uint64) {
	if w.big {
		w.order.PutUint64(w.b[at:], v)
	} else {
		w.order.PutUint32(w.b[at:], uint32(v))
	}
}

func (w *tiffWriter) offType() uint16 {
	if w.big {
		return typeLong8
	}
	return typeLong
}

// image writes an image's data, its sub-IFDs and its IFD; it returns the
// IFD's offset and where its next-IFD pointer is.
func (w *tiffWriter) image(im tiffImage) (int64, int64) {
	spp := cmp(im.spp, 3)
	var chunkSize, chunks int
	if im.tw > 0 {
		chunkSize = im.tw * im.th * spp
		chunks = ceilDiv(im.w, im.tw) * ceilDiv(im.h, im.th)
	} else {
		rps := cmp(im.rowsPerStrip, im.h)
		chunkSize = im.w * rps * spp
		chunks = ceilDiv(im.h, rps)
	}
	data := int64(len(w.b))
	w.b = append(w.b, make([]byte, chunkSize)...)

	var subOffs []uint64
	for _, s := range im.subs {
		off, _ := w.image(s)
		subOffs = append(subOffs, uint64(off))
	}

	offs := make([]uint64, chunks)
	lens := make([]uint64, chunks)
	for i := range offs {
		offs[i], lens[i] = uint64(data), uint64(chunkSize)
	}
	bps := make([]uint64, spp)
	for i := range bps {
		bps[i] = 8
	}
	photometric := uint64(2)
	if spp < 3 {
		photometric = 1
	}
	short := func(v int) uint16 { // the type a writer would choose
		if v > 0xffff {
			return typeLong
		}
		return typeShort
	}
	es := []tiffEntry{
		{tag: tagImageWidth, typ: typeLong, vals: []uint64{uint64(im.w)}},
		{tag: tagImageLength, typ: short(im.h), vals: []uint64{uint64(im.h)}},
		{tag: tagBitsPerSample, typ: typeShort, vals: bps},
		{tag: tagCompression, typ: typeShort, vals: []uint64{uint64(cmp(im.compression, 1))}},
		{tag: tagPhotometric, typ: typeShort, vals: []uint64{photometric}},
		{tag: tagSamplesPerPixel, typ: typeShort, vals: []uint64{uint64(spp)}},
		{tag: tagPlanarConfig, typ: typeShort, vals: []uint64{1}},
	}
	if im.tw > 0 {
		es = append(es,
			tiffEntry{tag: tagTileWidth, typ: typeShort, vals: []uint64{uint64(im.tw)}},
			tiffEntry{tag: tagTileLength, typ: typeLong, vals: []uint64{uint64(im.th)}},
			tiffEntry{tag: tagTileOffsets, typ: w.offType(), vals: offs},
			tiffEntry{tag: tagTileByteCounts, typ: typeLong, vals: lens})
	} else {
		es = append(es,
			tiffEntry{tag: tagRowsPerStrip, typ: typeLong, vals: []uint64{uint64(cmp(im.rowsPerStrip, im.h))}},
			tiffEntry{tag: tagStripOffsets, typ: w.offType(), vals: offs},
			tiffEntry{tag: tagStripByteCounts, typ: typeShort, vals: lens})
	}
	if im.nst != 0 {
		es = append(es, tiffEntry{tag: tagNewSubfileType, typ: typeLong, vals: []uint64{uint64(im.nst)}})
	}
	if im.orientation != 0 {
		es = append(es, tiffEntry{tag: tagOrientation, typ: typeShort, vals: []uint64{uint64(im.orientation)}})
	}
	if im.jpegTables != nil {
		es = append(es, tiffEntry{tag: tagJPEGTables, typ: typeUndefined, raw: im.jpegTables})
	}
	if subOffs != nil {
		typ := uint16(typeIFD)
		if w.big {
			typ = typeIFD8
		}
		es = append(es, tiffEntry{tag: tagSubIFDs, typ: typ, vals: subOffs})
	}
	off, next := w.ifd(es)
	return off, next
}

// ifd writes a directory with its out-of-line values after it, as libtiff
// does, and returns its offset and the position of its next pointer.
func (w *tiffWriter) ifd(es []tiffEntry) (int64, int64) {
	slices.SortStableFunc(es, func(a, b tiffEntry) int { return int(a.tag) - int(b.tag) })
	if len(w.b)%2 == 1 {
		w.b = append(w.b, 0)
	}
	off := int64(len(w.b))
	o := w.order
	entrySize, ptrSize := 12, 4
	if w.big {
		entrySize, ptrSize = 20, 8
	}
	if w.big {
		w.b = o.AppendUint64(w.b, uint64(len(es)))
	} else {
		w.b = o.AppendUint16(w.b, uint16(len(es)))
	}
	entries := int64(len(w.b))
	w.b = append(w.b, make([]byte, len(es)*entrySize+ptrSize)...)
	next := entries + int64(len(es)*entrySize)
	for i, e := range es {
		var val []byte
		if e.raw != nil {
			val = e.raw
		} else {
			for _, v := range e.vals {
				switch typeSize(e.typ) {
				case 1:
					val = append(val, byte(v))
				case 2:
					val = o.AppendUint16(val, uint16(v))
				case 4:
					val = o.AppendUint32(val, uint32(v))
				default:
					val = o.AppendUint64(val, v)
				}
			}
		}
		count := uint64(len(val) / max(typeSize(e.typ), 1))
		p := entries + int64(i*entrySize)
		o.PutUint16(w.b[p:], e.tag)
		o.PutUint16(w.b[p+2:], e.typ)
		valAt := p + 8
		if w.big {
			o.PutUint64(w.b[p+4:], count)
			valAt = p + 12
		} else {
			o.PutUint32(w.b[p+4:], uint32(count))
		}
		if len(val) <= ptrSize {
			copy(w.b[valAt:], val)
			continue
		}
		if len(w.b)%2 == 1 {
			w.b = append(w.b, 0)
		}
		w.putOffset(valAt, uint64(len(w.b)))
		w.b = append(w.b, val...)
	}
	return off, next
}

func cmp(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// --- other formats ---------------------------------------------------------

func encodeJPEG(t testing.TB, w, h int, gray bool) []byte {
	t.Helper()
	var m image.Image = image.NewRGBA(image.Rect(0, 0, w, h))
	if gray {
		m = image.NewGray(image.Rect(0, 0, w, h))
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withEXIF inserts an APP1 EXIF segment with the given orientation, and an
// APP2 segment of filler, after the SOI of a JPEG.
func withEXIF(j []byte, orientation int, order byteOrder) []byte {
	tw := &tiffWriter{order: order}
	if order == binary.LittleEndian {
		tw.b = []byte("II*\x00\x08\x00\x00\x00")
	} else {
		tw.b = []byte("MM\x00*\x00\x00\x00\x08")
	}
	tw.ifd([]tiffEntry{
		{tag: 282, typ: typeRational, vals: []uint64{72<<32 | 1}},
		{tag: tagOrientation, typ: typeShort, vals: []uint64{uint64(orientation)}},
	})
	app1 := append([]byte("Exif\x00\x00"), tw.b...)
	seg := func(m byte, data []byte) []byte {
		s := []byte{0xff, m, 0, 0}
		binary.BigEndian.PutUint16(s[2:], uint16(len(data)+2))
		return append(s, data...)
	}
	out := slices.Clone(j[:2])
	out = append(out, seg(0xe1, app1)...)
	out = append(out, seg(0xe2, bytes.Repeat([]byte("ICC_PROFILE."), 5000))...)
	return append(out, j[2:]...)
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngInsert inserts a chunk right after IHDR.
func pngInsert(p []byte, typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	c = binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
	at := 8 + 25
	return slices.Concat(p[:at], c, p[at:])
}

func encodeGIF(t testing.TB, screenW, screenH int, frames ...image.Rectangle) []byte {
	t.Helper()
	g := &gif.GIF{Config: image.Config{Width: screenW, Height: screenH, ColorModel: color.Palette(palette.Plan9)}}
	for _, r := range frames {
		g.Image = append(g.Image, image.NewPaletted(r, palette.Plan9))
		g.Delay = append(g.Delay, 5)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// riff wraps chunks into a RIFF WebP container.
func riff(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	return append(out, body...)
}

func webpChunk(fourcc string, data []byte) []byte {
	c := append([]byte(fourcc), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// vp8x returns a VP8X chunk for a canvas of w×h with the given flags.
func vp8x(flags byte, w, h int) []byte {
	d := []byte{flags, 0, 0, 0}
	d = append(d, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	d = append(d, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	return webpChunk("VP8X", d)
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// codestream returns the contents of the jp2c box of a JP2 file.
func codestream(t testing.TB, jp2 []byte) []byte {
	t.Helper()
	i := bytes.Index(jp2, []byte("jp2c"))
	if i < 4 {
		t.Fatal("no jp2c box")
	}
	n := int(binary.BigEndian.Uint32(jp2[i-4:]))
	if n == 0 {
		return jp2[i+4:]
	}
	return jp2[i+4 : i-4+n]
}

// withCOC inserts, after the COD marker of a codestream, a COC marker that
// gives component 1 only nl decomposition levels.
func withCOC(t testing.TB, cs []byte, nl byte) []byte {
	t.Helper()
	i := bytes.Index(cs, []byte{0xff, 0x52})
	if i < 0 {
		t.Fatal("no COD")
	}
	n := int(binary.BigEndian.Uint16(cs[i+2:]))
	cod := cs[i : i+2+n]
	// COC: marker, Lcoc, Ccoc, Scoc (0: default precincts), then SPcoc
	// copied from the COD's SPcod (NL, code-block size and style, wavelet).
	coc := []byte{0xff, 0x53, 0, 9, 1, 0, nl, cod[10], cod[11], cod[12], cod[13]}
	return slices.Concat(cs[:i+2+n], coc, cs[i+2+n:])
}
