package goengine_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/samples"
)

// The parity tests render the same plans on the same stored tiles with
// the native libvips engine (package pixels, the reference) and with the
// pure-Go engine, and require what issue 16 asks of the edge: the same
// size, a mean absolute difference of at most 2 (of 255) and a PSNR of at
// least 35 dB.

func TestMain(m *testing.M) {
	if err := pixels.Startup(pixels.Config{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Parity thresholds from issue 16.
const (
	maxMAD  = 2.0
	minPSNR = 35.0
)

// sampleImage decodes an embedded sample image.
func sampleImage(t testing.TB, name string) image.Image {
	t.Helper()
	b, err := fs.ReadFile(samples.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// zonePlate is a grey circular zone plate: frequencies rising from the
// centre to the edges, where scalers show any aliasing.
func zonePlate(n int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, n, n))
	k := math.Pi / float64(n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			dx, dy := float64(x-n/2), float64(y-n/2)
			g.Pix[y*g.Stride+x] = uint8(127.5 + 127.5*math.Cos(k*(dx*dx+dy*dy)/2))
		}
	}
	return g
}

func encJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encPNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// cut cuts img into tw×th tiles, row by row, each encoded with enc; gray
// keeps grey tiles grey.
func cut(t testing.TB, img image.Image, tw, th int, gray bool, enc func(testing.TB, image.Image) []byte) engine.Mosaic {
	b := img.Bounds()
	m := engine.Mosaic{TileWidth: tw, TileHeight: th, Across: (b.Dx() + tw - 1) / tw}
	for y := 0; y < b.Dy(); y += th {
		for x := 0; x < b.Dx(); x += tw {
			r := image.Rect(x, y, min(x+tw, b.Dx()), min(y+th, b.Dy()))
			var tile draw.Image
			if gray {
				tile = image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
			} else {
				tile = image.NewNRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
			}
			draw.Draw(tile, tile.Bounds(), img, r.Min.Add(b.Min), draw.Src)
			m.Tiles = append(m.Tiles, engine.Tile{Data: enc(t, tile), Width: r.Dx(), Height: r.Dy()})
		}
	}
	return m
}

// makePlan plans a IIIF 3 request on a w×h image without levels.
func makePlan(t testing.TB, w, h int, region, size, rotation, qf string) *plan.Plan {
	t.Helper()
	req, err := iiif.ParseImage(iiif.V3, region, size, rotation, qf)
	if err != nil {
		t.Fatalf("%s/%s/%s/%s: %v", region, size, rotation, qf, err)
	}
	p, err := plan.Make(req, plan.Image{Width: w, Height: h}, plan.Limits{MaxWidth: 4000, MaxHeight: 4000})
	if err != nil {
		t.Fatalf("%s/%s/%s/%s: %v", region, size, rotation, qf, err)
	}
	return &p
}

// diff compares two images of one size as premultiplied 8-bit RGBA,
// every channel.
func diff(a, b image.Image) (mad, psnr float64) {
	pa, pb := toRGBA(a), toRGBA(b)
	var sum, sq float64
	for i := range pa.Pix {
		d := float64(pa.Pix[i]) - float64(pb.Pix[i])
		sum += math.Abs(d)
		sq += d * d
	}
	n := float64(len(pa.Pix))
	mad = sum / n
	if sq == 0 {
		return mad, math.Inf(1)
	}
	return mad, 10 * math.Log10(255*255/(sq/n))
}

// blur3 is img averaged over 3x3 pixels (edges clamped).
func blur3(img image.Image) image.Image {
	src := toRGBA(img)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	out := image.NewRGBA(src.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 4; c++ {
				s := 0
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						xx, yy := min(max(x+dx, 0), w-1), min(max(y+dy, 0), h-1)
						s += int(src.Pix[src.PixOffset(xx, yy)+c])
					}
				}
				out.Pix[out.PixOffset(x, y)+c] = uint8((s + 4) / 9)
			}
		}
	}
	return out
}

func toRGBA(img image.Image) *image.RGBA {
	r := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(r, r.Bounds(), img, img.Bounds().Min, draw.Src)
	return r
}

