package pixels

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
)

func TestFormatsAndContentType(t *testing.T) {
	fs := Formats()
	for _, f := range []iiif.Format{iiif.FormatJPG, iiif.FormatPNG} {
		if !slices.Contains(fs, f) {
			t.Errorf("Formats() = %v lacks %s", fs, f)
		}
	}
	if slices.Contains(fs, iiif.FormatPDF) {
		t.Errorf("Formats() = %v has pdf, which libvips cannot write", fs)
	}
	t.Logf("formats: %v", fs)
	for f, want := range map[iiif.Format]string{
		iiif.FormatJPG: "image/jpeg", iiif.FormatPNG: "image/png", iiif.FormatWebP: "image/webp",
		iiif.FormatGIF: "image/gif", iiif.FormatTIF: "image/tiff", iiif.FormatJP2: "image/jp2",
		iiif.FormatAVIF: "image/avif", iiif.FormatHEIC: "image/heic", iiif.FormatPDF: "application/pdf",
		"bmp": "application/octet-stream",
	} {
		if got := engine.ContentType(f); got != want {
			t.Errorf("ContentType(%s) = %s, want %s", f, got, want)
		}
	}
}

func TestStartupAgain(t *testing.T) {
	if err := Startup(Config{Concurrency: -1}); err != nil {
		t.Errorf("a second Startup = %v, want the first call's result (nil)", err)
	}
	if err := (Config{Concurrency: -1}).Validate(); err == nil {
		t.Error("Validate accepted a negative concurrency")
	}
}

// TestCropExact checks that regions come back pixel for pixel.
func TestCropExact(t *testing.T) {
	src := pattern(400, 300)
	path := writeFile(t, "p.png", encodePNG(t, src))
	for _, r := range []image.Rectangle{
		image.Rect(123, 45, 323, 245),
		image.Rect(0, 0, 400, 300),
		image.Rect(399, 299, 400, 300),
		image.Rect(0, 150, 400, 151),
		image.Rect(37, 0, 38, 300),
	} {
		out := decode(t, iiif.FormatPNG, renderBytes(t, path, full, mkPlan(r, r.Dx(), r.Dy(), 0, false, "", iiif.FormatPNG)))
		if d := meanAbsDiff(t, out, src.SubImage(r)); d != 0 {
			t.Errorf("region %v: mean abs diff %.3f, want 0", r, d)
		}
	}
}

// TestSizesExact checks exact output sizes, shrinking and enlarging with
// independent scales, in every format. (Pixels are checked by
// TestEveryFormatRoundTrips.)
func TestSizesExact(t *testing.T) {
	path := patternPNG(t, 400, 300)
	sizes := []image.Point{{333, 77}, {1, 1}, {57, 211}, {401, 299}, {640, 480}}
	for _, f := range Formats() {
		for _, sz := range sizes {
			region := image.Rect(10, 20, 390, 290)
			data := renderBytes(t, path, full, mkPlan(region, sz.X, sz.Y, 0, false, "", f))
			info, err := Header(writeFile(t, "out."+string(f), data))
			if err != nil {
				t.Fatalf("%s %v: %v", f, sz, detail(err))
			}
			if got := (image.Point{info.Width, info.Height}); got != sz {
				t.Errorf("%s %v: got %v", f, sz, got)
			}
		}
	}
}

