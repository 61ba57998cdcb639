package pixels

import (
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// The benchmark source: a 10000x8000 pyramidal TIFF, JPEG-compressed in
// 512x512 tiles, made once per run by the vips command from a smooth,
// noisy picture (so that JPEG has real work to do).
const benchW, benchH = 10000, 8000

var (
	benchOnce sync.Once
	benchDir  string
	benchPath string
	benchErr  error
)

func benchPyramid(b *testing.B) string {
	b.Helper()
	needVips(b)
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "pixels-bench-")
		if benchErr != nil {
			return
		}
		src := image.NewNRGBA(image.Rect(0, 0, benchW/4, benchH/4))
		rng := rand.New(rand.NewPCG(3, 4))
		for y := range benchH / 4 {
			for x := range benchW / 4 {
				fx, fy := float64(x), float64(y)
				v := func(a, b, c float64) uint8 {
					s := 128 + 60*math.Sin(fx/a+fy/b) + 40*math.Cos(fy/c) + float64(rng.IntN(41)-20)
					return uint8(max(0, min(255, s)))
				}
				i := src.PixOffset(x, y)
				src.Pix[i], src.Pix[i+1], src.Pix[i+2], src.Pix[i+3] = v(37, 91, 53), v(71, 29, 113), v(19, 67, 41), 255
			}
		}
		png := filepath.Join(benchDir, "src.png")
		if benchErr = os.WriteFile(png, encodePNG(b, src), 0o644); benchErr != nil {
			return
		}
		benchPath = filepath.Join(benchDir, "pyramid.tif")
		vipsCmd(b, "resize", png,
			benchPath+"[tile,pyramid,compression=jpeg,Q=85,tile-width=512,tile-height=512]", "4")
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchPath
}

func benchRender(b *testing.B, in engine.Input, p *plan.Plan) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for b.Loop() {
		if err := Render(context.Background(), in, p, engine.EncodeOptions{}, io.Discard); err != nil {
			b.Fatal(detail(err))
		}
	}
	// CPU time of the whole process (libvips' threads included) per
	// render: steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTile renders a 512x512 tile, aligned with the stored tiles, at
// full resolution, as JPEG.
func BenchmarkTile(b *testing.B) {
	path := benchPyramid(b)
	r := image.Rect(2048, 2048, 2560, 2560)
	p := &plan.Plan{
		Region: r, LevelRegion: r,
		Width: 512, Height: 512, OutWidth: 512, OutHeight: 512,
		Quality: iiif.QualityDefault, Format: iiif.FormatJPG,
	}
	benchRender(b, engine.Input{Path: path, Level: probe.Level{Width: benchW, Height: benchH, SubIFD: -1}}, p)
}

// BenchmarkThumbnail renders the whole image at 1024 pixels on the long
// side (!1024,1024) as JPEG, from the smallest level at least that big:
// page 3, 1250x1000.
func BenchmarkThumbnail(b *testing.B) {
	path := benchPyramid(b)
	p := &plan.Plan{
		Region:      image.Rect(0, 0, benchW, benchH),
		Level:       3,
		LevelRegion: image.Rect(0, 0, benchW/8, benchH/8),
		Width:       1024, Height: 819, OutWidth: 1024, OutHeight: 819,
		Quality: iiif.QualityDefault, Format: iiif.FormatJPG,
	}
	benchRender(b, engine.Input{Path: path, Level: probe.Level{Width: benchW / 8, Height: benchH / 8, Page: 3, SubIFD: -1}}, p)
}

// BenchmarkTile256 renders a 256x256 region at full resolution, inside
// one stored tile, as JPEG: read by libvips from the file's path, and
// through the custom source from an *os.File as an io.ReaderAt.
func BenchmarkTile256(b *testing.B) {
	path := benchPyramid(b)
	r := image.Rect(2048+128, 2048+128, 2048+384, 2048+384)
	p := &plan.Plan{
		Region: r, LevelRegion: r,
		Width: 256, Height: 256, OutWidth: 256, OutHeight: 256,
		Quality: iiif.QualityDefault, Format: iiif.FormatJPG,
	}
	lv := probe.Level{Width: benchW, Height: benchH, SubIFD: -1}
	b.Run("path", func(b *testing.B) { benchRender(b, engine.Input{Path: path, Level: lv}, p) })
	b.Run("reader", func(b *testing.B) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			b.Fatal(err)
		}
		benchRender(b, engine.Input{Reader: f, Size: st.Size(), Level: lv}, p)
	})
}

// BenchmarkJ2KTile renders 512×512 tiles from a 20000×20000 picture stored
// as High-Throughput JPEG 2000 (decoded by OpenJPH) and as classic JPEG
// 2000 (decoded by OpenJPEG through libvips), both tiled 1024×1024 with 5
// decomposition levels: a full-resolution tile in the middle of the
// image, and one at reduction 2. scripts/bench-htj2k makes the files and
// sets IIIFD_BENCH_HTJ2K and IIIFD_BENCH_J2K to them.
func BenchmarkJ2KTile(b *testing.B) {
	for _, kind := range []struct{ name, env string }{{"htj2k", "IIIFD_BENCH_HTJ2K"}, {"classic", "IIIFD_BENCH_J2K"}} {
		path := os.Getenv(kind.env)
		if path == "" {
			b.Skipf("%s is not set: run scripts/bench-htj2k", kind.env)
		}
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		st, _ := f.Stat()
		info, err := probe.Read(f, st.Size())
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range []int{0, 2} {
			lv := info.Levels[r]
			region := image.Rect(lv.Width/2, lv.Height/2, lv.Width/2+512, lv.Height/2+512)
			p := mkPlan(region, 512, 512, 0, false, "", iiif.FormatJPG)
			b.Run(fmt.Sprintf("%s/reduce=%d", kind.name, r), func(b *testing.B) {
				for b.Loop() {
					if err := Render(context.Background(), engine.Input{Path: path, Level: lv}, p, engine.EncodeOptions{}, io.Discard); err != nil {
						b.Fatal(detail(err))
					}
				}
			})
		}
	}
}

// BenchmarkPNGLarge writes a 3584×3584 crop of a photographic picture as
// PNG with the auto setting (level 1, sub filter at that size) and with
// libvips' default (level 6, no filter), reporting the file size.
func BenchmarkPNGLarge(b *testing.B) {
	path := os.Getenv("IIIFD_BENCH_PNG_SOURCE")
	if path == "" {
		b.Skip("IIIFD_BENCH_PNG_SOURCE is not set: run scripts/bench-vs-vips")
	}
	region := image.Rect(0, 0, 3584, 3584)
	p := mkPlan(region, 3584, 3584, 0, false, "", iiif.FormatPNG)
	for _, tc := range []struct {
		name  string
		level int
	}{{"auto", 0}, {"level6", 6}} {
		b.Run(tc.name, func(b *testing.B) {
			var n countWriter
			for b.Loop() {
				n = 0
				if err := Render(context.Background(), engine.Input{Path: path, Level: full}, p,
					engine.EncodeOptions{PNGCompression: tc.level}, &n); err != nil {
					b.Fatal(detail(err))
				}
			}
			b.ReportMetric(float64(n), "bytes")
		})
	}
}

// countWriter counts the bytes written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
