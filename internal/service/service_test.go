package service_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/samples"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
)

// quadrants are the colours of the chart's quarters: top-left, top-right,
// bottom-left, bottom-right.
var quadrants = [4]color.RGBA{{220, 40, 40, 255}, {40, 170, 60, 255}, {40, 80, 210, 255}, {235, 200, 40, 255}}

func chart(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			q := 0
			if x >= w/2 {
				q++
			}
			if y >= h/2 {
				q += 2
			}
			img.SetRGBA(x, y, quadrants[q])
		}
	}
	return img
}

func newService(t *testing.T, root string) *service.Service {
	t.Helper()
	src, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return newServiceOf(t, src)
}

func newServiceOf(t *testing.T, src source.Source) *service.Service {
	t.Helper()
	if err := pixels.Startup(pixels.Config{}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	svc, err := service.New(service.Config{Limits: app.Limits(cfg), TileSize: 512}, src, pixels.NewEngine(engine.EncodeOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func vips(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("vips", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("vips %v: %v\n%s", args, err, out)
	}
}

// TestSourceFormats serves every source format libvips reads here: each
// one gives the right size in info.json and the right colours in every
// quadrant of a rendered region.
func TestSourceFormats(t *testing.T) {
	if _, err := exec.LookPath("vips"); err != nil {
		t.Fatal("the vips command-line tool is needed to make test sources (scripts/test installs it)")
	}
	root := t.TempDir()
	const w, h = 1600, 1200
	var buf bytes.Buffer
	png.Encode(&buf, chart(w, h))
	master := filepath.Join(root, "master.png")
	os.WriteFile(master, buf.Bytes(), 0o644)
	p := func(name string) string { return filepath.Join(root, name) }
	vips(t, "copy", master, p("plain.jpg"))
	vips(t, "copy", master, p("strip.tif"))
	vips(t, "tiffsave", master, p("tiled.tif"), "--tile", "--tile-width", "128", "--tile-height", "128")
	vips(t, "tiffsave", master, p("pyramid.tif"), "--tile", "--pyramid", "--compression", "jpeg", "--tile-width", "256", "--tile-height", "256")
	vips(t, "tiffsave", master, p("subifd.tif"), "--tile", "--pyramid", "--subifd", "--compression", "deflate")
	vips(t, "tiffsave", master, p("big.tif"), "--tile", "--pyramid", "--bigtiff", "--compression", "lzw")
	vips(t, "jp2ksave", master, p("tiled.jp2"), "--tile-width", "256", "--tile-height", "256")
	vips(t, "webpsave", master, p("lossy.webp"))
	vips(t, "webpsave", master, p("lossless.webp"), "--lossless")
	vips(t, "gifsave", master, p("anim.gif"))
	vips(t, "heifsave", master, p("photo.avif"), "--compression", "av1")
	vips(t, "heifsave", master, p("photo.heic"))
	writeDeepPNG(t, p("deep16.png"), chart(w, h))
	vips(t, "colourspace", master, p("gray.png"), "b-w")

	files, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	// Every format twice: from files, which libvips reads by path, and
	// from objects without a path, as remote stores give, which libvips
	// reads through their ReaderAt.
	for _, src := range []struct {
		name string
		src  source.Source
	}{{"path", files}, {"reader", pathless{files}}} {
		t.Run(src.name, func(t *testing.T) { testSourceFormats(t, newServiceOf(t, src.src), p) })
	}
}

// pathless serves the objects of another source without their Path, as a
// remote store does: their bytes are only reachable through ReaderAt
// (here an *os.File).
type pathless struct{ source.Source }

func (s pathless) Open(ctx context.Context, key string) (*source.Object, error) {
	obj, err := s.Source.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	obj.Path = ""
	return obj, nil
}

func testSourceFormats(t *testing.T, svc *service.Service, p func(string) string) {
	ctx := context.Background()
	for _, name := range []string{
		"master.png", "plain.jpg", "strip.tif", "tiled.tif", "pyramid.tif", "subifd.tif", "big.tif",
		"tiled.jp2", "lossy.webp", "lossless.webp", "anim.gif", "photo.avif", "photo.heic", "deep16.png", "gray.png",
	} {
		t.Run(name, func(t *testing.T) {
			info, err := svc.Info(ctx, iiif.V3, name, "http://x")
			if err != nil {
				t.Fatalf("info: %v", err)
			}
			if !bytes.Contains(info.Body, []byte(`"width":1600`)) || !bytes.Contains(info.Body, []byte(`"height":1200`)) {
				t.Errorf("info.json size wrong: %s", info.Body)
			}
			// A region around the centre at a reduced size: every
			// quadrant must keep its colour.
			req, err := iiif.ParseImage(iiif.V3, "400,300,800,600", "200,", "0", "default.png")
			if err != nil {
				t.Fatal(err)
			}
			img := render(t, svc, name, req)
			if b := img.Bounds(); b.Dx() != 200 || b.Dy() != 150 {
				t.Fatalf("size %v, want 200x150", b)
			}
			gray := name == "gray.png"
			for q, pt := range []image.Point{{50, 37}, {150, 37}, {50, 112}, {150, 112}} {
				want := quadrants[q]
				if gray {
					// libvips' b-w conversion is perceptual; take the
					// expected value from the gray source itself.
					src := decodeFile(t, p("gray.png"))
					want = color.RGBAModel.Convert(src.At(400+4*pt.X, 300+4*pt.Y)).(color.RGBA)
				}
				got := color.RGBAModel.Convert(img.At(pt.X, pt.Y)).(color.RGBA)
				tol := 12
				if name == "anim.gif" {
					tol = 40 // palette quantisation
				}
				if diff(got, want) > tol {
					t.Errorf("quadrant %d: got %v, want %v", q, got, want)
				}
			}
		})
	}
}

func decodeFile(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeDeepPNG writes img as a 16-bit-per-channel PNG.
func writeDeepPNG(t *testing.T, path string, img *image.RGBA) {
	t.Helper()
	deep := image.NewRGBA64(img.Bounds())
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			c := img.RGBAAt(x, y)
			deep.SetRGBA64(x, y, color.RGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, 0xffff})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, deep); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, buf.Bytes(), 0o644)
}

func diff(a, b color.RGBA) int {
	d := 0
	for _, x := range [][2]uint8{{a.R, b.R}, {a.G, b.G}, {a.B, b.B}} {
		v := int(x[0]) - int(x[1])
		if v < 0 {
			v = -v
		}
		d = max(d, v)
	}
	return d
}

func render(t *testing.T, svc *service.Service, id string, req iiif.Request) image.Image {
	t.Helper()
	job, err := svc.Image(context.Background(), id, req)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	defer job.Close()
	var out bytes.Buffer
	if err := renderTo(context.Background(), job, &out); err != nil {
		t.Fatalf("render: %v (%v)", err, errors.Unwrap(err))
	}
	img, _, err := image.Decode(&out)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return img
}

// TestThumbnailReadsSmallLevel checks that a thumbnail of a pyramid is
// planned on a small stored level, not on the full image.
func TestThumbnailReadsSmallLevel(t *testing.T) {
	root := t.TempDir()
	if err := samples.Extract(root); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, root)
	req, _ := iiif.ParseImage(iiif.V3, "full", "!1024,1024", "0", "default.jpg")
	job, err := svc.Image(context.Background(), "mandelbrot", req)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	// 6144×4608 with halving levels: 1536×1152 is the smallest ≥ 1024×768.
	lr := job.Plan.LevelRegion
	if job.Plan.Level != 2 || lr.Dx() != 1536 || lr.Dy() != 1152 {
		t.Errorf("level %d region %v, want level 2 (1536×1152)", job.Plan.Level, lr)
	}
	if job.Plan.Width != 1024 || job.Plan.Height != 768 {
		t.Errorf("size %dx%d", job.Plan.Width, job.Plan.Height)
	}
	// A JPEG thumbnail uses shrink-on-load: 2400×1600 at 256 wide reads
	// the 1/8 reduction (300×200).
	req, _ = iiif.ParseImage(iiif.V3, "full", "256,", "0", "default.jpg")
	job2, err := svc.Image(context.Background(), "julia", req)
	if err != nil {
		t.Fatal(err)
	}
	defer job2.Close()
	if lr := job2.Plan.LevelRegion; lr.Dx() != 300 || lr.Dy() != 200 {
		t.Errorf("JPEG shrink-on-load: level region %v, want 300×200", lr)
	}
}

// TestSourceReplaced checks that a file replaced in place is described
// and rendered anew (the header cache is keyed by version).
func TestSourceReplaced(t *testing.T) {
	root := t.TempDir()
	write := func(w, h int) {
		var buf bytes.Buffer
		png.Encode(&buf, chart(w, h))
		p := filepath.Join(root, "c.png")
		os.WriteFile(p, buf.Bytes(), 0o644)
	}
	write(100, 50)
	svc := newService(t, root)
	ctx := context.Background()
	a, err := svc.Info(ctx, iiif.V3, "c", "http://x")
	if err != nil {
		t.Fatal(err)
	}
	write(120, 60)
	time.Sleep(fs.OpenFor + 100*time.Millisecond) // opened files are shared for OpenFor
	b, err := svc.Info(ctx, iiif.V3, "c", "http://x")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.Body, []byte(`"width":120`)) || a.ETag == b.ETag {
		t.Errorf("stale info after replacing the file: %s (etags %s %s)", b.Body, a.ETag, b.ETag)
	}
}

