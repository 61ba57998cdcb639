package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// workerEnv makes the test binary, started by Subprocess, the worker.
const workerEnv = "IIIFD_INGEST_TEST_WORKER"

// limitsReportEnv makes the worker report the limits it runs under, in
// place of its work, after setting them on itself as ServeWorker does.
const limitsReportEnv = "IIIFD_INGEST_TEST_LIMITS"

func TestMain(m *testing.M) {
	if slices.ContainsFunc(os.Args, func(a string) bool { return strings.HasPrefix(a, "-test.fuzzworker") }) {
		// A fuzzing process the test binary started: a test, not a worker.
		os.Unsetenv(workerEnv)
	}
	if os.Getenv(workerEnv) == "1" && os.Getenv(limitsReportEnv) == "1" {
		if err := applyLimitsFromEnv(); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		b, _ := os.ReadFile("/proc/self/limits")
		fmt.Printf("error %s\n", strings.ReplaceAll(string(b), "\n", "|"))
		os.Exit(1)
	}
	if os.Getenv(workerEnv) == "1" {
		os.Exit(ServeWorker(context.Background(), os.Args[1:], os.Stdout))
	}
	os.Setenv(workerEnv, "1") // for the children only: this process is past the check
	if err := pixels.Startup(pixels.Config{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// worker runs builds in a child process, as iiifd does.
var worker = Subprocess(os.Args[0])

// pattern is a smooth gradient under a checkerboard of 128-pixel blocks:
// smooth enough for JPEG and for 2x reductions to stay close to the
// pattern sampled at half resolution, sharp enough that a misplaced tile
// shows.
func pattern(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, patternAt(float64(x)+0.5, float64(y)+0.5, w, h))
		}
	}
	return img
}

// patternAt is the pattern's colour at the centre point (fx, fy).
func patternAt(fx, fy float64, w, h int) color.NRGBA {
	b := uint8(40)
	if (int(fx)/128+int(fy)/128)%2 == 0 {
		b = 210
	}
	return color.NRGBA{uint8(fx * 255 / float64(w)), uint8(fy * 255 / float64(h)), b, 255}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func encode(t *testing.T, img image.Image, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func vipsCmd(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("vips"); err != nil {
		t.Skip("the vips command is not installed")
	}
	if out, err := exec.Command("vips", args...).CombinedOutput(); err != nil {
		t.Fatalf("vips %v: %v\n%s", args, err, out)
	}
}

// sources writes the pattern as PNG, JPEG and strip TIFF.
func sources(t *testing.T, w, h int) map[string]string {
	img := pattern(w, h)
	src := map[string]string{
		"png":  writeFile(t, "src.png", encode(t, img, "png")),
		"jpeg": writeFile(t, "src.jpg", encode(t, img, "jpeg")),
	}
	src["tiff"] = filepath.Join(t.TempDir(), "src.tif")
	vipsCmd(t, "copy", src["png"], src["tiff"]) // strips, uncompressed
	return src
}

// meanAbsDiff compares got with the pattern sampled at scale: pixel (x, y)
// of got is the pattern around ((x0+x+0.5)*scale, (y0+y+0.5)*scale).
func meanAbsDiff(got image.Image, x0, y0 int, scale float64, w, h int) float64 {
	b := got.Bounds()
	var sum float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := got.At(x, y).RGBA()
			want := patternAt((float64(x0+x-b.Min.X)+0.5)*scale, (float64(y0+y-b.Min.Y)+0.5)*scale, w, h)
			sum += math.Abs(float64(r>>8)-float64(want.R)) + math.Abs(float64(g>>8)-float64(want.G)) +
				math.Abs(float64(bl>>8)-float64(want.B))
		}
	}
	return sum / float64(3*b.Dx()*b.Dy())
}

// leftovers lists what dir holds besides the names in keep.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

func probeFile(t *testing.T, path string) probe.Info {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	info, err := probe.Read(f, fi.Size())
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return info
}

