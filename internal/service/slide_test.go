package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/slidetest"
	"github.com/iiifd/iiifd/internal/source/httpsrc"
	"github.com/iiifd/iiifd/internal/source/ranged"
	"github.com/iiifd/iiifd/internal/source/remote"
	"github.com/iiifd/iiifd/internal/source/spool"
)

// openslideRegion reads a region of a slide with OpenSlide's own tool:
// w×h pixels of level at x, y (level-0 coordinates), flattened onto
// white as a viewer shows OpenSlide's transparent (unscanned) pixels.
func openslideRegion(t *testing.T, slide string, x, y, level, w, h int) *image.RGBA {
	t.Helper()
	out := filepath.Join(t.TempDir(), "region.png")
	b, err := exec.Command("openslide-write-png", slide, fmt.Sprint(x), fmt.Sprint(y), fmt.Sprint(level),
		fmt.Sprint(w), fmt.Sprint(h), out).CombinedOutput()
	if err != nil {
		t.Fatalf("openslide-write-png: %v\n%s", err, b)
	}
	return onWhite(decodeFile(t, out))
}

func onWhite(img image.Image) *image.RGBA {
	dst := image.NewRGBA(img.Bounds())
	draw.Draw(dst, dst.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), img, img.Bounds().Min, draw.Over)
	return dst
}

// meanDiff is the mean absolute difference of two images' RGB samples.
func meanDiff(t *testing.T, a, b image.Image) float64 {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes differ: %v and %v", a.Bounds(), b.Bounds())
	}
	var sum, n float64
	ab, bb := a.Bounds(), b.Bounds()
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			p := color.RGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.RGBA)
			q := color.RGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.RGBA)
			for _, d := range [3]int{int(p.R) - int(q.R), int(p.G) - int(q.G), int(p.B) - int(q.B)} {
				sum += float64(max(d, -d))
				n++
			}
		}
	}
	return sum / n
}

// TestSlidePixels renders regions of every generated slide at each of
// its levels and compares them with what OpenSlide reads there: the
// Aperio and generic TIFFs through iiifd's TIFF path, the Philips TIFF
// through OpenSlide itself.
func TestSlidePixels(t *testing.T) {
	dir := slidetest.Dir(t)
	svc := newService(t, dir)
	type region struct{ x, y, level, w, h, ds int }
	for _, c := range []struct {
		name    string
		regions []region
	}{
		// Levels 1, 1/4 and 1/16 (OpenSlide computes the last
		// downsample from the sizes: 2400/150 and 1800/113).
		{"slide.svs", []region{{480, 240, 0, 480, 360, 1}, {800, 400, 1, 200, 150, 4}, {0, 0, 2, 150, 112, 16}}},
		{"generic.tif", []region{{256, 512, 0, 512, 256, 1}, {400, 200, 1, 300, 200, 2}, {0, 0, 2, 600, 450, 4}}},
		{"philips.tiff", []region{{700, 300, 0, 400, 300, 1}, {800, 400, 1, 300, 200, 2}, {0, 0, 3, 300, 225, 8}}},
		// Stitched from overlapping camera tiles; 900-1300 spans the
		// unscanned column between the two areas (976-1200).
		{"ventana.bif", []region{{100, 100, 0, 500, 400, 1}, {900, 300, 0, 400, 300, 1}, {800, 200, 1, 300, 200, 2},
			{0, 0, 3, 272, 212, 8}}},
		// Tiles of 144x8 pixels cut from one JPEG per level by its
		// restart markers.
		{"slide.ndpi", []region{{700, 300, 0, 400, 300, 1}, {800, 400, 1, 300, 200, 2}, {0, 0, 3, 288, 224, 8}}},
		// Level 0 from four JPEG files (the region crosses their
		// joins at 1152, 896), level 3 the map file.
		{"vms/slide.vms", []region{{1000, 700, 0, 400, 400, 1}, {800, 400, 1, 300, 200, 2}, {0, 0, 3, 288, 224, 8}}},
		// The main image at 800,600 on a glass of 4000x3000; 600-1400
		// at level 1 crosses its edge.
		{"leica.scn", []region{{900, 700, 0, 500, 400, 1}, {600, 400, 1, 400, 300, 2}, {0, 0, 2, 1000, 750, 4}}},
	} {
		for _, r := range c.regions {
			t.Run(fmt.Sprintf("%s/level%d", c.name, r.level), func(t *testing.T) {
				want := openslideRegion(t, filepath.Join(dir, c.name), r.x, r.y, r.level, r.w, r.h)
				req, err := iiif.ParseImage(iiif.V3, fmt.Sprintf("%d,%d,%d,%d", r.x, r.y, r.w*r.ds, r.h*r.ds),
					fmt.Sprintf("%d,%d", r.w, r.h), "0", "default.png")
				if err != nil {
					t.Fatal(err)
				}
				got := render(t, svc, c.name, req)
				// Both decode the same stored JPEG tiles; what differs
				// is iiifd's resampling where the region does not fall
				// on the level's own pixels.
				if d := meanDiff(t, got, want); d > 4 {
					t.Errorf("mean difference from OpenSlide %.2f, want at most 4", d)
				}
			})
		}
	}
}

