package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"strings"
	"testing"
)

var (
	le = binary.LittleEndian
	be = binary.BigEndian
)

// sample is one test input with what Read must say about it.
type sample struct {
	name string
	data []byte
	want string // summary(info), see below
	// ext is the file extension under which libvips can load the
	// sample; empty for inputs libvips cannot load (header-only fakes).
	ext string
}

// summary renders an Info compactly: format, size, bands, depth,
// orientation, then one entry per level.
func summary(info Info) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %dx%d b%d d%d", info.Format, info.Width, info.Height, info.Bands, info.BitDepth)
	if info.Orientation != 0 {
		fmt.Fprintf(&b, " o%d", info.Orientation)
	}
	for _, l := range info.Levels {
		b.WriteString(" | ")
		b.WriteString(levelString(l))
	}
	return b.String()
}

func levelString(l Level) string {
	s := fmt.Sprintf("%dx%d", l.Width, l.Height)
	if l.TileWidth != 0 || l.TileHeight != 0 {
		s += fmt.Sprintf(" t%dx%d", l.TileWidth, l.TileHeight)
	}
	if l.Page != 0 {
		s += fmt.Sprintf(" p%d", l.Page)
	}
	if l.SubIFD >= 0 {
		s += fmt.Sprintf(" s%d", l.SubIFD)
	}
	if l.Shrink != 0 {
		s += fmt.Sprintf(" k%d", l.Shrink)
	}
	return s
}

// pyramid returns tiled pages halving w×h (floor, as libvips does) until
// a level fits one tile.
func pyramid(w, h, tile, spp int, nst uint32) []tiffImage {
	ims := []tiffImage{{w: w, h: h, tw: tile, th: tile, spp: spp}}
	for w > tile || h > tile {
		w, h = w/2, h/2
		ims = append(ims, tiffImage{w: w, h: h, tw: tile, th: tile, spp: spp, nst: nst})
	}
	return ims
}