// renderLevel renders the region r (full-resolution coordinates, aligned
// to the level's grid) from level i of a pyramid, at the level's
// resolution, as PNG, and decodes it.
func renderLevel(t *testing.T, path string, info probe.Info, i int, r image.Rectangle) image.Image {
	t.Helper()
	lv := info.Levels[i]
	s := info.Width / lv.Width
	lr := image.Rect(r.Min.X/s, r.Min.Y/s, r.Max.X/s, r.Max.Y/s)
	p := &plan.Plan{
		Region: r, Level: i, LevelRegion: lr,
		Width: lr.Dx(), Height: lr.Dy(), OutWidth: lr.Dx(), OutHeight: lr.Dy(),
		Quality: iiif.QualityDefault, Format: iiif.FormatPNG,
	}
	var buf bytes.Buffer
	if err := pixels.Render(context.Background(), engine.Input{Path: path, Level: lv}, p, engine.EncodeOptions{}, &buf); err != nil {
		t.Fatalf("render level %d %v: %v", i, r, err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestPTIFF ingests PNG, JPEG and strip TIFF sources and checks the
// pyramid as iiifd's probe sees it and its pixels as iiifd renders them.
func TestPTIFF(t *testing.T) {
	const w, h = 1500, 1100
	srcs := sources(t, w, h)
	for _, tc := range []struct {
		src   string
		tile  int
		build Builder
	}{
		{"png", 256, nil},
		{"jpeg", 512, nil},
		{"tiff", 256, worker},
		{"tiff", 1024, nil},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.src, tc.tile), func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "out.tif")
			var mu sync.Mutex
			var reports []int
			opt := Options{TileSize: tc.tile, Progress: func(p int) {
				mu.Lock()
				reports = append(reports, p)
				mu.Unlock()
			}}
			if err := Run(context.Background(), srcs[tc.src], dst, opt, tc.build); err != nil {
				t.Fatal(err)
			}
			if extra := leftovers(t, dir, "out.tif"); extra != nil {
				t.Errorf("left behind: %v", extra)
			}
			if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v", fi.Mode())
			}
			info := probeFile(t, dst)
			if info.Format != probe.TIFF || info.Width != w || info.Height != h || info.Bands != 3 {
				t.Fatalf("probe: %s %dx%d, %d bands", info.Format, info.Width, info.Height, info.Bands)
			}
			for i, lv := range info.Levels {
				if lv.TileWidth != tc.tile || lv.TileHeight != tc.tile {
					t.Errorf("level %d: tiles %dx%d", i, lv.TileWidth, lv.TileHeight)
				}
				if lv.TIFF.Compression != 7 || lv.TIFF.Photometric != 6 {
					t.Errorf("level %d: compression %d photometric %d, want JPEG (7), YCbCr (6)",
						i, lv.TIFF.Compression, lv.TIFF.Photometric)
				}
				if i > 0 {
					prev := info.Levels[i-1]
					if lv.Width != prev.Width/2 || lv.Height != prev.Height/2 || lv.Page != i {
						t.Errorf("level %d: %dx%d page %d after %dx%d", i, lv.Width, lv.Height, lv.Page, prev.Width, prev.Height)
					}
					if prev.Width <= tc.tile && prev.Height <= tc.tile {
						t.Errorf("level %d is below one that fits in a tile", i)
					}
				}
			}
			last := info.Levels[len(info.Levels)-1]
			if last.Width > tc.tile || last.Height > tc.tile {
				t.Errorf("smallest level %dx%d does not fit in a tile", last.Width, last.Height)
			}

			// Pixels: a region across tile boundaries at full
			// resolution, and the same region from the next level.
			r := image.Rect(200, 240, 840, 720)
			if d := meanAbsDiff(renderLevel(t, dst, info, 0, r), r.Min.X, r.Min.Y, 1, w, h); d > 3 {
				t.Errorf("full level differs from the source by %.2f", d)
			}
			if d := meanAbsDiff(renderLevel(t, dst, info, 1, r), r.Min.X/2, r.Min.Y/2, 2, w, h); d > 6 {
				t.Errorf("level 1 differs from the source by %.2f", d)
			}

			mu.Lock()
			defer mu.Unlock()
			if len(reports) == 0 || reports[len(reports)-1] != 100 || !slices.IsSorted(reports) {
				t.Errorf("progress reports %v", reports)
			}
		})
	}
}

