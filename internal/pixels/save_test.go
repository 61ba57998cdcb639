package pixels

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
)

// probeFile reads the header of the file at path with the pure-Go probe.
func probeFile(t *testing.T, path string) probe.Info {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	info, err := probe.Read(f, fi.Size())
	if err != nil {
		t.Fatalf("probe %s: %v", filepath.Base(path), err)
	}
	return info
}

// TestSavePyramidTIFF writes a pyramidal TIFF and checks its layout as the
// probe sees it, its pixels through Render, and the progress reports.
func TestSavePyramidTIFF(t *testing.T) {
	const w, h, tile = 1200, 900, 256
	src := patternPNG(t, w, h)
	dst := filepath.Join(t.TempDir(), "out.tif")
	var mu sync.Mutex
	var reports []int
	opt := PyramidOptions{Layout: LayoutTIFF, TileSize: tile, Progress: func(p Progress) {
		mu.Lock()
		reports = append(reports, p.Percent)
		mu.Unlock()
	}}
	if err := SavePyramid(context.Background(), src, dst, opt); err != nil {
		t.Fatal(detail(err))
	}
	info := probeFile(t, dst)
	if info.Format != probe.TIFF || info.Width != w || info.Height != h {
		t.Fatalf("probe: %s %dx%d", info.Format, info.Width, info.Height)
	}
	// 1200x900, 600x450, 300x225, 150x112: the last one fits in a tile.
	if len(info.Levels) != 4 {
		t.Fatalf("levels %+v, want 4", info.Levels)
	}
	last := info.Levels[len(info.Levels)-1]
	if last.Width > tile || last.Height > tile {
		t.Errorf("smallest level %dx%d exceeds a tile", last.Width, last.Height)
	}
	for i, lv := range info.Levels {
		if lv.TileWidth != tile || lv.TileHeight != tile {
			t.Errorf("level %d tiles %dx%d", i, lv.TileWidth, lv.TileHeight)
		}
		if lv.TIFF == nil || lv.TIFF.Compression != 7 || lv.TIFF.Photometric != 6 {
			t.Errorf("level %d: %+v, want JPEG (7), YCbCr (6)", i, lv.TIFF)
		}
	}

	// The pixels of a region of the full level and of the whole smallest
	// level match the source.
	region := image.Rect(300, 200, 556, 456)
	got := decode(t, iiif.FormatPNG, renderBytes(t, dst, info.Levels[0],
		mkPlan(region, region.Dx(), region.Dy(), 0, false, "", iiif.FormatPNG)))
	want := pattern(w, h).SubImage(region)
	if d := meanAbsDiff(t, got, want); d > 4 {
		t.Errorf("full-level region differs from the source by %.2f on average", d)
	}
	small := image.Rect(0, 0, last.Width, last.Height)
	p := mkPlan(small, last.Width, last.Height, 0, false, "", iiif.FormatPNG)
	p.Level = len(info.Levels) - 1
	img := decode(t, iiif.FormatPNG, renderBytes(t, dst, last, p))
	checkQuadrants(t, img, red, green, blue, yellow, 30)

	mu.Lock()
	defer mu.Unlock()
	if len(reports) == 0 || reports[len(reports)-1] != 100 {
		t.Errorf("progress reports %v do not end at 100", reports)
	}
	for i := 1; i < len(reports); i++ {
		if reports[i] <= reports[i-1] {
			t.Errorf("progress reports %v do not rise", reports)
			break
		}
	}
}

// TestSavePyramidCompressions checks the other tile compressions, and that
// they keep alpha where JPEG flattens it.
func TestSavePyramidCompressions(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 600, 400))
	for y := range 400 {
		for x := range 600 {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 100, uint8(255 - y/2)})
		}
	}
	src := writeFile(t, "alpha.png", encodePNG(t, img))
	for _, tc := range []struct {
		c           Compression
		compression int
		bands       int
	}{
		{CompressJPEG, 7, 3},
		{CompressWebP, 50001, 4},
		{CompressDeflate, 8, 4},
	} {
		dst := filepath.Join(t.TempDir(), "out.tif")
		err := SavePyramid(context.Background(), src, dst, PyramidOptions{TileSize: 256, Compression: tc.c})
		if err != nil {
			t.Fatalf("compression %d: %v", tc.c, detail(err))
		}
		info := probeFile(t, dst)
		lv := info.Levels[0]
		if lv.TIFF.Compression != tc.compression || info.Bands != tc.bands || len(info.Levels) != 3 {
			t.Errorf("compression %d: TIFF compression %d, %d bands, %d levels; want %d, %d, 3",
				tc.c, lv.TIFF.Compression, info.Bands, len(info.Levels), tc.compression, tc.bands)
		}
	}
}