// samples returns every test input: generated in Go, plus the files in
// testdata made with libvips. Large ones are marked by their size only;
// tests that run per byte skip them.
func samples(t testing.TB) []sample {
	t.Helper()
	tiled := func(w, h, tile int) tiffImage { return tiffImage{w: w, h: h, tw: tile, th: tile} }
	subs := func(base tiffImage, ims ...tiffImage) tiffImage { base.subs = ims; return base }
	reduced := func(im tiffImage) tiffImage { im.nst = 1; return im }

	const pyr100 = "tiff 100x75 b3 d8 | 100x75 t16x16 | 50x37 t16x16 p1 | 25x18 t16x16 p2 | 12x9 t16x16 p3"
	const sub100 = "tiff 100x75 b3 d8 | 100x75 t16x16 | 50x37 t16x16 s0 | 25x18 t16x16 s1 | 12x9 t16x16 s2"
	ss := []sample{
		{"tiff II pages", writeTIFF(le, false, pyramid(100, 75, 16, 3, 1)...), pyr100, ".tif"},
		{"tiff MM pages without NewSubfileType", writeTIFF(be, false, pyramid(100, 75, 16, 3, 0)...), pyr100, ".tif"},
		{"bigtiff II pages", writeTIFF(le, true, pyramid(100, 75, 16, 3, 1)...), pyr100, ".tif"},
		{"bigtiff MM pages", writeTIFF(be, true, pyramid(100, 75, 16, 3, 1)...), pyr100, ".tif"},
		{"tiff II subifds", writeTIFF(le, false, subs(tiled(100, 75, 16), reduced(tiled(50, 37, 16)), reduced(tiled(25, 18, 16)), tiled(12, 9, 16))), sub100, ".tif"},
		{"tiff MM subifds", writeTIFF(be, false, subs(tiled(100, 75, 16), tiled(50, 37, 16), tiled(25, 18, 16), tiled(12, 9, 16))), sub100, ".tif"},
		{"bigtiff MM subifds out of order", writeTIFF(be, true, subs(tiled(100, 75, 16), tiled(25, 18, 16), tiled(12, 9, 16), tiled(50, 37, 16))),
			"tiff 100x75 b3 d8 | 100x75 t16x16 | 50x37 t16x16 s2 | 25x18 t16x16 s0 | 12x9 t16x16 s1", ".tif"},
		{"tiff odd sizes rounded up", writeTIFF(le, false, tiled(101, 77, 32), tiled(51, 39, 32), tiled(26, 20, 32)),
			"tiff 101x77 b3 d8 | 101x77 t32x32 | 51x39 t32x32 p1 | 26x20 t32x32 p2", ".tif"},
		{"tiff strips", writeTIFF(le, false, tiffImage{w: 100, h: 75, rowsPerStrip: 10}, tiffImage{w: 50, h: 37, nst: 1}),
			"tiff 100x75 b3 d8 | 100x75 | 50x37 p1", ".tif"},
		{"tiff grey with orientation", writeTIFF(be, false, tiffImage{w: 64, h: 48, tw: 16, th: 16, spp: 1, orientation: 6}, tiffImage{w: 32, h: 24, tw: 16, th: 16, spp: 1}),
			"tiff 64x48 b1 d8 o6 | 64x48 t16x16 | 32x24 t16x16 p1", ".tif"},
		{"tiff svs-like", writeTIFF(le, false,
			tiled(480, 360, 64),
			tiffImage{w: 128, h: 96, rowsPerStrip: 16}, // thumbnail: right aspect, but stripped
			tiled(240, 180, 64),
			tiffImage{w: 100, h: 120, rowsPerStrip: 8, nst: 1}, // label
			tiled(120, 90, 64),
			tiffImage{w: 200, h: 68, rowsPerStrip: 8, nst: 9}, // macro
			tiffImage{w: 150, h: 50, tw: 16, th: 16, nst: 1},  // tiled, wrong aspect
		), "tiff 480x360 b3 d8 | 480x360 t64x64 | 240x180 t64x64 p2 | 120x90 t64x64 p4", ".tif"},
		{"tiff mask and other samples skipped", writeTIFF(le, false,
			tiled(100, 75, 16),
			tiffImage{w: 50, h: 37, tw: 16, th: 16, spp: 1, nst: 4}, // mask
			tiffImage{w: 50, h: 37, tw: 16, th: 16, spp: 1, nst: 1}, // one sample, not three
			tiled(25, 18, 16),
		), "tiff 100x75 b3 d8 | 100x75 t16x16 | 25x18 t16x16 p3", ".tif"},
		{"tiff multi-page document", writeTIFF(le, false, tiled(100, 75, 16), tiled(100, 75, 16), tiled(50, 37, 16)),
			"tiff 100x75 b3 d8 | 100x75 t16x16", ".tif"},
		{"tiff duplicate level sizes", writeTIFF(le, false, subs(tiled(100, 75, 16), tiled(50, 37, 16)), tiled(50, 37, 16), tiled(25, 18, 16)),
			"tiff 100x75 b3 d8 | 100x75 t16x16 | 50x37 t16x16 s0 | 25x18 t16x16 p2", ".tif"},
		{"tiff levels that disagree by a pixel", writeTIFF(le, false, tiled(101, 75, 16), tiled(51, 37, 16), tiled(50, 38, 16), tiled(25, 18, 16)),
			"tiff 101x75 b3 d8 | 101x75 t16x16 | 51x37 t16x16 p1 | 25x18 t16x16 p3", ".tif"},
		{"tiff one column", writeTIFF(le, false, tiled(1, 4000, 16), tiled(1, 2000, 16), tiled(1, 1000, 16)),
			"tiff 1x4000 b3 d8 | 1x4000 t16x16 | 1x2000 t16x16 p1 | 1x1000 t16x16 p2", ".tif"},
	}

	jpegs := []struct {
		w, h int
		want string
	}{
		{1001, 777, "jpeg 1001x777 b3 d8 | 1001x777 k1 | 500x388 k2 | 250x194 k4 | 125x97 k8"},
		{15, 9, "jpeg 15x9 b3 d8 | 15x9 k1 | 7x4 k2 | 3x2 k4 | 1x1 k8"},
		{7, 7, "jpeg 7x7 b3 d8 | 7x7 k1 | 3x3 k2 | 1x1 k4"},
		{9, 2, "jpeg 9x2 b3 d8 | 9x2 k1 | 4x1 k2"},
		{1, 1, "jpeg 1x1 b3 d8 | 1x1 k1"},
	}
	for _, j := range jpegs {
		ss = append(ss, sample{fmt.Sprintf("jpeg %dx%d", j.w, j.h), encodeJPEG(t, j.w, j.h, false), j.want, ".jpg"})
	}
	ss = append(ss,
		sample{"jpeg grey", encodeJPEG(t, 33, 17, true), "jpeg 33x17 b1 d8 | 33x17 k1 | 16x8 k2 | 8x4 k4 | 4x2 k8", ".jpg"},
		sample{"jpeg exif II after 60 KiB", withEXIF(encodeJPEG(t, 40, 30, false), 6, le), "jpeg 40x30 b3 d8 o6 | 40x30 k1 | 20x15 k2 | 10x7 k4 | 5x3 k8", ".jpg"},
		sample{"jpeg exif MM", withEXIF(encodeJPEG(t, 40, 30, false), 8, be), "jpeg 40x30 b3 d8 o8 | 40x30 k1 | 20x15 k2 | 10x7 k4 | 5x3 k8", ".jpg"},
	)

	palette := color.Palette{color.RGBA{0, 0, 0, 255}, color.RGBA{9, 9, 9, 255}}
	clear := color.Palette{color.RGBA{0, 0, 0, 0}, color.RGBA{9, 9, 9, 255}}
	r := image.Rect(0, 0, 31, 17)
	ss = append(ss,
		sample{"png grey", encodePNG(t, image.NewGray(r)), "png 31x17 b1 d8 | 31x17", ".png"},
		sample{"png grey16", encodePNG(t, image.NewGray16(r)), "png 31x17 b1 d16 | 31x17", ".png"},
		sample{"png rgba", encodePNG(t, image.NewNRGBA(r)), "png 31x17 b4 d8 | 31x17", ".png"},
		sample{"png palette", encodePNG(t, image.NewPaletted(r, palette)), "png 31x17 b3 d1 | 31x17", ".png"},
		sample{"png palette with tRNS", encodePNG(t, image.NewPaletted(r, clear)), "png 31x17 b4 d1 | 31x17", ".png"},
		sample{"png text before tRNS", pngInsert(encodePNG(t, image.NewPaletted(r, clear)), "tEXt", []byte(strings.Repeat("Comment\x00x", 2000))),
			"png 31x17 b4 d1 | 31x17", ".png"},
		sample{"png grey with tRNS", pngInsert(encodePNG(t, image.NewGray(r)), "tRNS", []byte{0, 0}), "png 31x17 b2 d8 | 31x17", ".png"},
	)

	oversize := encodeGIF(t, 60, 50, image.Rect(10, 10, 60, 50))
	le.PutUint16(oversize[6:], 20) // logical screen 20×30, smaller than the first frame
	le.PutUint16(oversize[8:], 30)
	ss = append(ss,
		sample{"gif", encodeGIF(t, 200, 100, image.Rect(10, 10, 60, 50)), "gif 200x100 b0 d8 | 200x100", ".gif"},
		sample{"gif animated", encodeGIF(t, 300, 200, image.Rect(10, 10, 60, 50), image.Rect(0, 0, 250, 120)), "gif 300x200 b0 d8 | 300x200", ".gif"},
		sample{"gif first frame grows the canvas", oversize, "gif 60x50 b0 d8 | 60x50", ".gif"},
	)

	ss = append(ss,
		sample{"webp vp8x animated (header only)", riff(vp8x(0x12, 640, 480), webpChunk("ANIM", make([]byte, 6))), "webp 640x480 b4 d8 | 640x480", ""},
		sample{"webp vp8x max canvas (header only)", riff(vp8x(0, 1<<24, 1<<24)), "webp 16777216x16777216 b3 d8 | 16777216x16777216", ""},
	)

	tiledJP2 := readTestdata(t, "tiled.jp2")
	jp2Levels := " | 1001x777 t128x128 | 501x389 t64x64 p1 | 251x195 t32x32 p2 | 126x98 t16x16 p3"
	ss = append(ss,
		sample{"j2k codestream", codestream(t, tiledJP2), "jp2 1001x777 b3 d8" + jp2Levels, ".j2k"},
		sample{"j2k COC lowers levels", withCOC(t, codestream(t, tiledJP2), 1),
			"jp2 1001x777 b3 d8 | 1001x777 t128x128 | 501x389 t64x64 p1", ".j2k"},
	)

	files := []struct{ name, want string }{
		{"tiled.jp2", "jp2 1001x777 b3 d8" + jp2Levels},
		{"untiled.jp2", "jp2 1001x777 b3 d8 | 1001x777 | 501x389 p1 | 251x195 p2 | 126x98 p3"},
		{"rect-tiles.jp2", "jp2 1001x777 b3 d8 | 1001x777 t256x128 | 501x389 t128x64 p1 | 251x195 t64x32 p2 | 126x98 t32x16 p3"},
		{"vips-pages.tif", "tiff 301x203 b3 d8 o1 | 301x203 t64x64 | 150x101 t64x64 p1 | 75x50 t64x64 p2 | 37x25 t64x64 p3"},
		{"vips-bigtiff.tif", "tiff 301x203 b3 d8 o1 | 301x203 t64x64 | 150x101 t64x64 p1 | 75x50 t64x64 p2 | 37x25 t64x64 p3"},
		{"vips-subifd.tif", "tiff 301x203 b3 d8 o1 | 301x203 t32x32 | 150x101 t32x32 s0 | 75x50 t32x32 s1 | 37x25 t32x32 s2 | 18x12 t32x32 s3"},
		{"vips-small-subifd.tif", "tiff 67x45 b3 d8 o1 | 67x45 t16x16 | 33x22 t16x16 s0 | 16x11 t16x16 s1"},
		{"vips-small-bigtiff.tif", "tiff 67x45 b3 d8 o1 | 67x45 t16x16 | 33x22 t16x16 p1 | 16x11 t16x16 p2"},
		{"progressive.jpg", "jpeg 301x203 b3 d8 o1 | 301x203 k1 | 150x101 k2 | 75x50 k4 | 37x25 k8"},
		{"lossy.webp", "webp 301x203 b3 d8 | 301x203"},
		{"lossless.webp", "webp 301x203 b3 d8 | 301x203"},
		{"alpha.webp", "webp 301x203 b4 d8 | 301x203"},
		{"exif.webp", "webp 300x200 b3 d8 | 300x200"},
		{"small.avif", "heif 301x203 b0 d0 | 301x203"},
		{"irot90.avif", "heif 203x301 b0 d0 | 203x301"},
		{"small.heic", "heif 301x203 b0 d0 | 301x203"},
	}
	for _, f := range files {
		ext := f.name[strings.LastIndexByte(f.name, '.'):]
		ss = append(ss, sample{f.name, readTestdata(t, f.name), f.want, ext})
	}
	return ss
}