// TestPTIFFCompressions checks --compression webp and deflate, and the
// BigTIFF rule.
func TestPTIFFCompressions(t *testing.T) {
	src := writeFile(t, "src.png", encode(t, pattern(600, 400), "png"))
	for _, tc := range []struct {
		c    Compression
		code int
	}{{CompressWebP, 50001}, {CompressDeflate, 8}} {
		dst := filepath.Join(t.TempDir(), "out.tif")
		if err := Run(context.Background(), src, dst, Options{Compression: tc.c}, nil); err != nil {
			t.Fatal(err)
		}
		if info := probeFile(t, dst); info.Levels[0].TIFF.Compression != tc.code || len(info.Levels) != 2 {
			t.Errorf("%s: compression %d, %d levels", tc.c, info.Levels[0].TIFF.Compression, len(info.Levels))
		}
	}
	for _, tc := range []struct {
		w, h, bands int
		big         bool
	}{
		{6000, 4000, 3, false},
		{20000, 20000, 3, false},
		{30000, 20000, 3, true},
		{40000, 30000, 1, true},
		{100, 100, 4, false},
	} {
		if got := needsBigTIFF(tc.w, tc.h, tc.bands); got != tc.big {
			t.Errorf("needsBigTIFF(%d, %d, %d) = %v", tc.w, tc.h, tc.bands, got)
		}
	}
}

// TestNewInfo checks the scale factors and sizes on numbers.
func TestNewInfo(t *testing.T) {
	for _, tc := range []struct {
		w, h, tile int
		sfs        []int
		sizes      []Size
	}{
		{100, 80, 512, []int{1}, []Size{{100, 80}}},
		{512, 512, 512, []int{1}, []Size{{512, 512}}},
		{513, 200, 512, []int{1, 2}, []Size{{257, 100}, {513, 200}}},
		{1500, 1100, 256, []int{1, 2, 4, 8}, []Size{{188, 138}, {375, 275}, {750, 550}, {1500, 1100}}},
		{40000, 30000, 512, []int{1, 2, 4, 8, 16, 32, 64, 128},
			[]Size{{313, 235}, {625, 469}, {1250, 938}}},
		{3000, 100, 1024, []int{1, 2, 4}, []Size{{750, 25}, {1500, 50}}},
	} {
		info := NewInfo(tc.w, tc.h, tc.tile)
		if !slices.Equal(info.Tiles[0].ScaleFactors, tc.sfs) || !slices.Equal(info.Sizes, tc.sizes) {
			t.Errorf("NewInfo(%d, %d, %d): scale factors %v sizes %v; want %v %v",
				tc.w, tc.h, tc.tile, info.Tiles[0].ScaleFactors, info.Sizes, tc.sfs, tc.sizes)
		}
	}
}

// specTiles lists the files a level-0 client asks for, by the tile
// algorithm of the Image API 3.0 (appendix A), written here afresh from
// the spec rather than taken from the package, with their sizes.
func specTiles(info Info) map[string]Size {
	files := map[string]Size{}
	tw, th := info.Tiles[0].Width, info.Tiles[0].Height
	for _, sf := range info.Tiles[0].ScaleFactors {
		for y := 0; y < info.Height; y += th * sf {
			for x := 0; x < info.Width; x += tw * sf {
				rw, rh := min(tw*sf, info.Width-x), min(th*sf, info.Height-y)
				sw, sh := int(math.Ceil(float64(rw)/float64(sf))), int(math.Ceil(float64(rh)/float64(sf)))
				files[fmt.Sprintf("%d,%d,%d,%d/%d,%d/0/default.jpg", x, y, rw, rh, sw, sh)] = Size{sw, sh}
			}
		}
	}
	for _, s := range info.Sizes {
		files[fmt.Sprintf("full/%d,%d/0/default.jpg", s.Width, s.Height)] = s
	}
	return files
}

