package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/iiifd/iiifd/internal/app/apptest"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/probe"
)

// The test image: big enough for several tiles at several scale factors,
// with sizes that are not multiples of the tile size (edge tiles), and
// detailed enough that a tile put one pixel off shows.
const tileW, tileH = 1500, 1100

// pattern is smooth at the scale of JPEG blocks (so JPEG noise stays
// small) but changes within a few pixels, in every channel differently.
func pattern(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x), float64(y)
			r := 128 + 100*math.Sin(fx/9+fy/31)
			g := 128 + 100*math.Sin(fy/11-fx/53)
			b := 128 + 100*math.Sin((fx+fy)/17)
			img.SetRGBA(x, y, color.RGBA{uint8(r), uint8(g), uint8(b), 255})
		}
	}
	return img
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// tileRoot writes the test image as a tile directory made by dzsave (with
// stored sizes added to its info.json), JPEG pyramidal TIFFs of the same
// pixels (RGB-coded, YCbCr-coded and grey), and broken tile directories.
// It is made once per test binary and removed by TestMain; tests must
// not change it.
func tileRoot(t testing.TB) string {
	t.Helper()
	tileRootOnce.Do(func() {
		dir, err := os.MkdirTemp("", "iiifd-tiles-")
		if err != nil {
			t.Fatal(err)
		}
		tileRootDir = dir
		makeTileRoot(t, dir)
		tileRootOK = true
	})
	if !tileRootOK {
		t.Fatal("making the tile test sources failed")
	}
	return tileRootDir
}

var (
	tileRootOnce sync.Once
	tileRootDir  string
	tileRootOK   bool
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tileRootDir != "" {
		os.RemoveAll(tileRootDir)
	}
	os.Exit(code)
}

func makeTileRoot(t testing.TB, root string) {
	t.Helper()
	if _, err := exec.LookPath("vips"); err != nil {
		t.Fatal("the vips command-line tool is needed to make test sources (scripts/test installs it)")
	}
	p := func(name string) string { return filepath.Join(root, filepath.FromSlash(name)) }
	var buf bytes.Buffer
	png.Encode(&buf, pattern(tileW, tileH))
	os.MkdirAll(p("src"), 0o755)
	os.WriteFile(p("src/master.png"), buf.Bytes(), 0o644)
	os.MkdirAll(p("maps"), 0o755)
	run(t, "vips", "dzsave", p("src/master.png"), p("maps/dz"), "--layout", "iiif3", "--tile-size", "256", "--suffix", ".jpg[Q=95]")
	run(t, "vips", "tiffsave", p("src/master.png"), p("pyr.tif"), "--tile", "--pyramid", "--compression", "jpeg", "--Q", "95", "--tile-width", "256", "--tile-height", "256")
	// libvips codes JPEG tiles as YCbCr below Q 90, as RGB from Q 90 up.
	run(t, "vips", "tiffsave", p("src/master.png"), p("ycc.tif"), "--tile", "--pyramid", "--compression", "jpeg", "--Q", "85", "--tile-width", "256", "--tile-height", "256")
	run(t, "vips", "colourspace", p("src/master.png"), p("src/gray.png"), "b-w")
	run(t, "vips", "tiffsave", p("src/gray.png"), p("gray.tif"), "--tile", "--pyramid", "--compression", "jpeg", "--Q", "95", "--tile-width", "256", "--tile-height", "256")

	// Stored sizes, as a static-layout writer other than dzsave adds them.
	info := readJSON(t, p("maps/dz/info.json"))
	var sizes []any
	for _, sf := range []int{4, 8} {
		w, h := ceilDiv(tileW, sf), ceilDiv(tileH, sf)
		dir := p(fmt.Sprintf("maps/dz/full/%d,%d/0", w, h))
		os.MkdirAll(dir, 0o755)
		run(t, "vips", "thumbnail", p("src/master.png"), filepath.Join(dir, "default.jpg[Q=90]"), fmt.Sprint(w), "--height", fmt.Sprint(h), "--size", "force")
		sizes = append(sizes, map[string]any{"width": w, "height": h})
	}
	info["sizes"] = sizes
	b, _ := json.Marshal(info)
	os.WriteFile(p("maps/dz/info.json"), b, 0o644)

	// A copy with one tile missing, and one with a broken info.json.
	run(t, "cp", "-r", p("maps/dz"), p("missing"))
	os.Remove(p("missing/256,256,256,256/256,256/0/default.jpg"))
	run(t, "cp", "-r", p("maps/dz"), p("malformed"))
	os.WriteFile(p("malformed/info.json"), []byte(`{"width": 1500, "height": "tall", "tiles": [`), 0o644)
}