func TestRead(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			info, err := Read(&countingReader{b: s.data}, int64(len(s.data)))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got := summary(info); got != s.want {
				t.Errorf("got  %s\nwant %s", got, s.want)
			}
			checkInvariants(t, info)
		})
	}
}

// checkInvariants checks what Read promises of every successful result.
func checkInvariants(t testing.TB, info Info) {
	t.Helper()
	if len(info.Levels) == 0 {
		t.Fatalf("no levels")
	}
	l0 := info.Levels[0]
	if l0.Width != info.Width || l0.Height != info.Height || l0.Page != 0 || l0.SubIFD != -1 {
		t.Errorf("level 0 is %s, image %dx%d", levelString(l0), info.Width, info.Height)
	}
	for i, l := range info.Levels {
		if l.Width < 1 || l.Height < 1 || l.Width > maxDim || l.Height > maxDim {
			t.Errorf("level %d: bad size %s", i, levelString(l))
		}
		if l.TileWidth < 0 || l.TileHeight < 0 || (l.TileWidth == 0) != (l.TileHeight == 0) {
			t.Errorf("level %d: bad tiles %s", i, levelString(l))
		}
		if (l.TIFF != nil) != (info.Format == TIFF) {
			t.Errorf("level %d: TIFF details %v for format %s", i, l.TIFF != nil, info.Format)
		}
		if i > 0 {
			p := info.Levels[i-1]
			if l.Width > p.Width || l.Height > p.Height || (l.Width == p.Width && l.Height == p.Height) {
				t.Errorf("level %d (%s) is not smaller than level %d (%s)", i, levelString(l), i-1, levelString(p))
			}
		}
	}
}