// readTiles checks a tile directory: info.json, and exactly the files it
// implies, each a whole JPEG of the right size. It returns the info and
// the files' contents.
func readTiles(t *testing.T, dir string, w, h, tile int) (Info, map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatalf("info.json: %v", err)
	}
	if info.Context != "http://iiif.io/api/image/3/context.json" || info.Type != "ImageService3" ||
		info.Profile != "level0" || info.Protocol != "http://iiif.io/api/image" || info.ID != PlaceholderID ||
		info.Width != w || info.Height != h || len(info.Tiles) != 1 ||
		info.Tiles[0].Width != tile || info.Tiles[0].Height != tile || len(info.Sizes) == 0 {
		t.Fatalf("info.json: %s", data)
	}
	sfs := info.Tiles[0].ScaleFactors
	top := sfs[len(sfs)-1]
	if (w+top-1)/top > tile || (h+top-1)/top > tile {
		t.Errorf("the top scale factor %d does not reach one tile", top)
	}
	if len(sfs) > 1 {
		if sf := sfs[len(sfs)-2]; (w+sf-1)/sf <= tile && (h+sf-1)/sf <= tile {
			t.Errorf("scale factor %d already fits in a tile; %d is one too many", sf, top)
		}
	}
	if !slices.IsSortedFunc(info.Sizes, func(a, b Size) int { return a.Width - b.Width }) {
		t.Errorf("sizes not smallest first: %v", info.Sizes)
	}
	want := specTiles(info)
	files := map[string][]byte{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == "info.json" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, size := range want {
		data, ok := files[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if !bytes.HasPrefix(data, []byte{0xff, 0xd8}) || !bytes.HasSuffix(data, []byte{0xff, 0xd9}) {
			t.Errorf("%s is not a whole JPEG", name)
			continue
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil || img.Bounds().Dx() != size.Width || img.Bounds().Dy() != size.Height {
			t.Errorf("%s: %v, %v; want %dx%d", name, img.Bounds(), err, size.Width, size.Height)
		}
	}
	for name := range files {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected file %s", name)
		}
	}
	return info, files
}

// TestTiles ingests into the level-0 layout and checks every file a
// client can ask for, the pixels of some, and that a second run writes
// the same bytes.
func TestTiles(t *testing.T) {
	const w, h, tile = 1500, 1100, 256
	src := writeFile(t, "src.png", encode(t, pattern(w, h), "png"))
	dir := t.TempDir()
	dst := filepath.Join(dir, "tiles")
	if err := Run(context.Background(), src, dst, Options{Format: FormatTiles, TileSize: tile}, nil); err != nil {
		t.Fatal(err)
	}
	if extra := leftovers(t, dir, "tiles"); extra != nil {
		t.Errorf("left behind: %v", extra)
	}
	info, files := readTiles(t, dst, w, h, tile)
	if !slices.Equal(info.Tiles[0].ScaleFactors, []int{1, 2, 4, 8}) {
		t.Errorf("scale factors %v", info.Tiles[0].ScaleFactors)
	}

	for _, tc := range []struct {
		name   string
		x0, y0 int
		scale  float64
		tol    float64
	}{
		{"256,512,256,256/256,256/0/default.jpg", 256, 512, 1, 3},
		{"1024,1024,256,76/256,76/0/default.jpg", 1024, 1024, 1, 3},
		{"1024,0,476,1024/119,256/0/default.jpg", 256, 0, 4, 8},
		{"full/375,275/0/default.jpg", 0, 0, 4, 8},
		{"full/1500,1100/0/default.jpg", 0, 0, 1, 3},
	} {
		img, err := jpeg.Decode(bytes.NewReader(files[tc.name]))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if d := meanAbsDiff(img, tc.x0, tc.y0, tc.scale, w, h); d > tc.tol {
			t.Errorf("%s differs from the source by %.2f", tc.name, d)
		}
	}

	// Byte-stable: the same source and options give the same files.
	again := filepath.Join(dir, "again")
	if err := Run(context.Background(), src, again, Options{Format: FormatTiles, TileSize: tile}, worker); err != nil {
		t.Fatal(err)
	}
	_, files2 := readTiles(t, again, w, h, tile)
	for name, data := range files {
		if !bytes.Equal(data, files2[name]) {
			t.Errorf("%s differs between two runs", name)
		}
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// TestTilesSmallAndGray covers an image within one tile, and a grey one.
func TestTilesSmallAndGray(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 700, 90))
	for i := range g.Pix {
		g.Pix[i] = uint8(i % 251)
	}
	for _, tc := range []struct {
		name string
		img  image.Image
		w, h int
	}{
		{"small.png", pattern(100, 80), 100, 80},
		{"gray.png", g, 700, 90},
	} {
		src := writeFile(t, tc.name, encode(t, tc.img, "png"))
		dst := filepath.Join(t.TempDir(), "tiles")
		if err := Run(context.Background(), src, dst, Options{Format: FormatTiles}, nil); err != nil {
			t.Fatal(err)
		}
		readTiles(t, dst, tc.w, tc.h, DefaultTileSize)
	}
}

// TestFailures checks that bad input, an existing destination and bad
// options fail with a message, leaving nothing behind.
func TestFailures(t *testing.T) {
	srcs := sources(t, 800, 600)
	good := srcs["png"]
	trunc := func(path string) string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, "trunc-"+filepath.Base(path), data[:len(data)*2/3])
	}
	head := func(path string, n int) string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, fmt.Sprintf("head%d-%s", n, filepath.Base(path)), data[:min(n, len(data)-1)])
	}
	text := writeFile(t, "text.jpg", []byte("this is not an image\n"))
	for _, tc := range []struct {
		name     string
		src      string
		opt      Options
		exists   bool // dst exists beforehand
		message  string
		isExists bool
	}{
		{"missing", filepath.Join(t.TempDir(), "nope.png"), Options{}, false, "no such file", false},
		{"directory", t.TempDir(), Options{}, false, "is a directory", false},
		{"text", text, Options{}, false, "could not be decoded", false},
		{"truncated png", trunc(srcs["png"]), Options{}, false, "could not be decoded", false},
		{"truncated jpeg", trunc(srcs["jpeg"]), Options{}, false, "could not be decoded", false},
		{"truncated tiff", trunc(srcs["tiff"]), Options{}, false, "could not be decoded", false},
		{"truncated png tiles", trunc(srcs["png"]), Options{Format: FormatTiles}, false, "could not be decoded", false},
		{"truncated jpeg at 5000 bytes", head(srcs["jpeg"], 5000), Options{}, false, "could not be decoded", false},
		{"truncated jpeg tiles", trunc(srcs["jpeg"]), Options{Format: FormatTiles}, false, "could not be decoded", false},
		{"truncated tiff deflate", trunc(srcs["tiff"]), Options{Compression: CompressDeflate}, false, "could not be decoded", false},
		{"exists", good, Options{}, true, "already exists", true},
		{"exists tiles", good, Options{Format: FormatTiles}, true, "already exists", true},
		{"tile size", good, Options{TileSize: 300}, false, "tile size", false},
		{"quality", good, Options{Quality: 101}, false, "quality", false},
		{"format", good, Options{Format: "zip"}, false, "format", false},
		{"compression", good, Options{Compression: "lzw"}, false, "compression", false},
		{"tiles compression", good, Options{Format: FormatTiles, Compression: CompressWebP}, false, "ptiff only", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "out")
			if tc.exists {
				os.WriteFile(dst, []byte("keep"), 0o644)
			}
			err := Run(context.Background(), tc.src, dst, tc.opt, worker)
			if err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %v, want one saying %q", err, tc.message)
			}
			if strings.Contains(err.Error(), ".tmp-") || strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q names the work directory or spans lines", err)
			}
			// Damaged input is found by decoding it, not by the worker
			// crashing part-way through the save (issue 14 item 8).
			if strings.Contains(err.Error(), "crashed") || strings.Contains(err.Error(), "SIG") || strings.Contains(err.Error(), "worker failed") {
				t.Errorf("message %q: the worker crashed", err)
			}
			if errors.Is(err, ErrExists) != tc.isExists {
				t.Errorf("errors.Is(%v, ErrExists) = %v", err, !tc.isExists)
			}
			keep := []string{}
			if tc.exists {
				keep = append(keep, "out")
				if data, _ := os.ReadFile(dst); string(data) != "keep" {
					t.Error("the existing destination was changed")
				}
			}
			if extra := leftovers(t, dir, keep...); extra != nil {
				t.Errorf("left behind: %v", extra)
			}
		})
	}
}

