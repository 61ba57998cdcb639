package pixels

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// warnings collects what libvips warns about, for TestWarnings.
var warnings struct {
	sync.Mutex
	list []string
}

func TestMain(m *testing.M) {
	warn := func(msg string) {
		warnings.Lock()
		warnings.list = append(warnings.list, msg)
		warnings.Unlock()
	}
	if err := Startup(Config{LeakCheck: true, Warn: warn}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	for _, dir := range []string{benchDir, bigDir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// The test pattern: four coloured quadrants, a grid of darker lines every
// gridStep pixels, and a black square near the top-left corner that tells
// every rotation and mirroring apart.
var (
	red    = color.NRGBA{220, 40, 40, 255}
	green  = color.NRGBA{40, 200, 60, 255}
	blue   = color.NRGBA{40, 60, 220, 255}
	yellow = color.NRGBA{230, 220, 40, 255}
	black  = color.NRGBA{0, 0, 0, 255}
)

const gridStep = 50

// quadrant returns the colour of the quadrant (x, y) lies in, in an image of
// w x h.
func quadrant(x, y, w, h int) color.NRGBA {
	switch {
	case x < w/2 && y < h/2:
		return red
	case y < h/2:
		return green
	case x < w/2:
		return blue
	}
	return yellow
}

// markerRect is where the black square of a w x h pattern is.
func markerRect(w, h int) image.Rectangle {
	s := max(4, min(w, h)/16)
	return image.Rect(w/10, h/10, w/10+s, h/10+s)
}

func pattern(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := quadrant(x, y, w, h)
			if x%gridStep == 0 || y%gridStep == 0 {
				c = color.NRGBA{uint8(int(c.R) * 6 / 10), uint8(int(c.G) * 6 / 10), uint8(int(c.B) * 6 / 10), 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	draw.Draw(img, markerRect(w, h), image.NewUniform(black), image.Point{}, draw.Src)
	return img
}

func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// patternPNG writes the pattern as a PNG and returns its path.
func patternPNG(t testing.TB, w, h int) string {
	return writeFile(t, "pattern.png", encodePNG(t, pattern(w, h)))
}

// needVips skips the test when the vips command-line tool is missing.
func needVips(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("vips"); err != nil {
		t.Skip("the vips command is not installed")
	}
}

// vipsCmd runs the vips command-line tool.
func vipsCmd(t testing.TB, args ...string) {
	t.Helper()
	needVips(t)
	out, err := exec.Command("vips", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("vips %v: %v\n%s", args, err, out)
	}
}

// full is the level of a flat file.
var full = probe.Level{SubIFD: -1}

// mkPlan builds a plan by hand, computing the output size as the planner
// does.
func mkPlan(region image.Rectangle, w, h int, rot float64, mirror bool, q iiif.Quality, f iiif.Format) *plan.Plan {
	ow, oh := w, h
	switch rot {
	case 0, 180:
	case 90, 270:
		ow, oh = h, w
	default:
		s, c := math.Sincos(rot * math.Pi / 180)
		fw, fh := float64(w), float64(h)
		ow = int(math.Round(math.Abs(fw*c) + math.Abs(fh*s)))
		oh = int(math.Round(math.Abs(fw*s) + math.Abs(fh*c)))
	}
	if q == "" {
		q = iiif.QualityDefault
	}
	return &plan.Plan{
		Region:      region,
		LevelRegion: region,
		Width:       w, Height: h,
		OutWidth: ow, OutHeight: oh,
		Rotation: rot, Mirror: mirror,
		Quality: q, Format: f,
	}
}

// renderBytes runs Render and returns the encoded bytes.
func renderBytes(t testing.TB, path string, lv probe.Level, p *plan.Plan) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(context.Background(), engine.Input{Path: path, Level: lv}, p, engine.EncodeOptions{}, &buf); err != nil {
		t.Fatalf("Render(%s, %+v): %v", filepath.Base(path), p, detail(err))
	}
	return buf.Bytes()
}

// detail returns an error's text with its cause, for test logs.
func detail(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Detail()
	}
	return fmt.Sprint(err)
}

// decode decodes an encoded image: with Go's decoders where there are
// some, else with libvips, in process, by rendering the file unchanged to
// PNG (a path TestCropExact checks to be lossless).
func decode(t testing.TB, f iiif.Format, data []byte) image.Image {
	t.Helper()
	switch f {
	case iiif.FormatJPG, iiif.FormatPNG, iiif.FormatGIF:
		img, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("decoding %s: %v", f, err)
		}
		return img
	}
	path := writeFile(t, "in."+string(f), data)
	info, err := Header(path)
	if err != nil {
		t.Fatalf("decoding %s: %v", f, detail(err))
	}
	r := image.Rect(0, 0, info.Width, info.Height)
	out := renderBytes(t, path, full, mkPlan(r, r.Dx(), r.Dy(), 0, false, "", iiif.FormatPNG))
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("decoding %s via png: %v", f, err)
	}
	return img
}

// nrgba returns the pixel at (x, y) from img's top-left corner, with fast
// paths for what the decoders return (tests run under -race too).
func nrgba(img image.Image, x, y int) color.NRGBA {
	b := img.Bounds()
	x, y = b.Min.X+x, b.Min.Y+y
	switch m := img.(type) {
	case *image.NRGBA:
		return m.NRGBAAt(x, y)
	case *image.RGBA:
		if c := m.RGBAAt(x, y); c.A == 255 {
			return color.NRGBA{c.R, c.G, c.B, 255}
		}
	case *image.Gray:
		v := m.GrayAt(x, y).Y
		return color.NRGBA{v, v, v, 255}
	}
	return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
}

// meanColour is the mean colour of r in img.
func meanColour(img image.Image, r image.Rectangle) [4]float64 {
	var sum [4]float64
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := nrgba(img, x, y)
			sum[0] += float64(c.R)
			sum[1] += float64(c.G)
			sum[2] += float64(c.B)
			sum[3] += float64(c.A)
			n++
		}
	}
	for i := range sum {
		sum[i] /= float64(n)
	}
	return sum
}