func tileServer(t testing.TB, root string) string {
	t.Helper()
	cfg := config.Default()
	cfg.Root = root
	_, srv := apptest.Serve(t, cfg)
	return srv.URL
}

func readJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// storedFactors returns the scale factors the stored info.json declares.
func storedFactors(t testing.TB, root string) []int {
	info := readJSON(t, filepath.Join(root, "maps", "dz", "info.json"))
	var out []int
	for _, f := range info["tiles"].([]any)[0].(map[string]any)["scaleFactors"].([]any) {
		out = append(out, int(f.(float64)))
	}
	return out
}

const dzID = "maps%2Fdz"

func TestTileDirInfo(t *testing.T) {
	root := tileRoot(t)
	base := tileServer(t, root)
	r := get(t, base+"/iiif/3/"+dzID+"/info.json")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var info struct {
		ID     string `json:"id"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
		Tiles  []struct {
			Width        int   `json:"width"`
			Height       int   `json:"height"`
			ScaleFactors []int `json:"scaleFactors"`
		} `json:"tiles"`
		Sizes        []struct{ Width, Height int } `json:"sizes"`
		ExtraFormats []string                      `json:"extraFormats"`
		MaxArea      int                           `json:"maxArea"`
	}
	if err := json.Unmarshal(r.body, &info); err != nil {
		t.Fatal(err)
	}
	if info.ID != base+"/iiif/3/"+dzID || info.Width != tileW || info.Height != tileH {
		t.Errorf("id %q size %dx%d", info.ID, info.Width, info.Height)
	}
	want := storedFactors(t, root)
	if len(info.Tiles) != 1 || info.Tiles[0].Width != 256 || info.Tiles[0].Height != 0 ||
		fmt.Sprint(info.Tiles[0].ScaleFactors) != fmt.Sprint(want) {
		t.Errorf("tiles %+v, want 256×256 at %v", info.Tiles, want)
	}
	if fmt.Sprint(info.Sizes) != "[{188 138} {375 275}]" {
		t.Errorf("sizes %v", info.Sizes)
	}
	if info.MaxArea == 0 || len(info.ExtraFormats) == 0 {
		t.Errorf("limits and formats missing: %s", r.body)
	}
}

// TestTileDirPassthrough asks for every tile of every declared scale
// factor, as the spec's tile algorithm names them, and every stored size:
// each response is the stored file, byte for byte.
func TestTileDirPassthrough(t *testing.T) {
	root := tileRoot(t)
	base := tileServer(t, root)
	n := 0
	check := func(v int, params, file string) {
		t.Helper()
		want, err := os.ReadFile(filepath.Join(root, "maps", "dz", filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		r := get(t, fmt.Sprintf("%s/iiif/%d/%s/%s", base, v, dzID, params))
		if r.status != 200 || !bytes.Equal(r.body, want) {
			t.Errorf("%s: status %d, %d bytes; want the stored %d bytes", params, r.status, len(r.body), len(want))
		}
		if ct := r.header.Get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("%s: Content-Type %q", params, ct)
		}
		n++
	}
	for _, sf := range storedFactors(t, root) {
		for y := 0; y < tileH; y += 256 * sf {
			for x := 0; x < tileW; x += 256 * sf {
				w, h := min(256*sf, tileW-x), min(256*sf, tileH-y)
				sw, sh := ceilDiv(w, sf), ceilDiv(h, sf)
				file := fmt.Sprintf("%d,%d,%d,%d/%d,%d/0/default.jpg", x, y, w, h, sw, sh)
				check(3, file, file)
			}
		}
	}
	// Other spellings of the same tile: 3.0 "w," and "color", 2.1 "w,".
	check(3, "256,512,256,256/256,/0/color.jpg", "256,512,256,256/256,256/0/default.jpg")
	check(2, "1280,1024,220,76/220,/0/default.jpg", "1280,1024,220,76/220,76/0/default.jpg")
	check(3, "full/375,275/0/default.jpg", "full/375,275/0/default.jpg")
	check(3, "full/188,/0/default.jpg", "full/188,138/0/default.jpg")
	if n < 30 {
		t.Errorf("only %d tiles checked", n)
	}
}

// imageAt fetches a URL and decodes it, failing on anything but 200.
func imageAt(t *testing.T, url string) image.Image {
	t.Helper()
	r := get(t, url)
	if r.status != 200 {
		t.Fatalf("%s: %d %s", url, r.status, r.body)
	}
	return decode(t, r.body)
}

// difference returns the mean and the 99.9th percentile of the absolute
// differences of the colour samples of two images of the same size.
func difference(t *testing.T, a, b image.Image) (mean float64, p999 int) {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes differ: %v and %v", a.Bounds(), b.Bounds())
	}
	var hist [256]int
	sum, n := 0, 0
	ab, bb := a.Bounds(), b.Bounds()
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			ca := color.RGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.RGBA)
			cb := color.RGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.RGBA)
			for _, d := range []int{int(ca.R) - int(cb.R), int(ca.G) - int(cb.G), int(ca.B) - int(cb.B)} {
				d = max(d, -d)
				hist[d]++
				sum += d
				n++
			}
		}
	}
	for v, c := 0, 0; v < 256; v++ {
		if c += hist[v]; c >= n-n/1000 {
			p999 = v
			break
		}
	}
	return float64(sum) / float64(n), p999
}

// TestTileDirStitched renders requests that no stored file answers from
// the tile directory and from the pyramidal TIFF of the same image: the
// pixels agree up to JPEG noise. A tile misplaced by a pixel would not.
func TestTileDirStitched(t *testing.T) {
	root := tileRoot(t)
	base := tileServer(t, root)
	for _, params := range []string{
		"123,77,1200,900/max/0/default.png",      // 30 tiles at full resolution, odd offsets
		"123,77,1200,900/600,/0/default.png",     // the same region from level 1/2
		"37,251,1401,801/350,/0/default.png",     // level 1/4, odd offsets
		"full/max/0/default.png",                 // the whole image
		"full/!500,500/0/default.png",            // thumbnail from a reduced level
		"250,250,20,20/max/0/default.png",        // inside one tile
		"255,255,2,2/max/0/default.png",          // across four tiles, 2×2
		"1400,1000,100,100/max/0/default.png",    // the corner: edge tiles only
		"0,0,256,256/max/0/default.png",          // an aligned tile, re-encoded as PNG
		"0,0,256,256/256,/0/gray.png",            // grey
		"100,200,700,500/350,/90/default.png",    // rotated
		"100,200,700,500/350,/!0/default.png",    // mirrored
		"100,200,700,500/350,/22.5/default.png",  // arbitrary rotation
		"256,256,512,512/255,255/0/default.png",  // almost a tile, scaled
		"pct:10,10,50,50/!400,400/0/default.png", // percentages
	} {
		t.Run(params, func(t *testing.T) {
			a := imageAt(t, base+"/iiif/3/"+dzID+"/"+params)
			b := imageAt(t, base+"/iiif/3/pyr.tif/"+params)
			mean, p := difference(t, a, b)
			if mean > 2 || p > 16 {
				t.Errorf("tile directory and TIFF differ: mean %.2f, 99.9%% %d", mean, p)
			}
		})
	}
	// Formats and sizes of re-encoded answers.
	for params, size := range map[string]image.Point{
		"0,0,256,256/256,/0/bitonal.jpg":  {256, 256},
		"0,0,512,512/256,/90/default.jpg": {256, 256},
		"1,0,256,256/256,/0/default.jpg":  {256, 256},
		"0,0,256,256/100,/0/default.webp": {100, 100},
	} {
		r := get(t, base+"/iiif/3/"+dzID+"/"+params)
		if r.status != 200 {
			t.Errorf("%s: %d %s", params, r.status, r.body)
			continue
		}
		if params == "0,0,256,256/100,/0/default.webp" {
			if !bytes.HasPrefix(r.body, []byte("RIFF")) {
				t.Errorf("%s: not a WebP", params)
			}
			continue
		}
		if got := decode(t, r.body).Bounds().Size(); got != size {
			t.Errorf("%s: size %v, want %v", params, got, size)
		}
	}
}

// TestTileDirBroken answers a missing tile and a malformed info.json with
// clean 500s whose messages name no path.
func TestTileDirBroken(t *testing.T) {
	root := tileRoot(t)
	base := tileServer(t, root)
	for _, url := range []string{
		"/iiif/3/missing/256,256,256,256/256,256/0/default.jpg", // passthrough of the missing tile
		"/iiif/3/missing/200,200,400,400/max/0/default.jpg",     // stitched over it
		"/iiif/3/malformed/info.json",
		"/iiif/3/malformed/full/max/0/default.jpg",
	} {
		r := get(t, base+url)
		if r.status != 500 {
			t.Errorf("%s: status %d, want 500", url, r.status)
		}
		if bytes.Contains(r.body, []byte(root)) || bytes.Contains(r.body, []byte("default.jpg")) || bytes.Contains(r.body, []byte("256,256")) {
			t.Errorf("%s: message leaks a path: %s", url, r.body)
		}
	}
	// The rest of the damaged pyramid still serves.
	if r := get(t, base+"/iiif/3/missing/0,0,256,256/256,256/0/default.jpg"); r.status != 200 {
		t.Errorf("intact tile of a damaged pyramid: %d", r.status)
	}
	// A folder without an info.json is no image.
	if r := get(t, base+"/iiif/3/src/info.json"); r.status != 404 {
		t.Errorf("folder without info.json: %d", r.status)
	}
}

// spliced builds, independently of the server, the complete JPEG of tile
// (col, row) of TIFF level lv: SOI, for RGB-coded tiles an Adobe marker
// with transform 0, the JPEGTables without SOI and EOI, the tile without
// its SOI.
func spliced(t *testing.T, path string, lv probe.Level, col, row int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tl := lv.TIFF
	across, _ := tl.Grid()
	br, err := tl.TileRange(f, row*across+col)
	if err != nil {
		t.Fatal(err)
	}
	tile := make([]byte, br.Length)
	if _, err := f.ReadAt(tile, br.Offset); err != nil {
		t.Fatal(err)
	}
	tables, err := tl.JPEGTables(f)
	if err != nil || len(tables) < 4 {
		t.Fatalf("JPEGTables: %d bytes, %v", len(tables), err)
	}
	out := []byte{0xFF, 0xD8}
	if tl.Photometric == 2 {
		out = append(out, 0xFF, 0xEE, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0)
	}
	out = append(out, tables[2:len(tables)-2]...)
	return append(out, tile[2:]...)
}

// TestTIFFPassthrough checks that whole interior tiles of JPEG pyramidal
// TIFFs are sent as their stored bytes completed with the JPEG tables (no
// re-encoding: the response equals the splice made here), and that they
// decode to the pixels libvips decodes for the same tile. Edge tiles,
// which TIFF pads, are re-encoded at their real size.
func TestTIFFPassthrough(t *testing.T) {
	root := tileRoot(t)
	base := tileServer(t, root)
	for _, name := range []string{"pyr.tif", "ycc.tif", "gray.tif"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(root, name)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			info, err := probe.Read(f, st.Size())
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			wantPhoto := map[string]int{"pyr.tif": 2, "ycc.tif": 6, "gray.tif": 1}[name]
			if got := info.Levels[0].TIFF.Photometric; got != wantPhoto {
				t.Fatalf("photometric %d, want %d", got, wantPhoto)
			}
			checked := 0
			for k, lv := range info.Levels {
				sf := tileW / lv.Width
				if lv.Width*sf != tileW || lv.Height*sf != tileH {
					continue // not an exact scale: no passthrough is promised
				}
				across, down := lv.TIFF.Grid()
				for row := 0; row < down; row++ {
					for col := 0; col < across; col++ {
						x, y := col*256*sf, row*256*sf
						w, h := min(256*sf, tileW-x), min(256*sf, tileH-y)
						params := fmt.Sprintf("%d,%d,%d,%d/%d,%d/0/default", x, y, w, h, ceilDiv(w, sf), ceilDiv(h, sf))
						r := get(t, base+"/iiif/3/"+name+"/"+params+".jpg")
						if r.status != 200 {
							t.Fatalf("%s: %d %s", params, r.status, r.body)
						}
						got, err := jpeg.Decode(bytes.NewReader(r.body))
						if err != nil {
							t.Fatalf("%s: %v", params, err)
						}
						ref := imageAt(t, base+"/iiif/3/"+name+"/"+params+".png")
						edge := (col+1)*256 > lv.Width || (row+1)*256 > lv.Height
						if !edge {
							if want := spliced(t, path, lv, col, row); !bytes.Equal(r.body, want) {
								t.Errorf("level %d tile %d,%d: not the stored tile (%d bytes, splice %d)", k, col, row, len(r.body), len(want))
							}
							// Go's decoder upsamples chroma by repeating
							// samples where libjpeg interpolates, so
							// compare luma, which the splice fixes alone.
							if mean, p := difference(t, luma(got), luma(ref)); mean > 0.5 || p > 3 {
								t.Errorf("level %d tile %d,%d: decodes unlike libvips: luma mean %.2f, 99.9%% %d", k, col, row, mean, p)
							}
							// libjpeg (through vips) decodes it to the
							// very pixels libvips reads from the TIFF.
							if row == 0 && col < 2 {
								if mean, p := difference(t, vipsDecode(t, r.body), ref); mean > 0.1 || p > 1 {
									t.Errorf("level %d tile %d,%d: libjpeg decodes it unlike libvips reads the TIFF: mean %.2f, 99.9%% %d", k, col, row, mean, p)
								}
							}
							checked++
						} else if mean, p := difference(t, got, ref); mean > 12 {
							// Re-encoded at the server's quality: JPEG
							// noise on a detailed pattern.
							t.Errorf("level %d edge tile %d,%d: re-encoded tile differs: mean %.2f, 99.9%% %d", k, col, row, mean, p)
						}
					}
				}
			}
			if checked < 20 {
				t.Errorf("only %d interior tiles checked", checked)
			}
		})
	}
}

// TestTIFFInfoScaleFactors checks that info.json of a pyramidal TIFF
// advertises its stored tiling and the scale factors of its stored levels.
func TestTIFFInfoScaleFactors(t *testing.T) {
	root := tileRoot(t)
	base := tileServer(t, root)
	r := get(t, base+"/iiif/3/pyr.tif/info.json")
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var info struct {
		Tiles []struct {
			Width        int   `json:"width"`
			ScaleFactors []int `json:"scaleFactors"`
		} `json:"tiles"`
	}
	json.Unmarshal(r.body, &info)
	if len(info.Tiles) != 1 || info.Tiles[0].Width != 256 || fmt.Sprint(info.Tiles[0].ScaleFactors) != "[1 2 4 8]" {
		t.Errorf("tiles %+v, want 256 at [1 2 4 8]", info.Tiles)
	}
}

// luma returns the grey version of img.
func luma(img image.Image) image.Image {
	b := img.Bounds()
	g := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g.Set(x, y, img.At(x, y))
		}
	}
	return g
}

// vipsDecode decodes a JPEG with the vips command (libjpeg).
func vipsDecode(t *testing.T, b []byte) image.Image {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jpg"), filepath.Join(dir, "out.png")
	os.WriteFile(in, b, 0o644)
	run(t, "vips", "copy", in, out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