// TestSlideSparseBackground reads the Philips slide's corner, whose tiles
// the scanner left out: white (the background it declares none of), as
// OpenSlide's transparent pixels shown on white, never black.
func TestSlideSparseBackground(t *testing.T) {
	dir := slidetest.Dir(t)
	svc := newService(t, dir)
	req, err := iiif.ParseImage(iiif.V3, "0,0,512,512", "max", "0", "default.png")
	if err != nil {
		t.Fatal(err)
	}
	img := render(t, svc, "philips.tiff", req)
	for _, pt := range []image.Point{{5, 5}, {400, 20}, {20, 400}} {
		if c := color.RGBAModel.Convert(img.At(pt.X, pt.Y)).(color.RGBA); c != (color.RGBA{255, 255, 255, 255}) {
			t.Errorf("unscanned pixel %v is %v, want white", pt, c)
		}
	}
	// Tile 11 (second row, second column) was written: not white.
	if c := color.RGBAModel.Convert(img.At(360, 360)).(color.RGBA); c == (color.RGBA{255, 255, 255, 255}) {
		t.Errorf("scanned pixel is white")
	}
	// The Ventana slide's column between its two areas of interest
	// (x 976-1200 at level 0) was not scanned: white, with the areas'
	// pixels either side.
	// The Leica slide's glass around its main image (at 800,600).
	req, _ = iiif.ParseImage(iiif.V3, "700,500,200,200", "max", "0", "default.png")
	img = render(t, svc, "leica.scn", req)
	for pt, scanned := range map[image.Point]bool{{20, 20}: false, {150, 20}: false, {20, 150}: false, {150, 150}: true} {
		c := color.RGBAModel.Convert(img.At(pt.X, pt.Y)).(color.RGBA)
		if white := c == (color.RGBA{255, 255, 255, 255}); white == scanned {
			t.Errorf("leica.scn at %v: %v, want scanned %v", pt, c, scanned)
		}
	}
	req, _ = iiif.ParseImage(iiif.V3, "900,600,400,100", "max", "0", "default.png")
	img = render(t, svc, "ventana.bif", req)
	for x, scanned := range map[int]bool{10: true, 80: false, 200: false, 290: false, 390: true} {
		c := color.RGBAModel.Convert(img.At(x, 50)).(color.RGBA)
		if white := c == (color.RGBA{255, 255, 255, 255}); white == scanned {
			t.Errorf("ventana.bif at x %d: %v, want scanned %v", 900+x, c, scanned)
		}
	}
}