// chartImage is the test chart, which has alpha, with some alpha in
// every 256x256 tile: an opaque tile would be stored as RGB, and libvips
// joins only tiles of one band count.
func chartImage(t testing.TB) *image.NRGBA {
	chart := image.NewNRGBA(image.Rect(0, 0, 1200, 800))
	draw.Draw(chart, chart.Bounds(), sampleImage(t, "testchart.png"), image.Point{}, draw.Src)
	for y := 0; y < 800; y += 256 {
		for x := 0; x < 1200; x += 256 {
			chart.Pix[chart.PixOffset(x, y)+3] = 254
		}
	}
	return chart
}

type source struct {
	name string
	m    engine.Mosaic
	w, h int
}

func sources(t testing.TB) []source {
	if raceEnabled {
		// Only the chart's cases run (see raceEnabled).
		return []source{{}, {"chart-rgba-png-tiles", cut(t, chartImage(t), 256, 256, false, encPNG), 1200, 800}}
	}
	// A 1536x1024 part of the Julia set keeps the test short.
	julia := image.NewNRGBA(image.Rect(0, 0, 1536, 1024))
	draw.Draw(julia, julia.Bounds(), sampleImage(t, "julia.jpg"), image.Pt(432, 288), draw.Src)
	chart := chartImage(t)
	zp := zonePlate(768)
	grey := image.NewGray(julia.Bounds())
	draw.Draw(grey, grey.Bounds(), julia, image.Point{}, draw.Src)
	return []source{
		{"julia-jpeg-tiles", cut(t, julia, 256, 256, false, encJPEG), 1536, 1024},
		{"chart-rgba-png-tiles", cut(t, chart, 256, 256, false, encPNG), 1200, 800},
		{"zoneplate-grey-png-tiles", cut(t, zp, 256, 256, true, encPNG), 768, 768},
		{"julia-grey-jpeg-tiles", cut(t, grey, 512, 384, true, encJPEG), 1536, 1024},
	}
}

// parityCases are requests as region/size/rotation/quality.format.
var parityCases = []string{
	"full/max/0/default.png",
	"full/max/0/default.jpg",
	"0,0,512,512/max/0/default.png",
	"0,0,256,256/max/0/default.jpg",
	"100,150,700,500/max/0/default.png",
	"full/256,/0/default.png",
	"full/256,/0/default.jpg",
	"full/,300/0/color.png",
	"full/!1024,1024/0/default.jpg",
	"full/!1024,1024/0/default.png",
	"full/pct:33/0/default.png",
	"full/pct:10/0/default.jpg",
	"full/123,77/0/default.png",
	"full/1000,150/0/default.png",
	"pct:10,10,50,50/max/0/default.png",
	"pct:10,10,50,50/333,/0/default.jpg",
	"300,200,256,256/^700,/0/default.png",
	"300,200,256,256/^700,/0/default.jpg",
	"10,10,300,100/^1200,150/0/default.png",
	"full/400,/90/default.png",
	"full/400,/180/default.jpg",
	"full/400,/270/default.png",
	"full/400,/!0/default.png",
	"full/400,/!90/default.jpg",
	"full/400,/45/default.jpg",
	"full/400,/45/default.png",
	"full/300,/22.5/default.png",
	"full/300,/315/default.jpg",
	"full/300,/!10/default.png",
	"full/400,/0/gray.png",
	"full/400,/0/gray.jpg",
	"full/400,/0/bitonal.png",
	"full/400,/0/bitonal.jpg",
	"full/400,/30/gray.png",
	"full/400,/0/color.jpg",
	"full/300,/0/default.gif",
	"full/300,/0/gray.gif",
	"full/300,/0/bitonal.gif",
	"full/300,/90/default.gif",
}

func TestParity(t *testing.T) {
	ctx := context.Background()
	native := pixels.NewEngine(engine.EncodeOptions{})
	pure := goengine.New(engine.EncodeOptions{})
	for si, src := range sources(t) {
		for ci, c := range parityCases {
			// The colour sources take every case; the grey ones, which
			// share the code paths but for colour, a third of them and
			// every grey and bitonal case (to keep the test short).
			if si >= 2 && ci%3 != 0 && !strings.Contains(c, "gray") && !strings.Contains(c, "bitonal") {
				continue
			}
			if raceEnabled && (si != 1 || ci%8 != 0) {
				continue
			}
			parts := strings.Split(c, "/")
			p := makePlan(t, src.w, src.h, parts[0], parts[1], parts[2], parts[3])
			t.Run(src.name+"/"+c, func(t *testing.T) {
				var want, got bytes.Buffer
				if err := native.RenderMosaic(ctx, src.m, p, &want); err != nil {
					t.Fatalf("native: %v", fault.Detail(err))
				}
				if err := pure.RenderMosaic(ctx, src.m, p, &got); err != nil {
					t.Fatalf("goengine: %v", fault.Detail(err))
				}
				// Both engines dither colour GIFs to an adaptive
				// palette, each its own way: the noise is meant to be
				// averaged by the eye, and so it is here, over 3x3.
				dithered := p.Format == iiif.FormatGIF && p.Quality != iiif.QualityGray &&
					p.Quality != iiif.QualityBitonal && !strings.Contains(src.name, "grey")
				compare(t, &want, &got, dithered)
			})
		}
	}
}