func TestErrors(t *testing.T) {
	jpg := encodeJPEG(t, 8, 8, false)
	sofAt := strings.Index(string(jpg), "\xff\xc0")
	dnl := append([]byte(nil), jpg...)
	dnl[sofAt+5], dnl[sofAt+6] = 0, 0 // height 0: defined by DNL

	noIspe := readTestdata(t, "small.avif")
	i := strings.Index(string(noIspe), "ispe")
	copy(noIspe[i:], "xspe")
	clap := readTestdata(t, "small.avif")
	i = strings.Index(string(clap), "pixi")
	copy(clap[i:], "clap")

	tests := []struct {
		name   string
		data   []byte
		is     error
		format Format
	}{
		{"empty", nil, ErrUnknownFormat, ""},
		{"text", []byte("hello, world, this is not an image"), ErrUnknownFormat, ""},
		{"mp4", append([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomavc1"), make([]byte, 64)...), ErrUnknownFormat, ""},
		{"jpeg DNL", dnl, ErrSizeUnknown, JPEG},
		{"heif without ispe", noIspe, ErrSizeUnknown, HEIF},
		{"heif with clap", clap, ErrSizeUnknown, HEIF},
		{"jpeg SOI only", []byte{0xff, 0xd8, 0xff}, ErrMalformed, JPEG},
		{"jpeg SOS first", []byte{0xff, 0xd8, 0xff, 0xda, 0, 2}, ErrMalformed, JPEG},
		{"jpeg EOI first", []byte{0xff, 0xd8, 0xff, 0xd9}, ErrMalformed, JPEG},
		{"tiff bad version", []byte("II\x2b\x00\x04\x00\x00\x00........"), ErrMalformed, TIFF},
		{"png bad colour type", func() []byte { p := encodePNG(t, image.NewGray(image.Rect(0, 0, 2, 2))); p[25] = 5; return p }(), ErrMalformed, PNG},
		{"gif without image", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ErrMalformed, GIF},
		{"webp unknown chunk", riff(webpChunk("ABCD", make([]byte, 10))), ErrMalformed, WebP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Read(&countingReader{b: tc.data}, int64(len(tc.data)))
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			if info.Format != tc.format {
				t.Errorf("format %q, want %q", info.Format, tc.format)
			}
			var fe *FormatError
			if tc.format != "" && (!errors.As(err, &fe) || fe.Format != tc.format) {
				t.Errorf("error %v is not a FormatError for %s", err, tc.format)
			}
			t.Log(err)
		})
	}
}