// TestSlideAssociated serves the label, macro and thumbnail of the SVS
// and the label of the Philips slide as images of their own, under the
// ";name" suffix, and compares them with OpenSlide's.
func TestSlideAssociated(t *testing.T) {
	dir := slidetest.Dir(t)
	svc := newService(t, dir)
	ctx := context.Background()
	for _, c := range []struct{ slide, name string }{
		{"slide.svs", "label"}, {"slide.svs", "macro"}, {"slide.svs", "thumbnail"}, {"philips.tiff", "label"},
		{"ventana.bif", "macro"}, {"ventana.bif", "thumbnail"}, {"slide.ndpi", "macro"},
		{"vms/slide.vms", "macro"}, {"leica.scn", "macro"},
	} {
		t.Run(c.slide+";"+c.name, func(t *testing.T) {
			// Through OpenSlide's Python binding: libvips 8.14's
			// loader crashes on associated images.
			want := filepath.Join(t.TempDir(), "want.png")
			py := "import openslide, sys; openslide.OpenSlide(sys.argv[1]).associated_images[sys.argv[2]].save(sys.argv[3])"
			if b, err := exec.Command(slidetest.Python(t), "-c", py, filepath.Join(dir, c.slide), c.name, want).CombinedOutput(); err != nil {
				t.Fatalf("python3-openslide: %v\n%s", err, b)
			}
			wantImg := onWhite(decodeFile(t, want))
			id := c.slide + ";" + c.name
			info, err := svc.Info(ctx, iiif.V3, id, "http://x")
			if err != nil {
				t.Fatal(err)
			}
			var size struct{ Width, Height int }
			json.Unmarshal(info.Body, &size)
			if wb := wantImg.Bounds(); size.Width != wb.Dx() || size.Height != wb.Dy() {
				t.Fatalf("info.json says %dx%d, OpenSlide %v", size.Width, size.Height, wb.Size())
			}
			req, _ := iiif.ParseImage(iiif.V3, "full", "max", "0", "default.png")
			if d := meanDiff(t, render(t, svc, id, req), wantImg); d > 2 {
				t.Errorf("mean difference from OpenSlide %.2f", d)
			}
		})
	}
	// A name the slide lacks, and a suffix on an image that is no slide.
	for _, id := range []string{"generic.tif;macro", "slide.svs;overview"} {
		_, err := svc.Info(ctx, iiif.V3, id, "http://x")
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.HTTPStatus() != 404 {
			t.Errorf("%s: %v, want a 404", id, err)
		}
	}
}

// TestSlideFacts checks the slides' facts: the Physical Dimensions
// service in info.json and what the manifest's metadata is made of.
func TestSlideFacts(t *testing.T) {
	dir := slidetest.Dir(t)
	svc := newService(t, dir)
	ctx := context.Background()
	for _, c := range []struct {
		id, vendor, date string
		objective, mpp   float64
		assoc            int
	}{
		{"slide.svs", "aperio", "12/29/09 09:59:15", 20, 0.499, 3},
		{"philips.tiff", "philips", "20200101120000.000000", 0, 0.499, 1},
		{"ventana.bif", "ventana", "12/29/2009", 40, 0.2325, 2},
		{"slide.ndpi", "hamamatsu", "", 20, 0.5, 1},
		{"vms/slide.vms", "hamamatsu", "", 20, 0.5, 1},
		{"leica.scn", "leica", "2009-12-29T09:59:15.00Z", 20, 0.5, 1},
	} {
		info, err := svc.Info(ctx, iiif.V3, c.id, "http://x")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Service []map[string]any `json:"service"`
		}
		if err := json.Unmarshal(info.Body, &doc); err != nil {
			t.Fatal(err)
		}
		scale, _ := doc.Service[0]["physicalScale"].(float64)
		if len(doc.Service) != 1 || math.Abs(scale-c.mpp/1000) > 1e-12 || doc.Service[0]["physicalUnits"] != "mm" ||
			doc.Service[0]["profile"] != "http://iiif.io/api/annex/services/physdim" {
			t.Errorf("%s: service %v", c.id, doc.Service)
		}
		s, err := svc.Slide(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if s == nil || s.Vendor != c.vendor || s.MPPX != c.mpp || s.Objective != c.objective || s.ScanDate != c.date || len(s.Associated) != c.assoc {
			t.Errorf("%s: slide facts %+v", c.id, s)
		}
	}
	if s, err := svc.Slide(ctx, "generic.tif"); err != nil || s != nil {
		t.Errorf("generic TIFF: %+v, %v; want no slide facts", s, err)
	}
}