// near reports whether colour m is within tol of c in every channel.
func near(m [4]float64, c color.NRGBA, tol float64) bool {
	return math.Abs(m[0]-float64(c.R)) <= tol && math.Abs(m[1]-float64(c.G)) <= tol &&
		math.Abs(m[2]-float64(c.B)) <= tol && math.Abs(m[3]-float64(c.A)) <= tol
}

// meanAbsDiff is the mean absolute difference per channel (RGBA) of a and
// b, which must have the same size.
func meanAbsDiff(t testing.TB, a, b image.Image) float64 {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes differ: %v and %v", a.Bounds().Size(), b.Bounds().Size())
	}
	sz := a.Bounds().Size()
	var sum float64
	for y := range sz.Y {
		for x := range sz.X {
			ca, cb := nrgba(a, x, y), nrgba(b, x, y)
			sum += math.Abs(float64(ca.R)-float64(cb.R)) + math.Abs(float64(ca.G)-float64(cb.G)) +
				math.Abs(float64(ca.B)-float64(cb.B)) + math.Abs(float64(ca.A)-float64(cb.A))
		}
	}
	return sum / float64(4*sz.X*sz.Y)
}

// checkQuadrants checks that the centres of the four quadrants of img have
// the colours tl, tr, bl, br.
func checkQuadrants(t testing.TB, img image.Image, tl, tr, bl, br color.NRGBA, tol float64) {
	t.Helper()
	sz := img.Bounds().Size()
	w, h := sz.X, sz.Y
	d := max(1, min(w, h)/60)
	// Sample at 30% and 70% of the way across, away from the marker (near
	// the top-left corner), the centre lines and the grid.
	for _, q := range []struct {
		name   string
		fx, fy float64
		want   color.NRGBA
	}{
		{"top-left", 0.3, 0.3, tl},
		{"top-right", 0.7, 0.3, tr},
		{"bottom-left", 0.3, 0.7, bl},
		{"bottom-right", 0.7, 0.7, br},
	} {
		x, y := int(q.fx*float64(w)), int(q.fy*float64(h))
		m := meanColour(img, image.Rect(x-d, y-d, x+d+1, y+d+1))
		if !near(m, q.want, tol) {
			t.Errorf("%s quadrant at (%d,%d) is %.0f, want %v", q.name, x, y, m, q.want)
		}
	}
}

// darkCentroid returns the centre of the dark (marker) pixels of img, as
// fractions of its width and height.
func darkCentroid(t testing.TB, img image.Image) (fx, fy float64) {
	t.Helper()
	sz := img.Bounds().Size()
	var sx, sy, n float64
	for y := range sz.Y {
		for x := range sz.X {
			c := nrgba(img, x, y)
			if c.A > 128 && int(c.R)+int(c.G)+int(c.B) < 60 {
				sx += float64(x)
				sy += float64(y)
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no marker found")
	}
	return sx / n / float64(sz.X), sy / n / float64(sz.Y)
}

func size(img image.Image) image.Point { return img.Bounds().Size() }

// settleStats waits (up to 3 s) for libvips' counters to stop moving and
// to come down to target: its worker threads free their buffers a moment
// after a computation ends.
func settleStats(target Stats) Stats {
	s := ReadStats()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		next := ReadStats()
		if next == s && next.TrackedMem <= target.TrackedMem && next.LiveObjects <= target.LiveObjects {
			break
		}
		s = next
	}
	return s
}