// TestCancel cancels ingests of a large image once they are under way:
// they stop promptly and leave nothing behind.
func TestCancel(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.jpg")
	vipsCmd(t, "black", big, "20000", "20000", "--bands", "3")
	for _, tc := range []struct {
		name  string
		opt   Options
		build Builder
	}{
		{"ptiff worker", Options{}, worker},
		{"tiles in process", Options{Format: FormatTiles}, nil},
		{"tiles worker", Options{Format: FormatTiles}, worker},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var at time.Time
			var once sync.Once
			tc.opt.Progress = func(p int) {
				if p >= 3 {
					once.Do(func() { at = time.Now(); cancel() })
				}
			}
			err := Run(ctx, big, filepath.Join(dir, "out"), tc.opt, tc.build)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want one wrapping context.Canceled", err)
			}
			if at.IsZero() {
				t.Fatal("cancelled before any progress")
			}
			if d := time.Since(at); d > 3*time.Second {
				t.Errorf("returned %v after cancellation", d)
			}
			if extra := leftovers(t, dir); extra != nil {
				t.Errorf("left behind: %v", extra)
			}
		})
	}
}

// TestWorkerLeavesNothingRunning: a worker that exits after starting a
// process in the background does not leave that process running.
func TestWorkerLeavesNothingRunning(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// The worker's arguments follow the script as $1...: ignored.
	script := "sleep 60 </dev/null >/dev/null 2>&1 & echo $! > " + pidFile + "; exit 0"
	build := Subprocess("sh", "-c", script, "worker")
	build(context.Background(), filepath.Join(dir, "src.png"), filepath.Join(dir, "out.tif"), Options{Format: FormatPTIFF, TileSize: 256, Quality: 85, Compression: CompressJPEG})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			return // gone, or a zombie waiting for its parent
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker's background process %s is still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkerLimits: the worker runs under limits on its address space,
// CPU time and open files (issue 14 item 8), so that a runaway in libvips
// stays in the worker. They are set on the started process by the
// parent (which reaches any worker command: here a shell, held until the
// parent has seen it start), and by iiifd's own worker on itself before
// it starts libvips.
func TestWorkerLimits(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("needs /proc")
	}
	lim := Limits{AddressSpace: 3 << 30, CPUTime: 1234 * time.Second, OpenFiles: 200}
	want := map[string]string{"Max address space": "3221225472", "Max cpu time": "1234", "Max open files": "200"}
	check := func(name, report string) {
		t.Helper()
		for k, v := range want {
			i := strings.Index(report, k)
			if i < 0 {
				t.Errorf("%s: no %q in %q", name, k, report)
				continue
			}
			if f := strings.Fields(report[i+len(k):]); len(f) < 2 || f[0] != v || f[1] != v {
				t.Errorf("%s: %s %v, want %s (soft and hard)", name, k, f[:min(2, len(f))], v)
			}
		}
	}
	dir := t.TempDir()
	gate := filepath.Join(dir, "go")
	// The shell waits for the parent to have had the first progress line,
	// which it reads only after setting the limits; then it reports its
	// limits as the error message, on one line.
	script := `echo progress 1; while [ ! -e ` + gate + ` ]; do sleep 0.01; done; echo "error $(tr '\n' '|' </proc/self/limits)"; exit 1`
	opt := Options{Format: FormatPTIFF, TileSize: 256, Quality: 85, Compression: CompressJPEG,
		Progress: func(int) { os.WriteFile(gate, nil, 0o644) }}
	err := SubprocessWith(lim, "sh", "-c", script, "worker")(context.Background(), filepath.Join(dir, "src.png"), filepath.Join(dir, "out.tif"), opt)
	if err == nil {
		t.Fatal("no report")
	}
	check("a shell worker", err.Error())

	// iiifd's own worker sets them on itself first: this test binary in
	// its limits-report mode.
	t.Setenv(limitsReportEnv, "1")
	err = SubprocessWith(lim, os.Args[0])(context.Background(), filepath.Join(dir, "src.png"), filepath.Join(dir, "out.tif"), Options{})
	if err == nil {
		t.Fatal("no report")
	}
	check("iiifd's worker", err.Error())
}

// FuzzParseLimits: the worker's limits parse back to what was written,
// and anything else is refused, never half-read.
func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"", DefaultLimits.String(), "as=1", "cpu=0", "nofile=-1", "as=1,as=2", "x=1", "as=", "cpu=9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseLimits(s)
		if err != nil {
			if l != (Limits{}) {
				t.Fatalf("%q: %v with limits %+v", s, err, l)
			}
			return
		}
		if l.AddressSpace < 0 || l.CPUTime < 0 || l.OpenFiles < 0 {
			t.Fatalf("%q: %+v", s, l)
		}
		back, err := parseLimits(l.String())
		if err != nil || back != l {
			t.Fatalf("%q: %+v written as %q reads %+v, %v", s, l, l.String(), back, err)
		}
	})
}
