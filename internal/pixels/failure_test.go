package pixels

import (
	"bytes"
	"context"
	"errors"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// noise is an image that does not compress, so that cutting its file
// short loses pixels, not just padding.
func noise(w, h int) *image.NRGBA {
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.UintN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	return img
}

func kindOf(err error) (fault.Kind, bool) {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Kind, true
	}
	return 0, false
}

// TestBadSources feeds broken and unsupported files: each must fail with
// the right kind and a public message that names no path.
func TestBadSources(t *testing.T) {
	needVips(t)
	dir := t.TempDir()
	put := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jpg := encodeJPEG(t, noise(400, 300))
	png := put("noise.png", encodePNG(t, noise(400, 300)))
	tif := filepath.Join(dir, "noise.tif")
	vipsCmd(t, "tiffsave", png, tif, "--tile", "--tile-width", "64", "--tile-height", "64", "--compression", "deflate")
	tifData, err := os.ReadFile(tif)
	if err != nil {
		t.Fatal(err)
	}
	// Damage the tiles in the middle of the TIFF but keep its header and
	// directory (libtiff writes the directory after the pixels).
	corrupt := bytes.Clone(tifData)
	for i := len(corrupt) / 3; i < len(corrupt)/2; i++ {
		corrupt[i] = 0xAA
	}
	pngData, err := os.ReadFile(png)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		path string
		kind fault.Kind
	}{
		{"truncated jpeg", put("trunc.jpg", jpg[:len(jpg)/2]), fault.Internal},
		{"truncated png", put("trunc.png", pngData[:len(pngData)/2]), fault.Internal},
		{"truncated tiff", put("trunc.tif", tifData[:len(tifData)/2]), fault.Internal},
		{"corrupt tiff tiles", put("corrupt.tif", corrupt), fault.Internal},
		{"empty file", put("empty.jpg", nil), fault.Internal},
		{"random bytes", put("random.bin", noise(64, 64).Pix), fault.Internal},
		{"missing file", filepath.Join(dir, "missing.jpg"), fault.NotFound},
		{"svg", put("x.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"/>`)), fault.Unsupported},
	} {
		p := mkPlan(image.Rect(0, 0, 400, 300), 200, 150, 0, false, "", iiif.FormatJPG)
		err := Render(context.Background(), engine.Input{Path: c.path, Level: full}, p, engine.EncodeOptions{}, io.Discard)
		if err == nil {
			t.Errorf("%s: Render succeeded", c.name)
			continue
		}
		kind, ok := kindOf(err)
		if !ok || kind != c.kind {
			t.Errorf("%s: error %q has kind %v (fault: %v), want %v", c.name, detail(err), kind, ok, c.kind)
		}
		if strings.Contains(err.Error(), dir) {
			t.Errorf("%s: public message %q shows the path", c.name, err.Error())
		}
		t.Logf("%s: %s", c.name, detail(err))

		if c.kind != fault.Internal || c.name == "corrupt tiff tiles" || strings.HasPrefix(c.name, "truncated") {
			continue
		}
		if _, err := Header(c.path); err == nil {
			t.Errorf("%s: Header succeeded", c.name)
		}
	}
}

func TestBadPlans(t *testing.T) {
	path := patternPNG(t, 40, 30)
	good := mkPlan(image.Rect(0, 0, 40, 30), 40, 30, 0, false, "", iiif.FormatPNG)
	for _, c := range []struct {
		name string
		p    *plan.Plan
		kind fault.Kind
	}{
		{"nil", nil, fault.Internal},
		{"empty region", func() *plan.Plan { p := *good; p.LevelRegion = image.Rectangle{}; return &p }(), fault.Internal},
		{"zero size", func() *plan.Plan { p := *good; p.Width = 0; return &p }(), fault.Internal},
		{"region outside the image", func() *plan.Plan { p := *good; p.LevelRegion = image.Rect(100, 100, 140, 130); return &p }(), fault.Internal},
		{"pdf", func() *plan.Plan { p := *good; p.Format = iiif.FormatPDF; return &p }(), fault.NotImplemented},
		{"unknown format", func() *plan.Plan { p := *good; p.Format = "bmp"; return &p }(), fault.NotImplemented},
	} {
		err := Render(context.Background(), engine.Input{Path: path, Level: full}, c.p, engine.EncodeOptions{}, io.Discard)
		if kind, ok := kindOf(err); !ok || kind != c.kind {
			t.Errorf("%s: got %v, want kind %v", c.name, detail(err), c.kind)
		}
	}
}

var errBoom = errors.New("boom")

// failingWriter accepts limit bytes, then fails.
type failingWriter struct {
	limit, n int
	calls    atomic.Int32
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls.Add(1)
	if w.n+len(p) > w.limit {
		return 0, errBoom
	}
	w.n += len(p)
	return len(p), nil
}

func TestFailingWriter(t *testing.T) {
	path := writeFile(t, "n.png", encodePNG(t, noise(300, 200)))
	for _, f := range []iiif.Format{iiif.FormatJPG, iiif.FormatPNG, iiif.FormatTIF} {
		w := &failingWriter{limit: 10000}
		p := mkPlan(image.Rect(0, 0, 300, 200), 1200, 800, 0, false, "", f)
		err := Render(context.Background(), engine.Input{Path: path, Level: full}, p, engine.EncodeOptions{}, w)
		if !errors.Is(err, errBoom) {
			t.Errorf("%s: Render = %v, want the writer's error", f, detail(err))
		}
		// The save stops at the first failure rather than calling the
		// writer again and again.
		if n := w.calls.Load(); n > 3 {
			t.Errorf("%s: writer called %d times", f, n)
		}
	}
}

// countingWriter counts the bytes written to it.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// cancellingWriter cancels the render's context when it first receives
// bytes, that is, mid-encode.
type cancellingWriter struct {
	cancel func()
	once   sync.Once
	n      atomic.Int64
}

func (w *cancellingWriter) Write(p []byte) (int, error) {
	w.once.Do(w.cancel)
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// TestCancel cancels renders that would take many seconds (a 500x500
// image enlarged to 16000x16000) and checks that they stop promptly.
func TestCancel(t *testing.T) {
	path := writeFile(t, "n.png", encodePNG(t, noise(500, 500)))
	big := func(f iiif.Format) *plan.Plan {
		return mkPlan(image.Rect(0, 0, 500, 500), 16000, 16000, 0, false, "", f)
	}

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Render(ctx, engine.Input{Path: path, Level: full}, big(iiif.FormatJPG), engine.EncodeOptions{}, io.Discard)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Render = %v, want context.Canceled", err)
		}
	})

	// Streaming encoders: cancel when the first bytes arrive.
	for _, f := range []iiif.Format{iiif.FormatJPG, iiif.FormatPNG} {
		t.Run("mid-encode "+string(f), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &cancellingWriter{cancel: cancel}
			err := Render(ctx, engine.Input{Path: path, Level: full}, big(f), engine.EncodeOptions{}, w)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Render = %v, want context.Canceled", detail(err))
			}
			if w.n.Load() == 0 {
				t.Fatal("the writer never received bytes")
			}
			// Stopped, not finished: the whole output is many megabytes
			// (256 megapixels; even at 0.1 bit per pixel 3 MB), the
			// bytes written before the cancel took effect a few strips.
			if n := w.n.Load(); n > 1<<20 {
				t.Errorf("Render wrote %d bytes after the cancel", n)
			}
		})
	}

	// Encoders that work in memory (TIFF) and rotations that materialise
	// their input: a deadline while libvips computes.
	for _, c := range []struct {
		name string
		p    *plan.Plan
	}{
		{"tif", big(iiif.FormatTIF)},
		{"rotated", mkPlan(image.Rect(0, 0, 500, 500), 12000, 12000, 90, false, "", iiif.FormatJPG)},
	} {
		t.Run("deadline "+c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var w countingWriter
			err := Render(ctx, engine.Input{Path: path, Level: full}, c.p, engine.EncodeOptions{}, &w)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Render = %v, want context.DeadlineExceeded", detail(err))
			}
			// Stopped while libvips computed, not after: an output
			// finished late would have been written.
			if w.n > 0 {
				t.Errorf("Render wrote %d bytes before it reported the deadline", w.n)
			}
		})
	}
}

// TestConcurrentRenders runs renders of every kind at once (run it with
// -race) and checks each result.
func TestConcurrentRenders(t *testing.T) {
	path := patternPNG(t, 400, 300)
	jpg := writeFile(t, "p.jpg", encodeJPEG(t, pattern(800, 600)))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 4 {
				rot := float64((i + j) % 4 * 90)
				f := []iiif.Format{iiif.FormatPNG, iiif.FormatJPG, iiif.FormatWebP, iiif.FormatTIF}[(i+j)%4]
				p := mkPlan(image.Rect(0, 0, 400, 300), 200+i, 150+j, rot, i%2 == 0, "", f)
				var buf bytes.Buffer
				in := engine.Input{Path: path, Level: full}
				if j%2 == 1 {
					in = engine.Input{Path: jpg, Level: probe.Level{Shrink: 2, SubIFD: -1}}
				}
				if err := Render(context.Background(), in, p, engine.EncodeOptions{}, &buf); err != nil {
					t.Errorf("render %d/%d: %v", i, j, detail(err))
					return
				}
				if info, err := Header(writeFile(t, "out."+string(f), buf.Bytes())); err != nil ||
					info.Width != p.OutWidth || info.Height != p.OutHeight {
					t.Errorf("render %d/%d: Header = %+v, %v; want %dx%d", i, j, info, err, p.OutWidth, p.OutHeight)
				}
			}
		}()
	}
	wg.Wait()
}

// TestNoLeaks runs renders of every kind, failures and cancellations
// included, and checks that libvips' live objects and tracked memory come
// back to where they were.
func TestNoLeaks(t *testing.T) {
	path := patternPNG(t, 400, 300)
	trunc := writeFile(t, "t.jpg", encodeJPEG(t, noise(400, 300))[:20000])
	big := writeFile(t, "n.png", encodePNG(t, noise(100, 100)))
	work := func() {
		for i, f := range Formats() {
			p := mkPlan(image.Rect(10, 10, 390, 290), 190+i, 140, float64(i*45%360), i%2 == 1, "", f)
			if err := Render(context.Background(), engine.Input{Path: path, Level: full}, p, engine.EncodeOptions{}, io.Discard); err != nil {
				t.Fatal(detail(err))
			}
		}
		p := mkPlan(image.Rect(0, 0, 400, 300), 200, 150, 0, false, iiif.QualityBitonal, iiif.FormatPNG)
		if err := Render(context.Background(), engine.Input{Path: trunc, Level: full}, p, engine.EncodeOptions{}, io.Discard); err == nil {
			t.Fatal("truncated JPEG rendered")
		}
		if err := Render(context.Background(), engine.Input{Path: path, Level: full}, p, engine.EncodeOptions{}, &failingWriter{limit: 100}); err == nil {
			t.Fatal("failing writer did not fail")
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &cancellingWriter{cancel: cancel}
		p = mkPlan(image.Rect(0, 0, 100, 100), 5000, 5000, 0, false, "", iiif.FormatJPG)
		if err := Render(ctx, engine.Input{Path: big, Level: full}, p, engine.EncodeOptions{}, w); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled render: %v", detail(err))
		}
		if _, err := Header(path); err != nil {
			t.Fatal(detail(err))
		}
	}
	work() // warm up: libvips creates some objects once (interpolators, types)
	// libvips' worker threads free their buffers a moment after a
	// computation ends: wait for the counts to settle.
	before := settleStats(Stats{})
	for range 3 {
		work()
	}
	after := settleStats(before)
	t.Logf("before %+v after %+v", before, after)
	if after.LiveObjects != before.LiveObjects {
		t.Errorf("live libvips objects: %d before, %d after", before.LiveObjects, after.LiveObjects)
	}
	if after.TrackedAllocs > before.TrackedAllocs || after.TrackedMem > before.TrackedMem {
		t.Errorf("tracked memory: %d allocations, %d bytes before; %d, %d after",
			before.TrackedAllocs, before.TrackedMem, after.TrackedAllocs, after.TrackedMem)
	}
	if after.TrackedFiles != before.TrackedFiles {
		t.Errorf("open files: %d before, %d after", before.TrackedFiles, after.TrackedFiles)
	}

	// The counter does count: images are alive while the writer runs.
	var live int
	w := writerFunc(func(p []byte) (int, error) {
		live = max(live, ReadStats().LiveObjects)
		return len(p), nil
	})
	p := mkPlan(image.Rect(0, 0, 400, 300), 200, 150, 0, false, "", iiif.FormatPNG)
	if err := Render(context.Background(), engine.Input{Path: path, Level: full}, p, engine.EncodeOptions{}, w); err != nil {
		t.Fatal(detail(err))
	}
	if live <= before.LiveObjects {
		t.Errorf("LiveObjects during a render = %d, want more than %d", live, before.LiveObjects)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
