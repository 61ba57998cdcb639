package goengine

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"slices"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
)

// fromPix is a raster of w×h pixels of b bands.
func fromPix(w, h, b int, pix ...uint8) *raster {
	return &raster{w: w, h: h, b: b, pix: pix}
}

func readAll(t *testing.T, src rows) *raster {
	t.Helper()
	r, err := collect(src)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRot90(t *testing.T) {
	// 3x2, one band:  1 2 3
	//                 4 5 6
	src := fromPix(3, 2, 1, 1, 2, 3, 4, 5, 6)
	for _, c := range []struct {
		deg  int
		w, h int
		want []uint8
	}{
		{90, 2, 3, []uint8{4, 1, 5, 2, 6, 3}},
		{180, 3, 2, []uint8{6, 5, 4, 3, 2, 1}},
		{270, 2, 3, []uint8{3, 6, 2, 5, 1, 4}},
	} {
		got := readAll(t, newRot90Rows(src, c.deg))
		if got.w != c.w || got.h != c.h || !slices.Equal(got.pix, c.want) {
			t.Errorf("%d: %dx%d %v, want %dx%d %v", c.deg, got.w, got.h, got.pix, c.w, c.h, c.want)
		}
	}
}

func TestMirror(t *testing.T) {
	src := fromPix(3, 1, 2, 1, 10, 2, 20, 3, 30)
	got := readAll(t, &mirrorRows{src: &rasterRows{r: src}, buf: make([]uint8, 6)})
	if want := []uint8{3, 30, 2, 20, 1, 10}; !slices.Equal(got.pix, want) {
		t.Errorf("%v, want %v", got.pix, want)
	}
}

func TestThreshold(t *testing.T) {
	src := fromPix(4, 1, 1, 0, 127, 128, 255)
	got := readAll(t, &thresholdRows{src: &rasterRows{r: src}, buf: make([]uint8, 4)})
	if want := []uint8{0, 0, 255, 255}; !slices.Equal(got.pix, want) {
		t.Errorf("%v, want %v", got.pix, want)
	}
}

func TestEmbed(t *testing.T) {
	src := fromPix(2, 2, 1, 1, 2, 3, 4)
	for _, c := range []struct {
		w, h int
		want []uint8
	}{
		{2, 2, []uint8{1, 2, 3, 4}},
		{4, 3, []uint8{9, 1, 2, 9, 9, 3, 4, 9, 9, 9, 9, 9}}, // centred: (4-2)/2=1, (3-2)/2=0
		{1, 1, []uint8{1}},                                  // crop (2-1)/2=0
	} {
		got := readAll(t, newEmbedRows(&rasterRows{r: src}, c.w, c.h, 9))
		if got.w != c.w || got.h != c.h || !slices.Equal(got.pix, c.want) {
			t.Errorf("%dx%d: %v, want %v", c.w, c.h, got.pix, c.want)
		}
	}
}

func TestColour(t *testing.T) {
	l := grayTables()
	if g := l.gray(255, 255, 255); g != 255 {
		t.Errorf("white: %d", g)
	}
	if g := l.gray(0, 0, 0); g != 0 {
		t.Errorf("black: %d", g)
	}
	// Luminance in linear light: green weighs most, blue least.
	r, g, b := l.gray(255, 0, 0), l.gray(0, 255, 0), l.gray(0, 0, 255)
	if !(b < r && r < g) {
		t.Errorf("red %d green %d blue %d", r, g, b)
	}
	for _, c := range []struct {
		name        string
		in          *raster
		q           string
		alphaFormat bool
		want        *raster
	}{
		{"grey to colour", fromPix(1, 1, 1, 7), "color", true, fromPix(1, 1, 3, 7, 7, 7)},
		{"grey alpha to colour", fromPix(1, 1, 2, 7, 9), "color", true, fromPix(1, 1, 4, 7, 7, 7, 9)},
		{"colour to grey", fromPix(1, 1, 3, 255, 255, 255), "gray", true, fromPix(1, 1, 1, 255)},
		{"colour alpha to grey", fromPix(1, 1, 4, 0, 0, 0, 200), "bitonal", true, fromPix(1, 1, 2, 0, 200)},
		{"default keeps", fromPix(1, 1, 3, 1, 2, 3), "default", true, fromPix(1, 1, 3, 1, 2, 3)},
		// (200*128 + 255*127) / 255 = 227, truncated.
		{"flatten", fromPix(1, 1, 4, 200, 0, 255, 128), "default", false, fromPix(1, 1, 3, 227, 127, 255)},
		{"flatten grey", fromPix(1, 1, 2, 0, 0), "default", false, fromPix(1, 1, 1, 255)},
	} {
		got := readAll(t, newColourRows(&rasterRows{r: c.in}, qualityOf(c.q), c.alphaFormat))
		if got.b != c.want.b || !slices.Equal(got.pix, c.want.pix) {
			t.Errorf("%s: %d bands %v, want %d bands %v", c.name, got.b, got.pix, c.want.b, c.want.pix)
		}
	}
}

// TestResize checks sizes, and that a flat image stays flat through
// every path (shrink, reduce, enlarge; 8-bit and premultiplied).
func TestResize(t *testing.T) {
	for _, c := range []struct{ w, h, ow, oh int }{
		{100, 80, 100, 80}, {100, 80, 50, 40}, {100, 80, 7, 3}, {100, 80, 1, 1},
		{100, 80, 333, 250}, {10, 10, 1000, 3}, {640, 480, 37, 480}, {5, 5, 6, 4},
	} {
		for _, b := range []int{1, 2, 3, 4} {
			pix := make([]uint8, c.w*c.h*b)
			for i := range pix {
				pix[i] = 100
				if (b == 2 || b == 4) && i%b == b-1 {
					pix[i] = 255
				}
			}
			got := readAll(t, resize(&rasterRows{r: fromPix(c.w, c.h, b, pix...)}, c.ow, c.oh))
			if got.w != c.ow || got.h != c.oh || got.b != b {
				t.Fatalf("%dx%d->%dx%d: %dx%d, %d bands", c.w, c.h, c.ow, c.oh, got.w, got.h, got.b)
			}
			for i, v := range got.pix {
				want := uint8(100)
				if (b == 2 || b == 4) && i%b == b-1 {
					want = 255
				}
				if v != want {
					t.Fatalf("%dx%d->%dx%d, %d bands: sample %d is %d, want %d", c.w, c.h, c.ow, c.oh, b, i, v, want)
				}
			}
		}
	}
}

func TestEncodePNG(t *testing.T) {
	for _, b := range []int{1, 2, 3, 4} {
		w, h := 37, 11
		pix := make([]uint8, w*h*b)
		for i := range pix {
			pix[i] = uint8(i * 7)
		}
		var buf bytes.Buffer
		if err := encodePNG(&rasterRows{r: fromPix(w, h, b, pix...)}, 6, false, &buf); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("%d bands: %v", b, err)
		}
		for y := 0; y < h; y++ {
			got := make([]uint8, w*b)
			readRow(img, y, 0, w, b, got, new([2][]uint8))
			if want := pix[y*w*b : (y+1)*w*b]; !slices.Equal(got, want) {
				t.Fatalf("%d bands row %d: %v, want %v", b, y, got[:8], want[:8])
			}
		}
	}
	// One bit a pixel for bitonal.
	var buf bytes.Buffer
	if err := encodePNG(&rasterRows{r: fromPix(10, 1, 1, 0, 255, 255, 0, 0, 0, 0, 0, 255, 0)}, 9, true, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[24] != 1 {
		t.Errorf("bit depth %d, want 1", buf.Bytes()[24])
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for x, want := range []uint8{0, 255, 255, 0, 0, 0, 0, 0, 255, 0} {
		if g := color.GrayModel.Convert(img.At(x, 0)).(color.Gray).Y; g != want {
			t.Errorf("pixel %d: %d, want %d", x, g, want)
		}
	}
}

func TestEncodeGIF(t *testing.T) {
	// Few colours: exact, and transparent where alpha is under 128.
	src := fromPix(3, 1, 4, 10, 20, 30, 255, 40, 50, 60, 200, 0, 0, 0, 100)
	var buf bytes.Buffer
	if err := encodeGIF(&rasterRows{r: src}, &buf); err != nil {
		t.Fatal(err)
	}
	img, err := gif.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for x, want := range []color.RGBA{{10, 20, 30, 255}, {40, 50, 60, 255}, {0, 0, 0, 0}} {
		if got := color.RGBAModel.Convert(img.At(x, 0)).(color.RGBA); got != want {
			t.Errorf("pixel %d: %v, want %v", x, got, want)
		}
	}
	// Many colours: a palette of at most 256, dithered close to the source.
	w, h := 64, 64
	pix := make([]uint8, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := (y*w + x) * 3
			pix[o], pix[o+1], pix[o+2] = uint8(x*4), uint8(y*4), uint8((x+y)*2)
		}
	}
	buf.Reset()
	if err := encodeGIF(&rasterRows{r: fromPix(w, h, 3, pix...)}, &buf); err != nil {
		t.Fatal(err)
	}
	img, err = gif.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(img.(*image.Paletted).Palette); n > 256 || n < 200 {
		t.Errorf("%d colours", n)
	}
	var sum float64
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			o := (y*w + x) * 3
			sum += absf(float64(c.R)-float64(pix[o])) + absf(float64(c.G)-float64(pix[o+1])) + absf(float64(c.B)-float64(pix[o+2]))
		}
	}
	if mad := sum / float64(3*w*h); mad > 4 {
		t.Errorf("mean difference %.2f", mad)
	}
}

func TestEncodeJPEG(t *testing.T) {
	for _, b := range []int{1, 3} {
		w, h := 33, 17 // odd: the last chroma row and column average fewer pixels
		pix := make([]uint8, w*h*b)
		for i := range pix {
			pix[i] = 90
		}
		var buf bytes.Buffer
		if err := encodeJPEG(&rasterRows{r: fromPix(w, h, b, pix...)}, 90, &buf); err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
			t.Fatalf("%d bands: %v", b, img.Bounds())
		}
		_, gray := img.(*image.Gray)
		if gray != (b == 1) {
			t.Errorf("%d bands: decoded as %T", b, img)
		}
		got := make([]uint8, w*b)
		readRow(img, h-1, 0, w, b, got, new([2][]uint8))
		for _, v := range got {
			if v < 88 || v > 92 {
				t.Fatalf("%d bands: %v", b, got)
			}
		}
	}
}

func absf(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func qualityOf(s string) iiif.Quality { return iiif.Quality(s) }
