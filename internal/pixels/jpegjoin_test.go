package pixels

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"math"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/tiles"
)

// TestJoinJPEG joins the stored tiles under unscaled regions over
// several tiles (whole blocks as a viewer asks a pyramid of twice its
// tile size, regions starting inside a tile on the MCU grid, regions at
// the level's edges) of JPEG-tiled TIFFs (4:2:0 YCbCr, RGB and grey) at
// every level, and checks the bytes: the joined JPEG decodes to exactly
// the stored tiles' pixels there, and is within 38 dB PSNR of what
// libvips renders for the same plan (its pixels, written as PNG).
func TestJoinJPEG(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "julia.png")
	vipsCmd(t, "crop", filepath.Join("..", "samples", "images", "julia.jpg"), src, "700", "300", "1100", "900")
	for _, tc := range []struct{ name, opts string }{
		{"ycbcr", "[tile,pyramid,compression=jpeg,Q=85,tile-width=256,tile-height=256]"},
		{"rgb", "[tile,pyramid,compression=jpeg,Q=85,tile-width=128,tile-height=128,rgbjpeg]"},
		{"grey", "[tile,pyramid,compression=jpeg,Q=85,tile-width=128,tile-height=128]"},
	} {
		f, info := jpegTiledTIFF(t, dir, src, tc.name, tc.opts)
		joins, worst := 0, math.Inf(1)
		for k, lv := range info.Levels {
			tl := lv.TIFF
			tw := tl.TileWidth
			var rs []image.Rectangle
			for y := 0; y < tl.Height; y += 2 * tw {
				for x := 0; x < tl.Width; x += 2 * tw {
					rs = append(rs, image.Rect(x, y, x+2*tw, y+2*tw))
				}
			}
			rs = append(rs, image.Rect(tw-48, 32, tw+40, 32+tw), image.Rect(tl.Width-tw-16, tl.Height-tw-16, tl.Width, tl.Height))
			for _, r := range rs {
				r = r.Intersect(image.Rect(0, 0, tl.Width, tl.Height))
				p := mkPlan(r, r.Dx(), r.Dy(), 0, false, "", iiif.FormatJPG)
				p.Level = k
				b, ok := tiles.TIFFJoin(info, p, 16)
				if !ok {
					continue // one tile, or a corner off the grid
				}
				data := make([][]byte, len(b.Tiles))
				for i, ref := range b.Tiles {
					ref.Width, ref.Height = tw, tl.TileLength
					var err error
					if data[i], err = tiles.SpliceTIFF(context.Background(), f, ref); err != nil {
						t.Fatal(err)
					}
				}
				part := r.Sub(b.Origin)
				joined, err := JoinJPEG(data, b.Across, part)
				if err != nil {
					t.Fatalf("%s level %d %v: %v", tc.name, k, r, detail(err))
				}
				checkJoin(t, data, b.Across, tw, tl.TileLength, joined, part)
				pp := *p
				pp.Format = iiif.FormatPNG
				db := psnr(t, vipsDecode(t, joined), decode(t, iiif.FormatPNG, renderBytes(t, f.Name(), lv, &pp)))
				worst = min(worst, db)
				if db < 38 {
					t.Errorf("%s level %d %v: PSNR %.1f dB against libvips' render", tc.name, k, r, db)
				}
				joins++
			}
		}
		if joins < 4 {
			t.Errorf("%s: only %d joins", tc.name, joins)
		}
		t.Logf("%s: %d joins, lowest PSNR %.1f dB", tc.name, joins, worst)
	}
}

// checkJoin decodes the tiles and the joined JPEG with Go's decoder
// (which does not interpolate chroma, so the comparison is exact at the
// tiles' borders too) and compares the joined image with the tiles' part,
// sample by sample.
func checkJoin(t *testing.T, data [][]byte, across, tw, th int, joined []byte, part image.Rectangle) {
	t.Helper()
	imgs := make([]image.Image, len(data))
	for i, d := range data {
		img, err := jpeg.Decode(bytes.NewReader(d))
		if err != nil {
			t.Fatal(err)
		}
		imgs[i] = img
	}
	j, err := jpeg.Decode(bytes.NewReader(joined))
	if err != nil {
		t.Fatal(err)
	}
	if size(j) != part.Size() {
		t.Fatalf("joined %v, want %v", size(j), part.Size())
	}
	for y := range part.Dy() {
		for x := range part.Dx() {
			gx, gy := part.Min.X+x, part.Min.Y+y
			tile := imgs[gy/th*across+gx/tw]
			r1, g1, b1, _ := tile.At(gx%tw, gy%th).RGBA()
			r2, g2, b2, _ := j.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				t.Fatalf("pixel %d,%d: joined %d,%d,%d, stored %d,%d,%d", x, y, r2, g2, b2, r1, g1, b1)
			}
		}
	}
}

// TestJoinJPEGRefuses checks that tiles coded differently, a corner off
// the MCU grid or a part past the tiles are refused, not joined wrongly.
func TestJoinJPEGRefuses(t *testing.T) {
	enc := func(q int) []byte {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, pattern(64, 64), &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b := enc(80), enc(50)
	for _, tc := range []struct {
		name  string
		tiles [][]byte
		r     image.Rectangle
	}{
		{"quantisation differs", [][]byte{a, b}, image.Rect(0, 0, 128, 64)},
		{"off the grid", [][]byte{a, a}, image.Rect(8, 0, 128, 64)},
		{"past the tiles", [][]byte{a, a}, image.Rect(0, 0, 129, 64)},
		{"not JPEG", [][]byte{a, []byte("not a jpeg")}, image.Rect(0, 0, 128, 64)},
	} {
		if _, err := JoinJPEG(tc.tiles, 2, tc.r); err == nil {
			t.Errorf("%s: joined", tc.name)
		}
	}
	out, err := JoinJPEG([][]byte{a, a, a, a}, 2, image.Rect(16, 16, 112, 100))
	if err != nil {
		t.Fatal(detail(err))
	}
	checkJoin(t, [][]byte{a, a, a, a}, 2, 64, 64, out, image.Rect(16, 16, 112, 100))
}

// FuzzJoinJPEG joins a valid tile with fuzzed bytes as the second tile,
// at fuzzed corners and sizes: libjpeg's errors must come back as errors
// (its error_exit longjmps, it never exits the process), and a join that
// succeeds must be a JPEG of the asked size.
func FuzzJoinJPEG(f *testing.F) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, pattern(32, 32), &jpeg.Options{Quality: 75}); err != nil {
		f.Fatal(err)
	}
	a := buf.Bytes()
	f.Add(a, 0, 0, 64, 32)
	f.Add(a, 16, 16, 48, 16)
	f.Add(a[:len(a)/2], 0, 0, 64, 32)
	f.Add([]byte("\xff\xd8\xff\xdb"), 0, 0, 64, 32)
	f.Fuzz(func(t *testing.T, b []byte, x, y, w, h int) {
		if w < 1 || h < 1 || w > 256 || h > 256 || x < 0 || y < 0 || x > 256 || y > 256 {
			return
		}
		r := image.Rect(x, y, x+w, y+h)
		out, err := JoinJPEG([][]byte{a, b}, 2, r)
		if err != nil {
			return
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("joined bytes do not decode: %v", err)
		}
		if cfg.Width != w || cfg.Height != h {
			t.Fatalf("joined %dx%d, want %dx%d", cfg.Width, cfg.Height, w, h)
		}
	})
}
