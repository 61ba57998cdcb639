package pixels

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/tiles"
)

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
		path := filepath.Join(dir, tc.name+".tif")
		in := src
		if tc.name == "grey" {
			in = filepath.Join(dir, "grey.png")
			vipsCmd(t, "colourspace", src, in, "b-w")
		}
		vipsCmd(t, "copy", in, path+tc.opts)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		info, err := probe.Read(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
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
					cut, err := CropJPEG(whole, ref.Width, ref.Height)
					if err != nil {
						t.Fatalf("%s level %d tile %d,%d: %v", tc.name, k, col, row, detail(err))
					}
					checkCrop(t, whole, cut, r.Size())
					cropped++
				}
			}
		}
		f.Close()
		if cropped < 4 {
			t.Errorf("%s: only %d edge tiles", tc.name, cropped)
		}
	}
}

// checkCrop decodes both JPEGs and compares the cut one with the top-left
// of the whole one, sample by sample.
func checkCrop(t *testing.T, whole, cut []byte, size image.Point) {
	t.Helper()
	a, err := jpeg.Decode(bytes.NewReader(whole))
	if err != nil {
		t.Fatal(err)
	}
	b, err := jpeg.Decode(bytes.NewReader(cut))
	if err != nil {
		t.Fatal(err)
	}
	if b.Bounds().Size() != size {
		t.Fatalf("cut to %v, want %v", b.Bounds().Size(), size)
	}
	for y := range size.Y {
		for x := range size.X {
			r1, g1, b1, _ := a.At(x, y).RGBA()
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
		if _, err := CropJPEG(tc.data, tc.w, tc.h); err == nil {
			t.Errorf("CropJPEG(%d bytes, %d, %d) succeeded", len(tc.data), tc.w, tc.h)
		}
	}
	out, err := CropJPEG(buf.Bytes(), 40, 30)
	if err != nil {
		t.Fatal(detail(err))
	}
	checkCrop(t, buf.Bytes(), out, image.Pt(40, 30))
}
