package pixels

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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

// readerSample is a source file and a level of it to render.
type readerSample struct {
	name  string
	path  string
	level probe.Level
	size  image.Point // of the level
}

// readerSamples writes the pattern in every source format this libvips
// reads, tiled and pyramidal TIFF and JPEG 2000 levels included.
func readerSamples(t *testing.T) []readerSample {
	t.Helper()
	needVips(t)
	const w, h = 800, 600
	dir := t.TempDir()
	src := filepath.Join(dir, "p.png")
	if err := os.WriteFile(src, encodePNG(t, pattern(w, h)), 0o644); err != nil {
		t.Fatal(err)
	}
	jpg := filepath.Join(dir, "p.jpg")
	if err := os.WriteFile(jpg, encodeJPEG(t, pattern(w, h)), 0o644); err != nil {
		t.Fatal(err)
	}
	strip := filepath.Join(dir, "strip.tif")
	pages := filepath.Join(dir, "pages.tif")
	subifds := filepath.Join(dir, "subifds.tif")
	jp2 := filepath.Join(dir, "p.jp2")
	vipsCmd(t, "tiffsave", src, strip, "--compression", "lzw")
	vipsCmd(t, "tiffsave", src, pages, "--tile", "--pyramid", "--tile-width", "128", "--tile-height", "128", "--compression", "jpeg")
	vipsCmd(t, "tiffsave", src, subifds, "--tile", "--pyramid", "--subifd", "--tile-width", "128", "--tile-height", "128", "--compression", "deflate")
	vipsCmd(t, "jp2ksave", src, jp2, "--tile-width", "256", "--tile-height", "256")

	lv := func(w, h, page, subifd, shrink int) probe.Level {
		return probe.Level{Width: w, Height: h, Page: page, SubIFD: subifd, Shrink: shrink}
	}
	samples := []readerSample{
		{"png", src, lv(w, h, 0, -1, 0), image.Pt(w, h)},
		{"jpeg", jpg, lv(w, h, 0, -1, 0), image.Pt(w, h)},
		{"jpeg shrink 2", jpg, lv(w/2, h/2, 0, -1, 2), image.Pt(w/2, h/2)},
		{"tiff strips", strip, lv(w, h, 0, -1, 0), image.Pt(w, h)},
		{"tiff page 0", pages, lv(w, h, 0, -1, 0), image.Pt(w, h)},
		{"tiff page 1", pages, lv(w/2, h/2, 1, -1, 0), image.Pt(w/2, h/2)},
		{"tiff sub-IFD 1", subifds, lv(w/4, h/4, 0, 1, 0), image.Pt(w/4, h/4)},
		{"jp2", jp2, lv(w, h, 0, -1, 0), image.Pt(w, h)},
		{"jp2 reduction 1", jp2, lv(w/2, h/2, 1, -1, 0), image.Pt(w/2, h/2)},
	}
	// The formats libvips writes here are read back as sources too.
	for _, f := range []iiif.Format{iiif.FormatWebP, iiif.FormatGIF, iiif.FormatAVIF, iiif.FormatHEIC} {
		if !slices.Contains(Formats(), f) {
			continue
		}
		out := renderBytes(t, src, full, mkPlan(image.Rect(0, 0, w, h), w/2, h/2, 0, false, "", f))
		path := filepath.Join(dir, "p."+string(f))
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, readerSample{string(f), path, lv(w/2, h/2, 0, -1, 0), image.Pt(w/2, h/2)})
	}
	return samples
}

// openReader opens path as a plain io.ReaderAt input: an *os.File with
// no path, so libvips reads it through the custom source.
func openReader(t testing.TB, path string, lv probe.Level) (engine.Input, *os.File) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return engine.Input{Reader: readerOnly{f}, Size: st.Size(), Level: lv}, f
}

// readerOnly hides every method of a reader but ReadAt.
type readerOnly struct{ r io.ReaderAt }

func (r readerOnly) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

func renderInput(ctx context.Context, in engine.Input, p *plan.Plan) ([]byte, error) {
	var buf bytes.Buffer
	err := Render(ctx, in, p, engine.EncodeOptions{}, &buf)
	return buf.Bytes(), err
}