// TestEveryFormatRoundTrips decodes every format back and checks its
// pixels, with and without alpha.
func TestEveryFormatRoundTrips(t *testing.T) {
	path := patternPNG(t, 400, 300)
	for _, f := range Formats() {
		tol := 12.0
		switch f {
		case iiif.FormatGIF, iiif.FormatAVIF, iiif.FormatHEIC, iiif.FormatJP2:
			tol = 25
		}
		img := decode(t, f, renderBytes(t, path, full, mkPlan(image.Rect(0, 0, 400, 300), 200, 150, 0, false, "", f)))
		if size(img) != (image.Point{200, 150}) {
			t.Fatalf("%s: size %v", f, size(img))
		}
		t.Run(string(f), func(t *testing.T) { checkQuadrants(t, img, red, green, blue, yellow, tol) })

		// An arbitrary rotation needs alpha in every format but JPEG.
		p := mkPlan(image.Rect(0, 0, 400, 300), 200, 150, 45, false, "", f)
		img = decode(t, f, renderBytes(t, path, full, p))
		if size(img) != (image.Point{p.OutWidth, p.OutHeight}) {
			t.Errorf("%s rotated: size %v, want %dx%d", f, size(img), p.OutWidth, p.OutHeight)
		}
		corner := nrgba(img, 0, 0)
		switch {
		case f == iiif.FormatJPG:
			if corner.R < 240 || corner.G < 240 || corner.B < 240 {
				t.Errorf("%s rotated: corner %v, want white", f, corner)
			}
		case corner.A > 10:
			t.Errorf("%s rotated: corner %v, want transparent", f, corner)
		}

		// One band (gray, bitonal) and one band plus alpha (bitonal
		// rotated) encode too.
		for _, q := range []iiif.Quality{iiif.QualityGray, iiif.QualityBitonal} {
			for _, rot := range []float64{0, 30} {
				p := mkPlan(image.Rect(0, 0, 400, 300), 100, 75, rot, false, q, f)
				img := decode(t, f, renderBytes(t, path, full, p))
				if size(img) != (image.Point{p.OutWidth, p.OutHeight}) {
					t.Errorf("%s %s %v: size %v", f, q, rot, size(img))
				}
				c := nrgba(img, 30, 25)
				if absInt(int(c.R)-int(c.G)) > 8 || absInt(int(c.G)-int(c.B)) > 8 {
					t.Errorf("%s %s %v: pixel %v is not grey", f, q, rot, c)
				}
			}
		}
	}
}

// TestRotateMirror checks right-angle rotations and mirroring by where the
// marker and the quadrants end up.
func TestRotateMirror(t *testing.T) {
	const w, h = 400, 300
	path := patternPNG(t, w, h)
	m := markerRect(w, h)
	mx := (float64(m.Min.X+m.Max.X) - 1) / 2 / w
	my := (float64(m.Min.Y+m.Max.Y) - 1) / 2 / h

	// source maps a point of the output, as fractions of its size, back
	// to the source: undo the rotation, then the mirroring.
	source := func(rot float64, mirror bool, ox, oy float64) (float64, float64) {
		x, y := ox, oy
		switch rot {
		case 90:
			x, y = oy, 1-ox
		case 180:
			x, y = 1-ox, 1-oy
		case 270:
			x, y = 1-oy, ox
		}
		if mirror {
			x = 1 - x
		}
		return x, y
	}
	for _, rot := range []float64{0, 90, 180, 270} {
		for _, mirror := range []bool{false, true} {
			p := mkPlan(image.Rect(0, 0, w, h), w, h, rot, mirror, "", iiif.FormatPNG)
			img := decode(t, iiif.FormatPNG, renderBytes(t, path, full, p))
			if size(img) != (image.Point{p.OutWidth, p.OutHeight}) {
				t.Fatalf("rot %v mirror %v: size %v", rot, mirror, size(img))
			}
			// Forward-map the marker by searching the output: the
			// centroid of the dark pixels must map back onto it.
			fx, fy := darkCentroid(t, img)
			sx, sy := source(rot, mirror, fx, fy)
			if math.Abs(sx-mx) > 0.01 || math.Abs(sy-my) > 0.01 {
				t.Errorf("rot %v mirror %v: marker at (%.3f,%.3f) maps back to (%.3f,%.3f), want (%.3f,%.3f)",
					rot, mirror, fx, fy, sx, sy, mx, my)
			}
			for _, o := range [][2]float64{{0.3, 0.3}, {0.7, 0.3}, {0.3, 0.7}, {0.7, 0.7}} {
				sx, sy := source(rot, mirror, o[0], o[1])
				want := quadrant(int(sx*w), int(sy*h), w, h)
				ox, oy := int(o[0]*float64(p.OutWidth)), int(o[1]*float64(p.OutHeight))
				got := meanColour(img, image.Rect(ox-2, oy-2, ox+3, oy+3))
				if !near(got, want, 1) {
					t.Errorf("rot %v mirror %v: at (%.1f,%.1f) %.0f, want %v", rot, mirror, o[0], o[1], got, want)
				}
			}
		}
	}
}