// TestBrokenSources answers damaged or foreign files with clean errors.
func TestBrokenSources(t *testing.T) {
	root := t.TempDir()
	var buf bytes.Buffer
	png.Encode(&buf, chart(64, 64))
	good := buf.Bytes()
	files := map[string][]byte{
		"empty.jpg":     {},
		"random.tif":    bytes.Repeat([]byte{0x13, 0x37, 0xde, 0xad}, 1000),
		"truncated.png": good[:len(good)/2],
		"text.png":      []byte("this is not a png at all"),
	}
	for name, b := range files {
		os.WriteFile(filepath.Join(root, name), b, 0o644)
	}
	svc := newService(t, root)
	req, _ := iiif.ParseImage(iiif.V3, "full", "max", "0", "default.jpg")
	for name := range files {
		_, errInfo := svc.Info(context.Background(), iiif.V3, name, "http://x")
		var errImg error
		if job, err := svc.Image(context.Background(), name, req); err != nil {
			errImg = err
		} else {
			errImg = renderTo(context.Background(), job, &bytes.Buffer{})
			job.Close()
		}
		if errInfo == nil && errImg == nil {
			t.Errorf("%s: served without error", name)
		}
		for _, err := range []error{errInfo, errImg} {
			if err == nil {
				continue
			}
			if s := err.Error(); bytes.Contains([]byte(s), []byte(root)) {
				t.Errorf("%s: error leaks the path: %s", name, s)
			}
		}
	}
}