// TestReaderMatchesPath renders every sample from a reader and from its
// path: the output bytes are the same (libvips decodes the same bytes
// with the same decoder), for a full view, a crop scaled down, and a
// rotated crop (sequential formats then hold the crop in memory).
func TestReaderMatchesPath(t *testing.T) {
	for _, s := range readerSamples(t) {
		t.Run(s.name, func(t *testing.T) {
			w, h := s.size.X, s.size.Y
			plans := []*plan.Plan{
				mkPlan(image.Rect(0, 0, w, h), w, h, 0, false, "", iiif.FormatPNG),
				mkPlan(image.Rect(w/3, h/4, w*3/4, h*4/5), 120, 90, 0, false, iiif.QualityGray, iiif.FormatJPG),
				mkPlan(image.Rect(w/8, h/8, w/2, h/2), 100, 75, 90, true, "", iiif.FormatPNG),
			}
			for i, p := range plans {
				want := renderBytes(t, s.path, s.level, p)
				in, _ := openReader(t, s.path, s.level)
				got, err := renderInput(context.Background(), in, p)
				if err != nil {
					t.Fatalf("plan %d: Render from a reader: %v", i, detail(err))
				}
				if !bytes.Equal(got, want) {
					t.Errorf("plan %d: %d bytes from the reader differ from %d bytes from the path", i, len(got), len(want))
				}
			}
			if s.level.Page == 0 && s.level.SubIFD < 0 && s.level.Shrink == 0 {
				want, err := Header(s.path)
				if err != nil {
					t.Fatal(detail(err))
				}
				in, _ := openReader(t, s.path, probe.Level{})
				got, err := HeaderOf(context.Background(), in)
				if err != nil {
					t.Fatal(detail(err))
				}
				if got.Format != want.Format || got.Width != want.Width || got.Height != want.Height ||
					got.Bands != want.Bands || !slices.Equal(got.Levels, want.Levels) {
					t.Errorf("HeaderOf(reader) = %+v, Header(path) = %+v", got, want)
				}
			}
		})
	}
}

// countingReader counts the bytes and calls read through it.
type countingReader struct {
	r            io.ReaderAt
	bytes, calls atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.bytes.Add(int64(n))
	c.calls.Add(1)
	return n, err
}

// The big tiled sources: 4096x4096 of noise, which does not compress, in
// 256x256 tiles, several MB each; made once per run by the vips command.
var (
	bigDir                 string
	bigOnce, bigJP2Once    sync.Once
	bigTIFPath, bigJP2Path string
	bigErr, bigJP2Err      error
)

func bigNoise(t *testing.T) string {
	t.Helper()
	needVips(t)
	bigOnce.Do(func() {
		if bigDir, bigErr = os.MkdirTemp("", "pixels-big-"); bigErr != nil {
			return
		}
		noise := filepath.Join(bigDir, "noise.v")
		bigTIFPath = filepath.Join(bigDir, "big.tif")
		for _, args := range [][]string{
			{"gaussnoise", noise, "4096", "4096", "--sigma", "40"},
			{"cast", noise, bigTIFPath + "[tile,tile-width=256,tile-height=256,compression=jpeg,Q=90]", "uchar"},
		} {
			if out, err := exec.Command("vips", args...).CombinedOutput(); err != nil {
				bigErr = fmt.Errorf("vips %v: %v\n%s", args, err, out)
				return
			}
		}
	})
	if bigErr != nil {
		t.Fatal(bigErr)
	}
	return filepath.Join(bigDir, "noise.v")
}

// bigTIFF returns the big tiled, JPEG-compressed TIFF.
func bigTIFF(t *testing.T) string {
	bigNoise(t)
	return bigTIFPath
}

// bigJP2 returns the big tiled JPEG 2000.
func bigJP2(t *testing.T) string {
	noise := bigNoise(t)
	bigJP2Once.Do(func() {
		bigJP2Path = filepath.Join(bigDir, "big.jp2")
		args := []string{"cast", noise, bigJP2Path + "[tile-width=256,tile-height=256]", "uchar"}
		if out, err := exec.Command("vips", args...).CombinedOutput(); err != nil {
			bigJP2Err = fmt.Errorf("vips %v: %v\n%s", args, err, out)
		}
	})
	if bigJP2Err != nil {
		t.Fatal(bigJP2Err)
	}
	return bigJP2Path
}