// TestArbitraryRotation checks the bounding box, transparent or white
// corners, and the direction (clockwise) of a 30 degree rotation.
func TestArbitraryRotation(t *testing.T) {
	const w, h = 400, 300
	path := patternPNG(t, w, h)
	for _, f := range []iiif.Format{iiif.FormatPNG, iiif.FormatJPG} {
		p := mkPlan(image.Rect(0, 0, w, h), w, h, 30, false, "", f)
		img := decode(t, f, renderBytes(t, path, full, p))
		if size(img) != (image.Point{p.OutWidth, p.OutHeight}) {
			t.Fatalf("%s: size %v, want %dx%d", f, size(img), p.OutWidth, p.OutHeight)
		}
		ow, oh := p.OutWidth, p.OutHeight
		for _, c := range []image.Point{{0, 0}, {ow - 1, 0}, {0, oh - 1}, {ow - 1, oh - 1}} {
			px := nrgba(img, c.X, c.Y)
			if f == iiif.FormatPNG && px.A != 0 {
				t.Errorf("%s: corner %v is %v, want transparent", f, c, px)
			}
			if f == iiif.FormatJPG && (px.R < 245 || px.G < 245 || px.B < 245) {
				t.Errorf("%s: corner %v is %v, want white", f, c, px)
			}
		}
		cx, cy := ow/2, oh/2
		if px := nrgba(img, cx, cy); px.A != 255 {
			t.Errorf("%s: centre is %v, want opaque", f, px)
		}
		// Straight above the centre lies what was up and to the left of
		// it before a clockwise turn: the red quadrant.
		up := meanColour(img, image.Rect(cx-2, cy-77, cx+3, cy-72))
		if !near(up, red, 12) {
			t.Errorf("%s: above the centre is %.0f, want red (clockwise rotation)", f, up)
		}
	}
}

func TestQualityGray(t *testing.T) {
	path := patternPNG(t, 400, 300)
	for _, f := range []iiif.Format{iiif.FormatPNG, iiif.FormatJPG, iiif.FormatWebP} {
		if !slices.Contains(Formats(), f) {
			continue
		}
		img := decode(t, f, renderBytes(t, path, full, mkPlan(image.Rect(0, 0, 400, 300), 200, 150, 0, false, iiif.QualityGray, f)))
		tol := 0
		if f == iiif.FormatWebP {
			tol = 3 // YUV 4:2:0
		}
		sz := size(img)
		for y := range sz.Y {
			for x := range sz.X {
				c := nrgba(img, x, y)
				if absInt(int(c.R)-int(c.G)) > tol || absInt(int(c.G)-int(c.B)) > tol {
					t.Fatalf("%s: pixel (%d,%d) is %v, want R=G=B", f, x, y, c)
				}
			}
		}
		// Red and blue differ in luminance.
		if a, b := nrgba(img, 60, 40), nrgba(img, 60, 110); absInt(int(a.R)-int(b.R)) < 10 {
			t.Errorf("%s: red and blue quadrants both became %v", f, a)
		}
	}
}

func TestGraySourceStaysGray(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range g.Pix {
		g.Pix[i] = uint8(i)
	}
	path := writeFile(t, "g.png", encodePNG(t, g))
	img := decode(t, iiif.FormatPNG, renderBytes(t, path, full, mkPlan(g.Bounds(), 64, 48, 0, false, iiif.QualityDefault, iiif.FormatPNG)))
	if _, ok := img.(*image.Gray); !ok {
		t.Errorf("default quality of a grey source decoded as %T, want *image.Gray", img)
	}
	if d := meanAbsDiff(t, img, g); d != 0 {
		t.Errorf("grey source changed: mean abs diff %.3f", d)
	}
	img = decode(t, iiif.FormatPNG, renderBytes(t, path, full, mkPlan(g.Bounds(), 64, 48, 0, false, iiif.QualityColor, iiif.FormatPNG)))
	if _, ok := img.(*image.Gray); ok {
		t.Error("color quality of a grey source stayed one band")
	}

	// 16-bit grey comes down to 8 bits.
	g16 := image.NewGray16(g.Bounds())
	for i, v := range g.Pix {
		g16.Pix[2*i], g16.Pix[2*i+1] = v, 0x80
	}
	path = writeFile(t, "g16.png", encodePNG(t, g16))
	img = decode(t, iiif.FormatPNG, renderBytes(t, path, full, mkPlan(g.Bounds(), 64, 48, 0, false, iiif.QualityDefault, iiif.FormatPNG)))
	if _, ok := img.(*image.Gray); !ok {
		t.Errorf("16-bit grey source decoded as %T, want *image.Gray", img)
	}
	if d := meanAbsDiff(t, img, g); d > 0.6 {
		t.Errorf("16-bit grey source: mean abs diff %.3f from its high bytes", d)
	}
}