// TestParityFlat renders flat JPEG and PNG sources read through
// Input.Reader with both engines, JPEG reduced levels (libjpeg's
// shrink-on-load, a box filter here) included.
func TestParityFlat(t *testing.T) {
	ctx := context.Background()
	native := pixels.NewEngine(engine.EncodeOptions{})
	pure := goengine.New(engine.EncodeOptions{})
	julia := sampleBytes(t, "julia.jpg")
	chart := sampleBytes(t, "testchart.png")
	jpegLevels := plan.Image{Width: 2400, Height: 1600, Levels: []plan.Level{
		{Width: 2400, Height: 1600}, {Width: 1200, Height: 800}, {Width: 600, Height: 400}, {Width: 300, Height: 200},
	}}
	for _, c := range []struct {
		name string
		data []byte
		img  plan.Image
		url  string
	}{
		{"jpeg", julia, plan.Image{Width: 2400, Height: 1600}, "full/600,/0/default.png"},
		{"jpeg", julia, plan.Image{Width: 2400, Height: 1600}, "500,400,300,200/max/0/default.jpg"},
		{"jpeg", julia, plan.Image{Width: 2400, Height: 1600}, "full/500,/30/gray.png"},
		{"jpeg shrink 2", julia, jpegLevels, "full/1000,/0/default.png"},
		{"jpeg shrink 4", julia, jpegLevels, "0,0,1200,800/280,/0/default.jpg"},
		{"png alpha", chart, plan.Image{Width: 1200, Height: 800}, "full/400,/0/default.png"},
		{"png alpha", chart, plan.Image{Width: 1200, Height: 800}, "100,100,500,300/max/45/default.png"},
		{"png alpha", chart, plan.Image{Width: 1200, Height: 800}, "full/400,/0/default.jpg"},
	} {
		if raceEnabled && c.name != "jpeg shrink 4" {
			continue
		}
		t.Run(c.name+"/"+c.url, func(t *testing.T) {
			parts := strings.Split(c.url, "/")
			req, err := iiif.ParseImage(iiif.V3, parts[0], parts[1], parts[2], parts[3])
			if err != nil {
				t.Fatal(err)
			}
			p, err := plan.Make(req, c.img, plan.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			in := engine.Input{Reader: bytes.NewReader(c.data), Size: int64(len(c.data)), Level: probe.Level{SubIFD: -1}}
			if p.Level > 0 {
				in.Level.Shrink = 1 << p.Level
			}
			var want, got bytes.Buffer
			if err := native.Render(ctx, in, &p, &want); err != nil {
				t.Fatalf("native: %v", fault.Detail(err))
			}
			if err := pure.Render(ctx, in, &p, &got); err != nil {
				t.Fatalf("goengine: %v", fault.Detail(err))
			}
			compare(t, &want, &got, false)
		})
	}
}

// compare decodes both outputs and requires parity.
func compare(t *testing.T, want, got *bytes.Buffer, dithered bool) {
	t.Helper()
	wi, _, err := image.Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	gi, _, err := image.Decode(got)
	if err != nil {
		t.Fatalf("decoding goengine's output: %v", err)
	}
	if wi.Bounds().Size() != gi.Bounds().Size() {
		t.Fatalf("size %v, native %v", gi.Bounds().Size(), wi.Bounds().Size())
	}
	if dithered {
		wi, gi = blur3(wi), blur3(gi)
	}
	mad, psnr := diff(wi, gi)
	t.Logf("MAD %.3f PSNR %.1f dB", mad, psnr)
	if mad > maxMAD || psnr < minPSNR {
		t.Errorf("MAD %.3f (max %g), PSNR %.1f dB (min %g)", mad, maxMAD, psnr, minPSNR)
	}
}
