package probe

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"testing"
)

// TestJ2KHT checks the coding the probe reports for HT and classic
// codestreams.
func TestJ2KHT(t *testing.T) {
	for _, tc := range []struct {
		file      string
		ht, tiled bool
	}{
		{"ht-tiled.j2c", true, true},
		{"ht-untiled.j2c", true, false},
		{"tiled.jp2", false, true},
		{"untiled.jp2", false, false},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		info, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range info.Levels {
			c := l.J2K
			if c == nil || c.HT != tc.ht || c.Tiled != tc.tiled || c.Mixed || c.Offset+c.Length != int64(len(data)) {
				t.Errorf("%s: coding %+v, want HT %v, tiled %v, ending with the file", tc.file, c, tc.ht, tc.tiled)
			}
		}
	}
}

// TestJ2KCut cuts the tiles under regions out of a tiled HT codestream
// with offsets, and checks that what comes out is a codestream of exactly
// the block of tiles under the region: probed, its image is the tiles'
// area, and it holds one tile-part per tile.
func TestJ2KCut(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "ht-tiled.j2c"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	tiles, err := ReadJ2KTiles(bytes.NewReader(data), info.Levels[0].J2K)
	if err != nil {
		t.Fatal(err)
	}
	// 40x30 at (3,5), tiles 16x16 from (1,2): columns at 1, 17, 33
	// (image x 3..43), rows at 2, 18, 34 (image y 5..35).
	if a, d := tiles.Grid(); a != 3 || d != 3 {
		t.Fatalf("grid %dx%d, want 3x3", a, d)
	}
	read := func(p []byte, off int64) error { _, err := bytes.NewReader(data).ReadAt(p, off); return err }
	for _, tc := range []struct {
		r            int
		region       image.Rectangle
		origin, size image.Point
		tiles        int
	}{
		{0, image.Rect(0, 0, 1, 1), image.Pt(0, 0), image.Pt(14, 13), 1},
		{0, image.Rect(13, 12, 15, 14), image.Pt(0, 0), image.Pt(30, 29), 4},
		{0, image.Rect(30, 28, 40, 30), image.Pt(30, 13), image.Pt(10, 17), 2},
		{0, image.Rect(0, 0, 40, 30), image.Pt(0, 0), image.Pt(40, 30), 9},
		// At reduction 1 the image is ceil(43/2)-ceil(3/2) = 20 wide;
		// column 1 spans ceil(17/2)-2 = 7 to ceil(33/2)-2 = 15.
		{1, image.Rect(8, 0, 9, 1), image.Pt(7, 0), image.Pt(16, 13), 1},
	} {
		cs, origin, err := tiles.Cut(tc.r, tc.region, read)
		if err != nil {
			t.Fatalf("Cut(%d, %v): %v", tc.r, tc.region, err)
		}
		if origin != tc.origin {
			t.Errorf("Cut(%d, %v): origin %v, want %v", tc.r, tc.region, origin, tc.origin)
		}
		got, err := Read(bytes.NewReader(cs), int64(len(cs)))
		if err != nil {
			t.Fatalf("Cut(%d, %v): the cut codestream: %v", tc.r, tc.region, err)
		}
		if size := image.Pt(got.Width, got.Height); size != tc.size {
			t.Errorf("Cut(%d, %v): image %v, want %v (at full resolution)", tc.r, tc.region, size, tc.size)
		}
		sub, err := ReadJ2KTiles(bytes.NewReader(cs), got.Levels[0].J2K)
		if err != nil {
			t.Fatalf("Cut(%d, %v): indexing the cut codestream: %v", tc.r, tc.region, err)
		}
		if a, d := sub.Grid(); a*d != tc.tiles || len(sub.parts) != tc.tiles {
			t.Errorf("Cut(%d, %v): %dx%d tiles, %d tile-parts, want %d", tc.r, tc.region, a, d, len(sub.parts), tc.tiles)
		}
	}
}

// FuzzJ2KTiles checks that indexing and cutting any codestream the probe
// accepts neither panics nor produces a codestream the probe refuses.
func FuzzJ2KTiles(f *testing.F) {
	for _, name := range []string{"ht-tiled.j2c", "ht-untiled.j2c"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0), uint16(0), uint16(0), uint16(5), uint16(5))
		f.Add(data, uint8(1), uint16(7), uint16(3), uint16(20), uint16(9))
	}
	f.Fuzz(func(t *testing.T, data []byte, r uint8, x, y, w, h uint16) {
		info, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil || info.Format != JP2 {
			return
		}
		tiles, err := ReadJ2KTiles(bytes.NewReader(data), info.Levels[0].J2K)
		if err != nil {
			return
		}
		read := func(p []byte, off int64) error {
			_, err := bytes.NewReader(data).ReadAt(p, info.Levels[0].J2K.Offset+off)
			return err
		}
		region := image.Rect(int(x), int(y), int(x)+int(w), int(y)+int(h))
		cs, _, err := tiles.Cut(int(r%8), region, read)
		if err != nil {
			return
		}
		if _, err := Read(bytes.NewReader(cs), int64(len(cs))); err != nil {
			t.Fatalf("the cut codestream does not probe: %v", err)
		}
	})
}
