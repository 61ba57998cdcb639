package tiles

import (
	"bytes"
	"errors"
	"image"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

func TestSpliceJPEG(t *testing.T) {
	tables := []byte{0xFF, 0xD8, 0xFF, 0xDB, 1, 2, 0xFF, 0xD9}
	tile := []byte{0xFF, 0xD8, 0xFF, 0xC0, 3, 4, 0xFF, 0xD9}
	got, err := SpliceJPEG(tables, tile, false)
	if want := []byte{0xFF, 0xD8, 0xFF, 0xDB, 1, 2, 0xFF, 0xC0, 3, 4, 0xFF, 0xD9}; err != nil || !bytes.Equal(got, want) {
		t.Errorf("splice = % x, %v; want % x", got, err, want)
	}
	got, _ = SpliceJPEG(nil, tile, true)
	if !bytes.HasPrefix(got, append([]byte{0xFF, 0xD8}, adobeRGB...)) || !bytes.HasSuffix(got, tile[2:]) {
		t.Errorf("RGB splice = % x", got)
	}
	for _, bad := range [][2][]byte{
		{tables, []byte{0xFF, 0xD8}},
		{tables, []byte{0, 0, 0xFF, 0xD9}},
		{[]byte{0xFF, 0xD8, 0xFF, 0xDB}, tile},
		{[]byte{0xFF, 0xD9}, tile},
	} {
		if _, err := SpliceJPEG(bad[0], bad[1], false); !errors.Is(err, ErrNoPassthrough) {
			t.Errorf("splice(% x, % x): %v", bad[0], bad[1], err)
		}
	}
}

// jpegTiled600x500 is a one-level 600×500 TIFF of 256-pixel YCbCr JPEG
// tiles (3×2, the last column and row cut by the level's edge), made
// anew for each test.
func jpegTiled600x500() (probe.Info, *probe.TIFFLevel) {
	lv := &probe.TIFFLevel{Width: 600, Height: 500, TileWidth: 256, TileLength: 256, SamplesPerPixel: 3,
		BitsPerSample: 8, SampleFormat: 1, Compression: 7, Photometric: 6, PlanarConfig: 1}
	info := probe.Info{Format: probe.TIFF, Width: 600, Height: 500,
		Levels: []probe.Level{{Width: 600, Height: 500, TileWidth: 256, TileHeight: 256, SubIFD: -1, TIFF: lv}}}
	return info, lv
}

// unscaledJPEG is the plan of region r at w×h, default quality, JPEG.
func unscaledJPEG(r image.Rectangle, w, h int) *plan.Plan {
	return &plan.Plan{Region: r, LevelRegion: r, Width: w, Height: h, OutWidth: w, OutHeight: h,
		Quality: iiif.QualityDefault, Format: iiif.FormatJPG}
}

// TestTIFFTileEdges checks which plans TIFFTile takes for a stored tile:
// interior tiles whole, edge tiles cut to the part inside the level
// (Cropped, with the size to cut to), and nothing that is not exactly
// one tile's area at the tile's origin.
func TestTIFFTileEdges(t *testing.T) {
	info, _ := jpegTiled600x500()
	plan := unscaledJPEG
	for _, tc := range []struct {
		r       image.Rectangle
		w, h    int
		ok      bool
		index   int
		cropped bool
		cw, ch  int
	}{
		{image.Rect(0, 0, 256, 256), 256, 256, true, 0, false, 256, 256},
		{image.Rect(512, 0, 600, 256), 88, 256, true, 2, true, 88, 256},
		{image.Rect(256, 256, 512, 500), 256, 244, true, 4, true, 256, 244},
		{image.Rect(512, 256, 600, 500), 88, 244, true, 5, true, 88, 244},
		{image.Rect(512, 256, 600, 500), 44, 122, false, 0, false, 0, 0}, // scaled
		{image.Rect(512, 256, 590, 500), 78, 244, false, 0, false, 0, 0}, // short of the edge
		{image.Rect(256, 0, 500, 256), 244, 256, false, 0, false, 0, 0},  // not at an edge
		{image.Rect(10, 0, 266, 256), 256, 256, false, 0, false, 0, 0},   // off the grid
	} {
		ref, ok := TIFFTile(info, plan(tc.r, tc.w, tc.h))
		if ok != tc.ok || (ok && (ref.Index != tc.index || ref.Cropped() != tc.cropped || ref.Width != tc.cw || ref.Height != tc.ch)) {
			t.Errorf("TIFFTile(%v → %dx%d) = %+v, %v; want tile %d, cropped %v to %dx%d, %v",
				tc.r, tc.w, tc.h, ref, ok, tc.index, tc.cropped, tc.cw, tc.ch, tc.ok)
		}
	}
}

// TestTIFFCrop checks which plans TIFFCrop takes for a part of a stored
// tile: unscaled regions inside one tile whose corner is on a 16-pixel
// boundary of the tile, the level's edge included, and nothing scaled,
// changed, across two tiles or off the MCU grid.
func TestTIFFCrop(t *testing.T) {
	info, lv := jpegTiled600x500()
	mk := unscaledJPEG
	for _, tc := range []struct {
		r    image.Rectangle
		w, h int
		ok   bool
		want TIFFRef
	}{
		{image.Rect(0, 0, 256, 256), 256, 256, true, TIFFRef{lv, 0, 0, 0, 256, 256}},
		{image.Rect(128, 0, 256, 128), 128, 128, true, TIFFRef{lv, 0, 128, 0, 128, 128}},
		{image.Rect(304, 272, 400, 300), 96, 28, true, TIFFRef{lv, 4, 48, 16, 96, 28}},
		{image.Rect(560, 480, 600, 500), 40, 20, true, TIFFRef{lv, 5, 48, 224, 40, 20}}, // at the level's corner
		{image.Rect(128, 0, 256, 128), 64, 64, false, TIFFRef{}},                        // scaled
		{image.Rect(8, 0, 136, 128), 128, 128, false, TIFFRef{}},                        // off the MCU grid
		{image.Rect(128, 0, 384, 128), 256, 128, false, TIFFRef{}},                      // two tiles
		{image.Rect(512, 256, 612, 500), 100, 244, false, TIFFRef{}},                    // past the level
	} {
		ref, ok := TIFFCrop(info, mk(tc.r, tc.w, tc.h))
		if ok != tc.ok || ref != tc.want {
			t.Errorf("TIFFCrop(%v → %dx%d) = %+v, %v; want %+v, %v", tc.r, tc.w, tc.h, ref, ok, tc.want, tc.ok)
		}
	}
	if ref, _ := TIFFCrop(info, mk(image.Rect(128, 0, 256, 128), 128, 128)); !ref.Cropped() || ref.Part() != image.Rect(128, 0, 256, 128) {
		t.Errorf("part %v, cropped %v", ref.Part(), ref.Cropped())
	}
	p := mk(image.Rect(128, 0, 256, 128), 128, 128)
	p.Rotation = 90
	if _, ok := TIFFCrop(info, p); ok {
		t.Error("a rotated plan is a crop")
	}
	p = mk(image.Rect(128, 0, 256, 128), 128, 128)
	p.Format = iiif.FormatPNG
	if _, ok := TIFFCrop(info, p); ok {
		t.Error("a PNG plan is a crop")
	}
}

// TestTIFFJoin checks which plans TIFFJoin takes: unscaled, unchanged
// regions over several tiles with the corner on the MCU grid.
func TestTIFFJoin(t *testing.T) {
	info, _ := jpegTiled600x500()
	mk := unscaledJPEG
	for _, tc := range []struct {
		r      image.Rectangle
		w, h   int
		ok     bool
		across int
		n      int
	}{
		{image.Rect(0, 0, 512, 500), 512, 500, true, 2, 4},
		{image.Rect(256, 256, 600, 500), 344, 244, true, 2, 2},
		{image.Rect(112, 16, 400, 100), 288, 84, true, 2, 2},
		{image.Rect(0, 0, 512, 512), 256, 256, false, 0, 0}, // scaled
		{image.Rect(8, 0, 512, 500), 504, 500, false, 0, 0}, // off the MCU grid
		{image.Rect(0, 0, 256, 256), 256, 256, false, 0, 0}, // one tile: TIFFTile's
		{image.Rect(0, 0, 600, 500), 600, 500, false, 0, 0}, // more tiles than allowed
	} {
		b, ok := TIFFJoin(info, mk(tc.r, tc.w, tc.h), 4)
		if ok != tc.ok || (ok && (b.Across != tc.across || len(b.Tiles) != tc.n)) {
			t.Errorf("TIFFJoin(%v → %dx%d) = %d tiles, %d across, %v; want %d, %d, %v",
				tc.r, tc.w, tc.h, len(b.Tiles), b.Across, ok, tc.n, tc.across, tc.ok)
		}
	}
	p := mk(image.Rect(0, 0, 512, 500), 512, 500)
	p.Quality = iiif.QualityGray
	if _, ok := TIFFJoin(info, p, 4); ok {
		t.Error("a grey plan of a colour level is a join")
	}
}

// TestTIFFTiles checks the block of stored tiles under a region: the
// tiles row by row, edge tiles cut to the level, the block's origin, the
// bound on their number, and no block for a level with an ICC profile.
func TestTIFFTiles(t *testing.T) {
	info, lv := jpegTiled600x500()
	p := &plan.Plan{LevelRegion: image.Rect(300, 100, 590, 300), Width: 145, Height: 100}
	b, ok := TIFFTiles(info, p, 16)
	if !ok || b.Across != 2 || b.Origin != image.Pt(256, 0) || len(b.Tiles) != 4 {
		t.Fatalf("block %+v, %v", b, ok)
	}
	want := []TIFFRef{{lv, 1, 0, 0, 256, 256}, {lv, 2, 0, 0, 88, 256}, {lv, 4, 0, 0, 256, 244}, {lv, 5, 0, 0, 88, 244}}
	for i, ref := range b.Tiles {
		if ref != want[i] {
			t.Errorf("tile %d: %+v, want %+v", i, ref, want[i])
		}
	}
	if _, ok := TIFFTiles(info, p, 3); ok {
		t.Error("4 tiles taken with a bound of 3")
	}
	lv.ICC = true
	if _, ok := TIFFTiles(info, p, 16); ok {
		t.Error("a level with an ICC profile gives a block")
	}
}