// TestReaderReadsOnlyTiles renders a 256x256 crop of big tiled files
// through a counting reader: only the header and the tiles under the crop
// are read, a small fraction of the file.
func TestReaderReadsOnlyTiles(t *testing.T) {
	tif, jp2 := bigTIFF(t), bigJP2(t)
	for _, c := range []struct {
		name string
		path string
		// maxShare is the largest fraction of the file the render may
		// read: one 256x256 tile is 1/256 of the image. OpenJPEG finds
		// a tile by walking the tile-part headers before it (the file
		// has no TLM index), refilling a 1 MiB buffer as it goes: it
		// reads about the whole file, as it does from a path.
		maxShare float64
	}{
		{"tiff", tif, 0.02},
		{"jp2", jp2, 1.2},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Open(c.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			cr := &countingReader{r: f}
			p := mkPlan(image.Rect(1024, 2048, 1280, 2304), 256, 256, 0, false, "", iiif.FormatJPG)
			if _, err := renderInput(context.Background(), engine.Input{Reader: cr, Size: st.Size(), Level: full}, p); err != nil {
				t.Fatal(detail(err))
			}
			share := float64(cr.bytes.Load()) / float64(st.Size())
			t.Logf("%s: read %d of %d bytes (%.2f%%) in %d calls", c.name, cr.bytes.Load(), st.Size(), 100*share, cr.calls.Load())
			if share > c.maxShare {
				t.Errorf("read %.2f%% of the file, want at most %.2f%%", 100*share, 100*c.maxShare)
			}
		})
	}
}

// faultyReader reads r but fails as told once a read reaches failAt.
type faultyReader struct {
	r      io.ReaderAt
	failAt int64
	mode   string // "error", "fault", "truncate", "short", "panic"
}

var errInjected = errors.New("injected read failure")

func (f *faultyReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) <= f.failAt {
		return f.r.ReadAt(p, off)
	}
	switch f.mode {
	case "fault":
		return 0, fault.New(fault.GatewayTimeout, "the store did not answer in time")
	case "deadline":
		return 0, context.DeadlineExceeded
	case "truncate":
		// The object ends early, at failAt.
		n, _ := f.r.ReadAt(p[:max(0, f.failAt-off)], off)
		return n, io.EOF
	case "short":
		// Bytes come a few hundred at a time, without an error, as
		// ReadAt should not do; libvips must still get them all.
		n := min(len(p), 500)
		return f.r.ReadAt(p[:n], off)
	case "panic":
		panic("reader exploded")
	}
	return 0, errInjected
}