// TestSlideDamaged renders slides whose tiles are garbage, through the
// TIFF path (SVS) and through OpenSlide (Philips): a 500 naming the
// problem, and the server goes on serving.
func TestSlideDamaged(t *testing.T) {
	dir := slidetest.Dir(t)
	root := t.TempDir()
	for _, name := range []string{"damaged.svs", "philips.tiff"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "philips.tiff" {
			// Level 0's tiles start after the 8-byte header.
			copy(b[16:], bytes.Repeat([]byte{0xff}, 200000))
			name = "damaged.tiff"
		}
		os.WriteFile(filepath.Join(root, name), b, 0o644)
	}
	svc := newService(t, root)
	ctx := context.Background()
	for _, id := range []string{"damaged.svs", "damaged.tiff"} {
		// Full size: level 0, whose tiles are garbage.
		req, _ := iiif.ParseImage(iiif.V3, "256,256,512,512", "max", "0", "default.jpg")
		job, err := svc.Image(ctx, id, req)
		if err == nil {
			err = renderTo(ctx, job, new(bytes.Buffer))
			job.Close()
		}
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.HTTPStatus() != 500 || !strings.Contains(fe.Public, "decoded") && !strings.Contains(fe.Public, "damaged") {
			t.Errorf("%s: %v, want a 500 naming the damage", id, err)
		}
	}
	// Still serving.
	svc2 := newService(t, dir)
	req, _ := iiif.ParseImage(iiif.V3, "full", "100,", "0", "default.jpg")
	render(t, svc2, "philips.tiff", req)
}

