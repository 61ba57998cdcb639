package pixels

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
)

// zonePlate is a centred w×h zone plate, grey 128 ± 127·cos(π·r²/n): its
// local frequency grows with the distance r from the centre as r/n
// cycles per pixel, so every downscale has an annulus of rings finer than
// its output can hold, which a resampler that does not filter first
// folds back into coarse false rings (aliasing).
func zonePlate(w, h int, n float64) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	cx, cy := float64(w)/2, float64(h)/2
	for y := range h {
		for x := range w {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			v := 128 + 127*math.Cos(math.Pi*(dx*dx+dy*dy)/n)
			img.SetGray(x, y, color.Gray{uint8(math.Round(v))})
		}
	}
	return img
}

// ringStats returns the standard deviation of img's grey values between
// the radii r0 and r1 (in img's pixels) around its centre.
func ringStats(img image.Image, r0, r1 float64) float64 {
	b := img.Bounds()
	cx, cy := float64(b.Dx())/2, float64(b.Dy())/2
	var sum, sq float64
	n := 0
	for y := range b.Dy() {
		for x := range b.Dx() {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			if r := math.Hypot(dx, dy); r < r0 || r >= r1 {
				continue
			}
			v := float64(color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y)
			sum += v
			sq += v * v
			n++
		}
	}
	m := sum / float64(n)
	return math.Sqrt(max(0, sq/float64(n)-m*m))
}

// TestResizeZonePlate downscales a zone plate by the factors the renders
// use (a thumbnail's 0.82 of a level, halves, thirds, unequal scales),
// which iiifd_resize does with two vertical Lanczos-3 reductions around
// a quarter turn rather than vips_resize's horizontal one, and checks
// that it is what libvips' resize gives (PSNR at least 38 dB against the
// vips command's output; the zone plate, full contrast up to the
// source's Nyquist frequency, is the worst case for the two reductions'
// different fixed-point rounding) and that it does not alias: where the
// source's rings are finer than the output can hold, the output is as
// flat as vips resize's, where plain decimation shows false rings (the
// check is shown to catch them).
func TestResizeZonePlate(t *testing.T) {
	const side = 1200
	n := float64(side) // frequency 0.5 at the inscribed circle
	src := writeFile(t, "zone.png", encodePNG(t, zonePlate(side, side, n)))
	for _, tc := range []struct{ h, v float64 }{{0.8192, 0.8192}, {0.7, 0.7}, {0.5, 0.5}, {0.34, 0.34}, {0.8, 0.45}, {0.3, 0.7}} {
		t.Run(fmt.Sprintf("%gx%g", tc.h, tc.v), func(t *testing.T) {
			w, h := int(math.Round(side*tc.h)), int(math.Round(side*tc.v))
			p := mkPlan(image.Rect(0, 0, side, side), w, h, 0, false, "", iiif.FormatPNG)
			got := decode(t, iiif.FormatPNG, renderBytes(t, src, full, p))
			ref := filepath.Join(t.TempDir(), "ref.png")
			vipsCmd(t, "resize", src, ref, fmt.Sprint(tc.h), "--vscale", fmt.Sprint(tc.v), "--kernel", "lanczos3")
			want := decode(t, iiif.FormatPNG, readFile(t, ref))
			if size(want) != size(got) {
				t.Fatalf("vips resize made %v, the render %v", size(want), size(got))
			}
			db := psnr(t, got, want)
			t.Logf("PSNR %.1f dB against vips resize", db)
			if db < 38 {
				t.Errorf("PSNR %.1f dB against vips resize, want at least 38", db)
			}
			if tc.h != tc.v {
				return // the annuli below are for equal scales
			}
			// The output's Nyquist frequency is 0.5 cycles per output
			// pixel, s·0.5 per source pixel: rings past 1.35 times
			// that (radius 1.35·s·0.5·n in the source) must be gone,
			// and those under half of it kept.
			s := tc.h
			fine0, fine1 := 1.35*0.5*s*n*s, 0.5*side*s // in output pixels, inside the inscribed circle
			coarse := 0.5 * 0.5 * s * n * s
			if fine0 >= fine1 {
				// A zone plate within the source's own Nyquist
				// frequency has no rings that fine for scales above
				// about 0.74; the smaller ones test the filter.
				return
			}
			sd := ringStats(got, fine0, fine1)
			refSD := ringStats(want, fine0, fine1)
			t.Logf("standard deviation %.1f past 1.35× the output's Nyquist frequency (vips resize: %.1f), %.1f under half of it",
				sd, refSD, ringStats(got, 0, coarse))
			if sd > refSD+2 {
				t.Errorf("rings finer than the output hold: standard deviation %.1f, vips resize's %.1f (aliasing)", sd, refSD)
			}
			if sd := ringStats(got, 0, coarse); sd < 60 {
				t.Errorf("rings the output holds: standard deviation %.1f, want at least 60 (blurred)", sd)
			}
			// Decimation, the resampler that aliases, fails the check.
			dec := image.NewGray(image.Rect(0, 0, w, h))
			zp := zonePlate(side, side, n)
			for y := range h {
				for x := range w {
					dec.SetGray(x, y, zp.GrayAt(int(float64(x)/s), int(float64(y)/s)))
				}
			}
			if sd := ringStats(dec, fine0, fine1); sd <= refSD+2 {
				t.Errorf("decimation passes the aliasing check (standard deviation %.1f)", sd)
			}
		})
	}
}

// TestResizePicture checks the same scales on a picture (the julia
// sample): PSNR at least 38 dB against vips resize.
func TestResizePicture(t *testing.T) {
	src := filepath.Join("..", "samples", "images", "julia.jpg")
	for _, sc := range []float64{0.8192, 0.5, 0.34, 0.27} {
		w, h := int(math.Round(2400*sc)), int(math.Round(1600*sc))
		p := mkPlan(image.Rect(0, 0, 2400, 1600), w, h, 0, false, "", iiif.FormatPNG)
		got := decode(t, iiif.FormatPNG, renderBytes(t, src, full, p))
		ref := filepath.Join(t.TempDir(), "ref.png")
		vipsCmd(t, "resize", src, ref, fmt.Sprint(sc), "--kernel", "lanczos3")
		want := decode(t, iiif.FormatPNG, readFile(t, ref))
		if size(want) != size(got) {
			t.Fatalf("scale %g: vips resize made %v, the render %v", sc, size(want), size(got))
		}
		db := psnr(t, got, want)
		t.Logf("scale %g: PSNR %.1f dB against vips resize", sc, db)
		if db < 38 {
			t.Errorf("scale %g: PSNR %.1f dB against vips resize, want at least 38", sc, db)
		}
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