func TestQualityBitonal(t *testing.T) {
	path := patternPNG(t, 400, 300)
	for _, rot := range []float64{0, 30} {
		p := mkPlan(image.Rect(0, 0, 400, 300), 300, 200, rot, true, iiif.QualityBitonal, iiif.FormatPNG)
		img := decode(t, iiif.FormatPNG, renderBytes(t, path, full, p))
		if size(img) != (image.Point{p.OutWidth, p.OutHeight}) {
			t.Errorf("rot %v: size %v", rot, size(img))
		}
		seen := map[uint8]bool{}
		sz := size(img)
		for y := range sz.Y {
			for x := range sz.X {
				c := nrgba(img, x, y)
				for _, v := range []uint8{c.R, c.G, c.B, c.A} {
					if v != 0 && v != 255 {
						t.Fatalf("rot %v: pixel (%d,%d) is %v, want only 0 and 255", rot, x, y, c)
					}
				}
				if c.A == 255 {
					seen[c.R] = true
				}
			}
		}
		if !seen[0] || !seen[255] {
			t.Errorf("rot %v: want both black and white pixels, saw %v", rot, seen)
		}
	}
}

// TestShrinkOnLoad reads a JPEG at half and quarter size through libjpeg's
// DCT scaling: the region is in the level's pixel grid.
func TestShrinkOnLoad(t *testing.T) {
	path := writeFile(t, "p.jpg", encodeJPEG(t, pattern(800, 600)))
	for _, shrink := range []int{2, 4} {
		lw, lh := 800/shrink, 600/shrink
		lv := probe.Level{Width: lw, Height: lh, Shrink: shrink, SubIFD: -1}
		img := decode(t, iiif.FormatPNG, renderBytes(t, path, lv, mkPlan(image.Rect(0, 0, lw, lh), lw, lh, 0, false, "", iiif.FormatPNG)))
		if size(img) != (image.Point{lw, lh}) {
			t.Fatalf("shrink %d: size %v", shrink, size(img))
		}
		checkQuadrants(t, img, red, green, blue, yellow, 12)
		// The bottom-right quarter of the level is the yellow quadrant.
		img = decode(t, iiif.FormatPNG, renderBytes(t, path, lv, mkPlan(image.Rect(lw/2, lh/2, lw, lh), 50, 50, 0, false, "", iiif.FormatPNG)))
		if m := meanColour(img, image.Rect(10, 10, 40, 40)); !near(m, yellow, 20) {
			t.Errorf("shrink %d: bottom-right region is %.0f, want yellow", shrink, m)
		}
	}
}