// TestReaderFailures reads sources whose reads fail part-way: each render
// fails cleanly with the status of a bad (or slow) gateway, or the
// reader's own fault, and nothing is left behind.
func TestReaderFailures(t *testing.T) {
	tif := bigTIFF(t)
	jpg := writeFile(t, "n.jpg", encodeJPEG(t, noise(600, 400)))
	png := writeFile(t, "n.png", encodePNG(t, noise(600, 400)))
	type tcase struct {
		name   string
		path   string
		failAt int64 // negative: from the end
		mode   string
		status int // 0: the render succeeds
	}
	cases := []tcase{
		{"tiff header error", tif, 8, "error", http.StatusBadGateway},
		{"tiff tile error", tif, -1 << 20, "error", http.StatusBadGateway},
		{"tiff tile fault", tif, -1 << 20, "fault", http.StatusGatewayTimeout},
		{"tiff tile deadline", tif, -1 << 20, "deadline", http.StatusGatewayTimeout},
		{"tiff truncated", tif, -1 << 20, "truncate", http.StatusBadGateway},
		{"tiff panic", tif, -1 << 20, "panic", http.StatusBadGateway},
		{"tiff short reads", tif, 0, "short", 0},
		{"jpeg error", jpg, -4000, "error", http.StatusBadGateway},
		{"jpeg truncated", jpg, -4000, "truncate", http.StatusBadGateway},
		{"jpeg short reads", jpg, 0, "short", 0},
		{"png error", png, -4000, "error", http.StatusBadGateway},
		{"png short reads", png, 0, "short", 0},
		{"png panic at sniff", png, 0, "panic", http.StatusBadGateway},
	}
	run := func(t *testing.T, c tcase) {
		t.Helper()
		f, err := os.Open(c.path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		failAt := c.failAt
		if failAt < 0 {
			failAt += st.Size()
		}
		in := engine.Input{Reader: &faultyReader{r: f, failAt: failAt, mode: c.mode}, Size: st.Size(), Level: full}
		// A region across the whole image, so that the failing bytes
		// are needed.
		p := mkPlan(image.Rect(0, 0, 600, 400), 300, 200, 0, false, "", iiif.FormatJPG)
		if c.path == tif {
			p = mkPlan(image.Rect(0, 0, 4096, 4096), 256, 256, 0, false, "", iiif.FormatJPG)
		}
		_, err = renderInput(context.Background(), in, p)
		if c.status == 0 {
			if err != nil {
				t.Fatalf("Render = %v, want success", detail(err))
			}
			return
		}
		status, msg := fault.Status(err)
		if status != c.status {
			t.Fatalf("Render = %v (status %d), want status %d", detail(err), status, c.status)
		}
		if err == nil || msg == "" || bytes.Contains([]byte(msg), []byte(os.TempDir())) {
			t.Errorf("public message %q", msg)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { run(t, c) })
	}

	// Over and over, nothing leaks: goroutines, cgo handles (custom
	// sources), libvips objects.
	settle := func() (int, Stats) {
		var g int
		var s Stats
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			g, s = runtime.NumGoroutine(), ReadStats()
			if s.Sources == 0 {
				break
			}
		}
		return g, s
	}
	g0, s0 := settle()
	for range 5 {
		for _, c := range cases {
			run(t, c)
		}
	}
	g1, s1 := settle()
	t.Logf("goroutines %d → %d; stats %+v → %+v", g0, g1, s0, s1)
	if s1.Sources != 0 {
		t.Errorf("%d custom sources alive after the renders", s1.Sources)
	}
	if s1.LiveObjects > s0.LiveObjects {
		t.Errorf("live libvips objects: %d before, %d after", s0.LiveObjects, s1.LiveObjects)
	}
	if g1 > g0+2 {
		t.Errorf("goroutines: %d before, %d after", g0, g1)
	}
}

// stallingReader reads r after a delay, or never when delay is negative
// (until release is closed), ignoring every context as a careless
// backend would.
type stallingReader struct {
	r        io.ReaderAt
	delay    time.Duration
	release  chan struct{}
	calls    atomic.Int64
	inflight atomic.Int64 // reads begun and not yet returned
}

func (s *stallingReader) ReadAt(p []byte, off int64) (int, error) {
	s.calls.Add(1)
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if s.delay < 0 {
		<-s.release
	} else if s.delay > 0 {
		time.Sleep(s.delay)
	}
	return s.r.ReadAt(p, off)
}

// TestReaderCancel cancels renders whose reads are slow, or hang: each
// returns the context's error promptly, before its read does.
func TestReaderCancel(t *testing.T) {
	tif := bigTIFF(t)
	f, err := os.Open(tif)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	p := mkPlan(image.Rect(0, 0, 4096, 4096), 512, 512, 0, false, "", iiif.FormatJPG)
	// The reads a whole render makes: a render that ignored its deadline
	// would make them all.
	counted := &stallingReader{r: f}
	if _, err := renderInput(context.Background(), engine.Input{Reader: counted, Size: st.Size(), Level: full}, p); err != nil {
		t.Fatal(err)
	}
	whole := counted.calls.Load()
	release := make(chan struct{})
	defer close(release)
	for _, c := range []struct {
		name  string
		delay time.Duration
	}{
		{"slow", 100 * time.Millisecond},
		{"hanging", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			sr := &stallingReader{r: f, delay: c.delay, release: release}
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			defer cancel()
			_, err := renderInput(ctx, engine.Input{Reader: sr, Size: st.Size(), Level: full}, p)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Render = %v, want context.DeadlineExceeded", detail(err))
			}
			// Stopped, not finished late: fewer reads than a whole
			// render makes; and a hanging read (released only when the
			// test ends) has not returned, so the render did not wait
			// for it.
			if n := sr.calls.Load(); n >= whole {
				t.Errorf("Render made %d reads, as many as a whole render (%d)", n, whole)
			}
			if c.delay < 0 && sr.inflight.Load() == 0 {
				t.Error("Render returned after its hanging read")
			}
			t.Logf("%d reads of %d", sr.calls.Load(), whole)

			ctx, cancel = context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			before := sr.inflight.Load() // the render's hanging reads
			if _, err := HeaderOf(ctx, engine.Input{Reader: sr, Size: st.Size()}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("HeaderOf = %v, want context.DeadlineExceeded", detail(err))
			}
			if c.delay < 0 && sr.inflight.Load() <= before {
				t.Error("HeaderOf returned after its hanging read")
			}
		})
	}
}

