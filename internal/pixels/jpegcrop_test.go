package pixels

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/tiles"
)

// jpegTiledTIFF writes the picture src as a pyramidal TIFF with JPEG
// tiles, with the vips options opts (name "grey" turns it grey first),
// and returns it open (closed when the test ends) with its probed facts.
func jpegTiledTIFF(t *testing.T, dir, src, name, opts string) (*os.File, probe.Info) {
	t.Helper()
	path := filepath.Join(dir, name+".tif")
	in := src
	if name == "grey" {
		in = filepath.Join(dir, "grey.png")
		vipsCmd(t, "colourspace", src, in, "b-w")
	}
	vipsCmd(t, "copy", in, path+opts)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	info, err := probe.Read(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return f, info
}

// TestCropJPEGEdgeTiles cuts every edge tile of JPEG-tiled TIFFs (4:2:0
// YCbCr, RGB and grey, at every level) to the part inside the level, and
// checks the bytes: the cut JPEG decodes to exactly the pixels of the
// stored tile's region, which shows that nothing was decoded and encoded
// again.
func TestCropJPEGEdgeTiles(t *testing.T) {
	dir := t.TempDir()
	src := patternPNG(t, 700, 530)
	for _, tc := range []struct{ name, opts string }{
		{"ycbcr", "[tile,pyramid,compression=jpeg,Q=80,tile-width=256,tile-height=256]"},
		{"rgb", "[tile,pyramid,compression=jpeg,Q=80,tile-width=128,tile-height=128,rgbjpeg]"},
		{"grey", "[tile,pyramid,compression=jpeg,Q=80,tile-width=128,tile-height=128]"},
	} {
		f, info := jpegTiledTIFF(t, dir, src, tc.name, tc.opts)
		cropped := 0
		for k, lv := range info.Levels {
			tl := lv.TIFF
			across, down := tl.Grid()
			for row := range down {
				for col := range across {
					x, y := col*tl.TileWidth, row*tl.TileLength
					r := image.Rect(x, y, min(x+tl.TileWidth, tl.Width), min(y+tl.TileLength, tl.Height))
					p := mkPlan(r, r.Dx(), r.Dy(), 0, false, "", iiif.FormatJPG)
					p.Level = k
					ref, ok := tiles.TIFFTile(info, p)
					if !ok {
						t.Fatalf("%s level %d tile %d,%d: no passthrough", tc.name, k, col, row)
					}
					if !ref.Cropped() {
						continue
					}
					whole, err := tiles.SpliceTIFF(context.Background(), f, ref)
					if err != nil {
						t.Fatal(err)
					}
					cut, err := CropJPEG(whole, ref.Part())
					if err != nil {
						t.Fatalf("%s level %d tile %d,%d: %v", tc.name, k, col, row, detail(err))
					}
					checkCrop(t, whole, cut, ref.Part())
					cropped++
				}
			}
		}
		if cropped < 4 {
			t.Errorf("%s: only %d edge tiles", tc.name, cropped)
		}
	}
}

// checkCrop decodes both JPEGs and compares the cut one with the part of
// the whole one, sample by sample. Go's decoder does not interpolate
// chroma, so the comparison is exact at the part's borders too.
func checkCrop(t *testing.T, whole, cut []byte, part image.Rectangle) {
	t.Helper()
	a, err := jpeg.Decode(bytes.NewReader(whole))
	if err != nil {
		t.Fatal(err)
	}
	b, err := jpeg.Decode(bytes.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	size := part.Size()
	if b.Bounds().Size() != size {
		t.Fatalf("cut to %v, want %v", b.Bounds().Size(), size)
	}
	for y := range size.Y {
		for x := range size.X {
			r1, g1, b1, _ := a.At(part.Min.X+x, part.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				t.Fatalf("pixel %d,%d: cut %d,%d,%d, stored tile %d,%d,%d", x, y, r2, g2, b2, r1, g1, b1)
			}
		}
	}
	if len(cut) >= len(whole) && size.X*size.Y > 64*64 {
		t.Logf("cut %d bytes from %d", len(cut), len(whole))
	}
}

// TestCropJPEGParts cuts parts of stored tiles that a plan asks for
// unscaled (tiles.TIFFCrop: inside one tile, the corner on a 16-pixel
// boundary) from JPEG-tiled TIFFs (4:2:0 YCbCr, RGB and grey), at every
// level: the cut JPEG decodes to exactly the stored tile's pixels there,
// and is within 38 dB PSNR of what libvips renders for the same plan
// (its pixels, written as PNG).
func TestCropJPEGParts(t *testing.T) {
	dir := t.TempDir()
	// A picture (the julia sample, cropped), not the synthetic pattern,
	// whose one-pixel saturated lines make the PSNR a measure of how
	// the decoders interpolate chroma, not of the crop.
	src := filepath.Join(dir, "julia.png")
	vipsCmd(t, "crop", filepath.Join("..", "samples", "images", "julia.jpg"), src, "700", "300", "1100", "900")
	for _, tc := range []struct{ name, opts string }{
		{"ycbcr", "[tile,pyramid,compression=jpeg,Q=85,tile-width=512,tile-height=512]"},
		{"rgb", "[tile,pyramid,compression=jpeg,Q=85,tile-width=256,tile-height=256,rgbjpeg]"},
		{"grey", "[tile,pyramid,compression=jpeg,Q=85,tile-width=256,tile-height=256]"},
	} {
		f, info := jpegTiledTIFF(t, dir, src, tc.name, tc.opts)
		parts, worst := 0, math.Inf(1)
		for k, lv := range info.Levels {
			tl := lv.TIFF
			// Quarter tiles on the tile grid, as a viewer asks a
			// pyramid of twice its tile size, and small odd parts.
			q := tl.TileWidth / 2
			var rs []image.Rectangle
			for y := 0; y < tl.Height; y += q {
				for x := 0; x < tl.Width; x += q {
					rs = append(rs, image.Rect(x, y, min(x+q, tl.Width), min(y+q, tl.Height)))
				}
			}
			rs = append(rs, image.Rect(16, 48, 16+40, 48+56).Intersect(image.Rect(0, 0, tl.Width, tl.Height)))
			for _, r := range rs {
				if r.Empty() {
					continue
				}
				p := mkPlan(r, r.Dx(), r.Dy(), 0, false, "", iiif.FormatJPG)
				p.Level = k
				ref, ok := tiles.TIFFCrop(info, p)
				if !ok {
					t.Fatalf("%s level %d %v: not a crop", tc.name, k, r)
				}
				whole, err := tiles.SpliceTIFF(context.Background(), f, ref)
				if err != nil {
					t.Fatal(err)
				}
				cut := whole
				if ref.Cropped() {
					if cut, err = CropJPEG(whole, ref.Part()); err != nil {
						t.Fatalf("%s level %d %v: %v", tc.name, k, r, detail(err))
					}
				}
				checkCrop(t, whole, cut, ref.Part())
				// libvips' render of the same plan, as PNG: its pixels
				// before its own JPEG encoding, which would only add
				// the loss the crop avoids.
				pp := *p
				pp.Format = iiif.FormatPNG
				ref2 := decode(t, iiif.FormatPNG, renderBytes(t, f.Name(), lv, &pp))
				db := psnr(t, vipsDecode(t, cut), ref2)
				worst = min(worst, db)
				if db < 38 {
					t.Errorf("%s level %d %v: PSNR %.1f dB against libvips' render", tc.name, k, r, db)
				}
				parts++
			}
		}
		if parts < 20 {
			t.Errorf("%s: only %d parts", tc.name, parts)
		}
		t.Logf("%s: %d parts, lowest PSNR %.1f dB", tc.name, parts, worst)
	}
}

// vipsDecode decodes a JPEG with libvips (libjpeg-turbo, chroma
// upsampled smoothly as in every libvips render), in process, by
// rendering it unchanged to PNG.
func vipsDecode(t testing.TB, data []byte) image.Image {
	t.Helper()
	path := writeFile(t, "in.jpg", data)
	info, err := Header(path)
	if err != nil {
		t.Fatal(detail(err))
	}
	r := image.Rect(0, 0, info.Width, info.Height)
	return decode(t, iiif.FormatPNG, renderBytes(t, path, full, mkPlan(r, r.Dx(), r.Dy(), 0, false, "", iiif.FormatPNG)))
}

// psnr is the peak signal-to-noise ratio of b against a, in dB, over the
// colour channels (+Inf when they are the same).
func psnr(t testing.TB, a, b image.Image) float64 {
	t.Helper()
	if size(a) != size(b) {
		t.Fatalf("sizes %v and %v differ", size(a), size(b))
	}
	var sq float64
	n := 0
	for y := range size(a).Y {
		for x := range size(a).X {
			c1, c2 := nrgba(a, x, y), nrgba(b, x, y)
			for _, d := range []float64{float64(c1.R) - float64(c2.R), float64(c1.G) - float64(c2.G), float64(c1.B) - float64(c2.B)} {
				sq += d * d
				n++
			}
		}
	}
	if sq == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(sq/float64(n)))
}

// TestCropJPEGRefuses checks that a crop larger than the JPEG, or of bytes
// that are no JPEG, fails instead of producing something.
func TestCropJPEGRefuses(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, pattern(64, 48), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data []byte
		w, h int
	}{
		{buf.Bytes(), 65, 48},
		{buf.Bytes(), 0, 10},
		{[]byte("not a jpeg"), 8, 8},
	} {
		if _, err := CropJPEG(tc.data, image.Rect(0, 0, tc.w, tc.h)); err == nil {
			t.Errorf("CropJPEG(%d bytes, %d, %d) succeeded", len(tc.data), tc.w, tc.h)
		}
	}
	out, err := CropJPEG(buf.Bytes(), image.Rect(0, 0, 40, 30))
	if err != nil {
		t.Fatal(detail(err))
	}
	checkCrop(t, buf.Bytes(), out, image.Rect(0, 0, 40, 30))
}