// TestPyramidLevels reads reduced levels of pyramidal TIFFs (pages and
// sub-IFDs) and JPEG 2000, and checks them against the same region read
// from full resolution and scaled.
func TestPyramidLevels(t *testing.T) {
	needVips(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "p.png")
	if err := os.WriteFile(src, encodePNG(t, pattern(800, 600)), 0o644); err != nil {
		t.Fatal(err)
	}
	pages := filepath.Join(dir, "pages.tif")
	subifds := filepath.Join(dir, "subifds.tif")
	jp2 := filepath.Join(dir, "p.jp2")
	vipsCmd(t, "tiffsave", src, pages, "--tile", "--pyramid", "--tile-width", "128", "--tile-height", "128", "--compression", "deflate")
	vipsCmd(t, "tiffsave", src, subifds, "--tile", "--pyramid", "--subifd", "--tile-width", "128", "--tile-height", "128", "--compression", "deflate")
	vipsCmd(t, "jp2ksave", src, jp2, "--lossless")

	// The reference: a region of level 0, scaled to the level-1 size.
	ref := decode(t, iiif.FormatPNG, renderBytes(t, src, full, mkPlan(image.Rect(200, 150, 600, 450), 200, 150, 0, false, "", iiif.FormatPNG)))
	for _, c := range []struct {
		name string
		path string
		lv   probe.Level
	}{
		{"tiff page 1", pages, probe.Level{Page: 1, SubIFD: -1}},
		{"tiff sub-IFD 0", subifds, probe.Level{SubIFD: 0}},
		{"jp2 reduction 1", jp2, probe.Level{Page: 1, SubIFD: -1}},
	} {
		img := decode(t, iiif.FormatPNG, renderBytes(t, c.path, c.lv, mkPlan(image.Rect(0, 0, 400, 300), 400, 300, 0, false, "", iiif.FormatPNG)))
		if size(img) != (image.Point{400, 300}) {
			t.Fatalf("%s: size %v", c.name, size(img))
		}
		checkQuadrants(t, img, red, green, blue, yellow, 12)
		img = decode(t, iiif.FormatPNG, renderBytes(t, c.path, c.lv, mkPlan(image.Rect(100, 75, 300, 225), 200, 150, 0, false, "", iiif.FormatPNG)))
		if d := meanAbsDiff(t, img, ref); d > 4 {
			t.Errorf("%s: region differs from the scaled full-resolution region by %.2f", c.name, d)
		}
	}

	// Header sees the same levels.
	for _, c := range []struct {
		path string
		want []probe.Level
	}{
		{pages, []probe.Level{{Width: 800, Height: 600, SubIFD: -1}, {Width: 400, Height: 300, Page: 1, SubIFD: -1}, {Width: 200, Height: 150, Page: 2, SubIFD: -1}}},
		{subifds, []probe.Level{{Width: 800, Height: 600, SubIFD: -1}, {Width: 400, Height: 300, SubIFD: 0}, {Width: 200, Height: 150, SubIFD: 1}}},
	} {
		info, err := Header(c.path)
		if err != nil {
			t.Fatal(detail(err))
		}
		if info.Format != probe.TIFF || info.Width != 800 || info.Height != 600 || info.Bands != 3 {
			t.Errorf("Header(%s) = %+v", filepath.Base(c.path), info)
		}
		if len(info.Levels) < len(c.want) || !slices.Equal(info.Levels[:len(c.want)], c.want) {
			t.Errorf("Header(%s).Levels = %+v, want to start with %+v", filepath.Base(c.path), info.Levels, c.want)
		}
	}
}

func TestHeader(t *testing.T) {
	path := patternPNG(t, 64, 48)
	info, err := Header(path)
	if err != nil {
		t.Fatal(detail(err))
	}
	want := []probe.Level{{Width: 64, Height: 48, SubIFD: -1}}
	if info.Format != probe.PNG || info.Width != 64 || info.Height != 48 || info.Bands != 3 || !slices.Equal(info.Levels, want) {
		t.Errorf("Header(png) = %+v", info)
	}
	if !slices.Contains(Formats(), iiif.FormatAVIF) {
		return
	}
	avif := writeFile(t, "x.avif", renderBytes(t, path, full, mkPlan(image.Rect(0, 0, 64, 48), 64, 48, 0, false, "", iiif.FormatAVIF)))
	info, err = Header(avif)
	if err != nil {
		t.Fatal(detail(err))
	}
	if info.Format != probe.HEIF || info.Width != 64 || info.Height != 48 || len(info.Levels) != 1 {
		t.Errorf("Header(avif) = %+v", info)
	}
}

// TestSixteenBit reads a 16-bit RGBA PNG.
func TestSixteenBit(t *testing.T) {
	src := pattern(200, 100)
	img := image.NewNRGBA64(src.Bounds())
	for y := range 100 {
		for x := range 200 {
			c := src.NRGBAAt(x, y)
			img.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, 0xffff})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "16.png", buf.Bytes())
	for f, tol := range map[iiif.Format]float64{iiif.FormatPNG: 0.5, iiif.FormatJPG: 5} {
		out := decode(t, f, renderBytes(t, path, full, mkPlan(src.Bounds(), 200, 100, 0, false, "", f)))
		if d := meanAbsDiff(t, out, src); d > tol {
			t.Errorf("%s: 16-bit source differs by %.2f from its 8-bit original", f, d)
		}
	}
}