// TestSlideRemote serves the generated slides from an HTTP origin (a
// real HTTP server with ranges), as from an S3 bucket: the SVS by range
// through the TIFF path, the Philips slide, which OpenSlide must read
// from a file, through its whole copy in the source cache. Pixels match
// the local files'.
func TestSlideRemote(t *testing.T) {
	dir := slidetest.Dir(t)
	origin := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer origin.Close()
	sp, err := spool.New(t.TempDir(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	src, err := httpsrc.New(httpsrc.Config{Base: origin.URL + "/", Policy: remote.DefaultPolicy(),
		Store: ranged.NewStore(ranged.Config{}), Spool: sp})
	if err != nil {
		t.Fatal(err)
	}
	remoteSvc, localSvc := newServiceOf(t, src), newService(t, dir)
	for _, id := range []string{"slide.svs", "philips.tiff", "philips.tiff;label", "slide.svs;macro"} {
		t.Run(id, func(t *testing.T) {
			req, _ := iiif.ParseImage(iiif.V3, "0,0,1200,900", "300,", "0", "default.png")
			if id == "philips.tiff;label" || id == "slide.svs;macro" {
				req, _ = iiif.ParseImage(iiif.V3, "full", "max", "0", "default.png")
			}
			if d := meanDiff(t, render(t, remoteSvc, id, req), render(t, localSvc, id, req)); d != 0 {
				t.Errorf("remote differs from local by %.2f", d)
			}
		})
	}
	if sp.Bytes() == 0 {
		t.Errorf("source cache holds %d bytes; the Philips slide should be in it", sp.Bytes())
	}
}

// TestHugeSlide reads a slide over 100,000 pixels a side, written by
// streaming (ONLY_SVS=1 scripts/make-slides DIR 120000 100800: about 13
// minutes on 2 busy cores, 270 MB, so not part of scripts/test; set
// IIIFD_HUGE_SLIDE_DIR=DIR to run it): its size, a full-resolution region
// against OpenSlide's, and a thumbnail from its smallest levels.
func TestHugeSlide(t *testing.T) {
	dir := os.Getenv("IIIFD_HUGE_SLIDE_DIR")
	if dir == "" {
		t.Skip("IIIFD_HUGE_SLIDE_DIR is not set (see the comment)")
	}
	svc := newService(t, dir)
	info, err := svc.Info(context.Background(), iiif.V3, "slide.svs", "http://x")
	if err != nil {
		t.Fatal(err)
	}
	var size struct{ Width, Height int }
	json.Unmarshal(info.Body, &size)
	if size.Width < 100000 || size.Height < 100000 {
		t.Fatalf("size %dx%d", size.Width, size.Height)
	}
	want := openslideRegion(t, filepath.Join(dir, "slide.svs"), 60000, 50000, 0, 480, 480)
	req, _ := iiif.ParseImage(iiif.V3, "60000,50000,480,480", "max", "0", "default.png")
	if d := meanDiff(t, render(t, svc, "slide.svs", req), want); d > 2 {
		t.Errorf("mean difference from OpenSlide %.2f", d)
	}
	req, _ = iiif.ParseImage(iiif.V3, "full", "512,", "0", "default.jpg")
	if b := render(t, svc, "slide.svs", req).Bounds(); b.Dx() != 512 {
		t.Errorf("thumbnail %v", b)
	}
}

// TestSlidePassthrough asks for stored tiles of the SVS's levels at the
// grid info.json advertises: each is sent as stored (with the JPEG
// tables spliced in), not decoded.
func TestSlidePassthrough(t *testing.T) {
	svc := newService(t, slidetest.Dir(t))
	ctx := context.Background()
	for _, c := range []struct{ region, size string }{
		{"240,480,240,240", "240,"}, {"960,0,960,960", "240,"},
	} {
		req, _ := iiif.ParseImage(iiif.V3, c.region, c.size, "0", "default.jpg")
		job, err := svc.Image(ctx, "slide.svs", req)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = renderTo(ctx, job, &out)
		job.Close()
		if err != nil || !job.Passthrough {
			t.Errorf("%s/%s: passthrough %v, %v", c.region, c.size, job.Passthrough, err)
		}
		if _, _, err := image.Decode(&out); err != nil {
			t.Errorf("%s: %v", c.region, err)
		}
	}
}

// TestSlideConcurrent renders tiles of the Philips slide from 8
// goroutines at once, through the shared OpenSlide handle: each equals
// the same tile rendered alone.
func TestSlideConcurrent(t *testing.T) {
	svc := newService(t, slidetest.Dir(t))
	ctx := context.Background()
	tile := func(i int) ([]byte, error) {
		req, _ := iiif.ParseImage(iiif.V3, fmt.Sprintf("%d,%d,256,256", 256*(i%9), 256*(i/9%7)), "max", "0", "default.png")
		job, err := svc.Image(ctx, "philips.tiff", req)
		if err != nil {
			return nil, err
		}
		defer job.Close()
		var out bytes.Buffer
		err = renderTo(ctx, job, &out)
		return out.Bytes(), err
	}
	want := map[int][]byte{}
	for i := range 16 {
		b, err := tile(i)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = b
	}
	errs := make(chan error, 64)
	for g := range 8 {
		go func() {
			for k := range 8 {
				i := (g*5 + k*3) % 16
				b, err := tile(i)
				if err == nil && !bytes.Equal(b, want[i]) {
					err = fmt.Errorf("tile %d differs when read concurrently", i)
				}
				errs <- err
			}
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