// TestPassthroughDecision checks which requests on the JPEG pyramidal TIFF
// sample (256-pixel tiles, 6144×4608: no edge tiles at full size) are
// answered with stored tiles, whole, cut or joined in the DCT domain.
func TestPassthroughDecision(t *testing.T) {
	root := t.TempDir()
	if err := samples.Extract(root); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, root)
	for _, tc := range []struct {
		region, size, rotation, qf string
		pass                       bool
	}{
		{"2048,1024,256,256", "256,", "0", "default.jpg", true},
		{"2048,1024,256,256", "256,256", "0", "color.jpg", true},
		{"2048,1024,512,512", "256,", "0", "default.jpg", true}, // a tile of the 1/2 level
		{"0,0,4096,4096", "256,", "0", "default.jpg", true},     // a tile of the 1/16 level
		{"2048,1024,256,256", "256,", "0", "default.png", false},
		{"2048,1024,256,256", "256,", "0", "gray.jpg", false},
		{"2048,1024,256,256", "256,", "90", "default.jpg", false},
		{"2048,1024,256,256", "256,", "!0", "default.jpg", false},
		{"2048,1024,256,256", "128,", "0", "default.jpg", true},  // a part of a tile of the 1/2 level
		{"2064,1040,128,96", "128,", "0", "default.jpg", true},   // a part of a tile, on the MCU grid
		{"2056,1024,128,128", "128,", "0", "default.jpg", false}, // off the MCU grid
		{"2176,1024,256,256", "256,", "0", "default.jpg", true},  // two tiles joined
		{"2056,1024,256,256", "256,", "0", "default.jpg", false}, // two tiles, off the MCU grid
		{"2048,1024,256,256", "100,", "0", "default.jpg", false}, // scaled
		{"2049,1024,256,256", "256,", "0", "default.jpg", false},
		{"2048,1024,512,256", "512,", "0", "default.jpg", true}, // two tiles joined
		{"0,0,1280,1280", "1280,", "0", "default.jpg", false},   // 25 tiles: rendered
		{"5888,4352,256,256", "256,", "0", "default.jpg", true}, // the last whole tile
	} {
		req, err := iiif.ParseImage(iiif.V3, tc.region, tc.size, tc.rotation, tc.qf)
		if err != nil {
			t.Fatal(err)
		}
		job, err := svc.Image(context.Background(), "mandelbrot", req)
		if err != nil {
			t.Fatal(err)
		}
		if job.Passthrough != tc.pass {
			t.Errorf("%s/%s/%s/%s: passthrough %v, want %v", tc.region, tc.size, tc.rotation, tc.qf, job.Passthrough, tc.pass)
		}
		var out bytes.Buffer
		if err := renderTo(context.Background(), job, &out); err != nil {
			t.Errorf("%s: %v", tc.region, err)
		}
		// Cut or joined, the stored pixels come out at the plan's size.
		if cfg, _, err := image.DecodeConfig(&out); err != nil || cfg.Width != job.Plan.OutWidth || cfg.Height != job.Plan.OutHeight {
			t.Errorf("%s/%s: %dx%d (%v), want %dx%d", tc.region, tc.size, cfg.Width, cfg.Height, err, job.Plan.OutWidth, job.Plan.OutHeight)
		}
		job.Close()
	}
}

// renderTo renders job and copies the result to w, as a response does.
func renderTo(ctx context.Context, job *service.Job, w io.Writer) error {
	res, err := job.Render(ctx)
	if err != nil {
		return err
	}
	defer res.Close()
	_, err = io.Copy(w, res.Body())
	return err
}