// TestReaderConcurrent renders tiles of one file from many goroutines,
// each through its own input over one shared *os.File (run with -race).
func TestReaderConcurrent(t *testing.T) {
	tif := bigTIFF(t)
	f, err := os.Open(tif)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 4 {
				x, y := 256*(i+j), 256*((2*i+j)%14)
				p := mkPlan(image.Rect(x, y, x+512, y+512), 256, 256, 0, false, "", iiif.FormatPNG)
				want := renderBytes(t, tif, full, p)
				got, err := renderInput(context.Background(), engine.Input{Reader: f, Size: st.Size(), Level: full}, p)
				if err != nil {
					t.Errorf("render %d/%d: %v", i, j, detail(err))
					return
				}
				if !bytes.Equal(got, want) {
					t.Errorf("render %d/%d differs from the path's", i, j)
				}
			}
		}()
	}
	wg.Wait()
}

// TestReaderInputErrors checks inputs that name nothing to read.
func TestReaderInputErrors(t *testing.T) {
	p := mkPlan(image.Rect(0, 0, 10, 10), 10, 10, 0, false, "", iiif.FormatPNG)
	for _, c := range []struct {
		name string
		in   engine.Input
		want fault.Kind
	}{
		{"nothing", engine.Input{}, fault.Internal},
		{"empty", engine.Input{Reader: bytes.NewReader(nil), Size: 0}, fault.Internal},
		{"negative size", engine.Input{Reader: bytes.NewReader(nil), Size: -1}, fault.Internal},
		{"not an image", engine.Input{Reader: bytes.NewReader(make([]byte, 1000)), Size: 1000}, fault.Internal},
		{"svg", engine.Input{Reader: bytes.NewReader([]byte(svgDoc)), Size: int64(len(svgDoc))}, fault.Unsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderInput(context.Background(), c.in, p)
			if k, ok := kindOf(err); !ok || k != c.want {
				t.Errorf("Render = %v, want kind %v", detail(err), c.want)
			}
		})
	}
}

const svgDoc = `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>`

// holder holds the bytes below half its file in memory (as a Holder);
// held counts the reads ReadInMemory answered, rest those ReadAt served,
// whichever bytes they were of: a read of held bytes that went through
// ReadAt is not counted as held.
type holder struct {
	b          []byte
	held, rest atomic.Int64
}

func (h *holder) ReadInMemory(p []byte, off int64) bool {
	if off < 0 || off+int64(len(p)) > int64(len(h.b)/2) {
		return false
	}
	h.held.Add(1)
	copy(p, h.b[off:])
	return true
}

func (h *holder) ReadAt(p []byte, off int64) (int, error) {
	h.rest.Add(1)
	return bytes.NewReader(h.b).ReadAt(p, off)
}

// TestReaderHolder renders samples from a Holder: the held reads are
// served from it (on libvips' thread), the others as from any reader,
// and the output is the same as from the path.
func TestReaderHolder(t *testing.T) {
	for _, s := range readerSamples(t) {
		t.Run(s.name, func(t *testing.T) {
			w, h := s.size.X, s.size.Y
			p := mkPlan(image.Rect(w/3, h/4, w*3/4, h*4/5), 120, 90, 0, false, "", iiif.FormatPNG)
			want := renderBytes(t, s.path, s.level, p)
			b, err := os.ReadFile(s.path)
			if err != nil {
				t.Fatal(err)
			}
			hr := &holder{b: b}
			got, err := renderInput(context.Background(), engine.Input{Reader: hr, Size: int64(len(b)), Level: s.level}, p)
			if err != nil {
				t.Fatal(detail(err))
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%d bytes from the holder differ from %d bytes from the path", len(got), len(want))
			}
			if hr.held.Load() == 0 {
				t.Errorf("no read was served from the held bytes (%d others)", hr.rest.Load())
			}
		})
	}
}