// TestSavePyramidIIIF writes a level-0 tile directory and checks a tile of
// each level is where the IIIF tile algorithm looks for it.
func TestSavePyramidIIIF(t *testing.T) {
	src := patternPNG(t, 700, 500)
	dst := filepath.Join(t.TempDir(), "tiles")
	if err := SavePyramid(context.Background(), src, dst, PyramidOptions{Layout: LayoutIIIF, TileSize: 256}); err != nil {
		t.Fatal(detail(err))
	}
	for _, tc := range []struct {
		path string
		w, h int
	}{
		{"0,0,256,256/256,256/0/default.jpg", 256, 256},
		{"512,256,188,244/188,244/0/default.jpg", 188, 244},
		{"512,0,188,500/94,250/0/default.jpg", 94, 250},
		{"0,0,700,500/175,125/0/default.jpg", 175, 125},
	} {
		data, err := os.ReadFile(filepath.Join(dst, tc.path))
		if err != nil {
			t.Error(err)
			continue
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width != tc.w || cfg.Height != tc.h {
			t.Errorf("%s: %dx%d, %v; want %dx%d", tc.path, cfg.Width, cfg.Height, err, tc.w, tc.h)
		}
	}
}

// TestSavePyramidFailures checks bad sources, bad options and
// cancellation, before and during the save.
func TestSavePyramidFailures(t *testing.T) {
	dir := t.TempDir()
	good := patternPNG(t, 300, 200)
	data, _ := os.ReadFile(good)
	trunc := writeFile(t, "trunc.png", data[:len(data)/2])
	text := writeFile(t, "text.png", []byte("not an image at all"))
	for _, tc := range []struct {
		name, src string
		opt       PyramidOptions
		public    string
	}{
		{"missing", filepath.Join(dir, "nope.png"), PyramidOptions{}, msgNotFound},
		{"text", text, PyramidOptions{}, msgUndecodable},
		// A pyramidal TIFF save that fails part-way crashes libvips 8.14
		// (see SavePyramid): the decode pass before it refuses the
		// truncated source, so both layouts are safe to try here.
		{"truncated tiles", trunc, PyramidOptions{Layout: LayoutIIIF}, msgUndecodable + ": it is truncated"},
		{"truncated ptiff", trunc, PyramidOptions{}, msgUndecodable + ": it is truncated"},
		{"tile size", good, PyramidOptions{TileSize: 8}, msgWrite},
		{"layout", good, PyramidOptions{Layout: 7}, msgWrite},
	} {
		err := SavePyramid(context.Background(), tc.src, filepath.Join(dir, "out"), tc.opt)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Public != tc.public {
			t.Errorf("%s: %v, want a fault %q", tc.name, detail(err), tc.public)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SavePyramid(ctx, good, filepath.Join(dir, "out"), PyramidOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: %v", err)
	}

	// Cancelled once the save is under way: the computation is killed.
	// (Tiles only, as above.)
	big := filepath.Join(dir, "big.jpg")
	vipsCmd(t, "black", big, "12000", "12000", "--bands", "3")
	for _, layout := range []Layout{LayoutIIIF} {
		ctx, cancel := context.WithCancel(context.Background())
		// last is the furthest progress reported: a save that went on to
		// its end after the cancel would report 100.
		var last atomic.Int64
		var once sync.Once
		opt := PyramidOptions{Layout: layout, Progress: func(p Progress) {
			if int64(p.Percent) > last.Load() {
				last.Store(int64(p.Percent))
			}
			if p.Percent >= 5 {
				once.Do(cancel)
			}
		}}
		err := SavePyramid(ctx, big, filepath.Join(dir, "big-out"), opt)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("layout %d cancelled during the save: %v", layout, detail(err))
		} else if l := last.Load(); l >= 100 {
			t.Errorf("layout %d: progress reached %d%% after cancellation at 5%%: the save went on to its end", layout, l)
		}
	}
}

// TestSavePyramidGray keeps a grey source grey.
func TestSavePyramidGray(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 300, 200))
	for i := range g.Pix {
		g.Pix[i] = uint8(i)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	src := writeFile(t, "gray.png", buf.Bytes())
	dst := filepath.Join(t.TempDir(), "gray.tif")
	if err := SavePyramid(context.Background(), src, dst, PyramidOptions{}); err != nil {
		t.Fatal(detail(err))
	}
	if info := probeFile(t, dst); info.Bands != 1 || info.Levels[0].TIFF.Photometric != 1 {
		t.Errorf("grey source: %d bands, photometric %d", info.Bands, info.Levels[0].TIFF.Photometric)
	}
}

// TestSavePyramidNoLeaks checks that saves, failed and cancelled ones
// included, give back every libvips object and all tracked memory.
func TestSavePyramidNoLeaks(t *testing.T) {
	src := patternPNG(t, 700, 500)
	data, _ := os.ReadFile(src)
	trunc := writeFile(t, "trunc.png", data[:len(data)/2])
	dir := t.TempDir()
	work := func() {
		for _, opt := range []PyramidOptions{{}, {Layout: LayoutIIIF, TileSize: 256}, {Compression: CompressWebP}} {
			if err := SavePyramid(context.Background(), src, filepath.Join(dir, "out"), opt); err != nil {
				t.Fatal(detail(err))
			}
			os.RemoveAll(filepath.Join(dir, "out"))
		}
		if SavePyramid(context.Background(), trunc, filepath.Join(dir, "t"), PyramidOptions{Layout: LayoutIIIF}) == nil {
			t.Fatal("truncated source saved")
		}
		// Cancelled at its first report of progress. libvips reports
		// progress while it computes, but a save this small may finish
		// before it does: the only report is then the final 100 %, and
		// the save has succeeded before the cancel.
		ctx, cancel := context.WithCancel(context.Background())
		var first atomic.Int32 // percent of the first report, plus one
		opt := PyramidOptions{Layout: LayoutIIIF, TileSize: 256, Progress: func(p Progress) {
			first.CompareAndSwap(0, int32(p.Percent)+1)
			cancel()
		}}
		err := SavePyramid(ctx, src, filepath.Join(dir, "c"), opt)
		if !errors.Is(err, context.Canceled) && !(err == nil && first.Load() == 101) {
			t.Fatalf("cancelled save (first progress %d%%): %v", first.Load()-1, detail(err))
		}
		os.RemoveAll(filepath.Join(dir, "c"))
	}
	work() // warm up: libvips makes some objects once
	before := settleStats(Stats{})
	for range 3 {
		work()
	}
	after := settleStats(before)
	if after.LiveObjects != before.LiveObjects || after.TrackedMem > before.TrackedMem {
		t.Errorf("before %+v, after %+v", before, after)
	}
}