// TestGrayAlpha reads a grey+alpha PNG: alpha is kept for PNG and
// flattened onto white for JPEG.
func TestGrayAlpha(t *testing.T) {
	needVips(t)
	src := pattern(200, 100)
	for y := range 100 {
		for x := 100; x < 200; x++ {
			src.Pix[src.PixOffset(x, y)+3] = 0 // right half transparent
		}
	}
	rgba := writeFile(t, "rgba.png", encodePNG(t, src))
	ga := filepath.Join(filepath.Dir(rgba), "ga.png")
	vipsCmd(t, "colourspace", rgba, ga, "b-w")
	if info, err := Header(ga); err != nil || info.Bands != 2 {
		t.Fatalf("Header(ga) = %+v, %v; want 2 bands", info, err)
	}

	img := decode(t, iiif.FormatPNG, renderBytes(t, ga, full, mkPlan(src.Bounds(), 100, 50, 0, false, "", iiif.FormatPNG)))
	if l, r := nrgba(img, 30, 15), nrgba(img, 80, 15); l.A != 255 || r.A != 0 || l.R != l.G || l.G != l.B {
		t.Errorf("png: left %v (want opaque grey), right %v (want transparent)", l, r)
	}
	img = decode(t, iiif.FormatJPG, renderBytes(t, ga, full, mkPlan(src.Bounds(), 100, 50, 0, false, "", iiif.FormatJPG)))
	if r := nrgba(img, 80, 15); r.R < 250 {
		t.Errorf("jpg: transparent half became %v, want white", r)
	}
}

// TestColourSpaces reads CMYK (with and without an ICC profile) and
// palette sources. CMYK cannot hold the pattern's saturated colours, so
// the reference is libvips' own conversion back to sRGB.
func TestColourSpaces(t *testing.T) {
	needVips(t)
	src := pattern(200, 100)
	path := writeFile(t, "p.png", encodePNG(t, src))
	dir := filepath.Dir(path)
	cmyk := filepath.Join(dir, "cmyk.tif")
	bare := filepath.Join(dir, "bare.tif")
	vipsCmd(t, "colourspace", path, cmyk, "cmyk")
	vipsCmd(t, "copy", cmyk, bare+"[strip]")
	for _, c := range []struct{ name, path, ref string }{
		{"cmyk with icc", cmyk, "icc_transform"},
		{"cmyk without icc", bare, "colourspace"},
	} {
		if info, err := Header(c.path); err != nil || info.Bands != 4 {
			t.Fatalf("%s: Header = %+v, %v", c.name, info, err)
		}
		ref := filepath.Join(dir, "ref.png")
		if c.ref == "icc_transform" {
			vipsCmd(t, "icc_transform", c.path, ref, "srgb", "--embedded")
		} else {
			vipsCmd(t, "colourspace", c.path, ref, "srgb")
		}
		want, err := os.ReadFile(ref)
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, iiif.FormatPNG, renderBytes(t, c.path, full, mkPlan(src.Bounds(), 200, 100, 0, false, "", iiif.FormatPNG)))
		if d := meanAbsDiff(t, img, decode(t, iiif.FormatPNG, want)); d > 1 {
			t.Errorf("%s: differs from vips %s by %.2f", c.name, c.ref, d)
		}
	}

	pal := image.NewPaletted(src.Bounds(), color.Palette{red, green, blue, yellow, black})
	for y := range 100 {
		for x := range 200 {
			pal.Set(x, y, quadrant(x, y, 200, 100))
		}
	}
	path = writeFile(t, "pal.png", encodePNG(t, pal))
	img := decode(t, iiif.FormatJPG, renderBytes(t, path, full, mkPlan(src.Bounds(), 100, 50, 0, false, "", iiif.FormatJPG)))
	checkQuadrants(t, img, red, green, blue, yellow, 12)
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// TestWarnings checks that libvips' warnings reach Config.Warn: a JPEG
// with stray bytes before its scan decodes, with a warning.
func TestWarnings(t *testing.T) {
	data := encodeJPEG(t, pattern(64, 48))
	sos := bytes.Index(data, []byte{0xff, 0xda})
	junk := slices.Concat(data[:sos], []byte{0x00, 0x11, 0x22}, data[sos:])
	path := writeFile(t, "junk.jpg", junk)
	warnings.Lock()
	warnings.list = nil
	warnings.Unlock()
	renderBytes(t, path, full, mkPlan(image.Rect(0, 0, 64, 48), 64, 48, 0, false, "", iiif.FormatPNG))
	warnings.Lock()
	defer warnings.Unlock()
	if len(warnings.list) == 0 {
		t.Error("no warning reached Config.Warn")
	}
	t.Logf("warnings: %q", warnings.list)
}
