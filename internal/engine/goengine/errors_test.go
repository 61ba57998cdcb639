package goengine_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/samples"
)

func smallMosaic(t testing.TB) engine.Mosaic {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	return cut(t, img, 32, 32, false, encPNG)
}

type failingReader struct{ err error }

func (f failingReader) ReadAt([]byte, int64) (int, error) { return 0, f.err }

type failingWriter struct{}

var errWrite = errors.New("client went away")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func sampleBytes(t testing.TB, name string) []byte {
	b, err := fs.ReadFile(samples.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestErrors checks that every failure is an error with the status and
// public message the native engine gives for it.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	e := goengine.New(engine.EncodeOptions{})
	m := smallMosaic(t)
	good := makePlan(t, 64, 48, "full", "max", "0", "default.png")
	with := func(f func(p *plan.Plan)) *plan.Plan { q := *good; f(&q); return &q }
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	badTile := m
	badTile.Tiles = append([]engine.Tile(nil), m.Tiles...)
	badTile.Tiles[1] = engine.Tile{Data: []byte("\x89PNG\r\n\x1a\nnot really"), Width: 32, Height: 32}
	wrongSize := m
	wrongSize.Tiles = append([]engine.Tile(nil), m.Tiles...)
	wrongSize.Tiles[0].Width, wrongSize.Tiles[1].Width = 31, 33
	overlay := m
	overlay.Overlay = &engine.Overlay{PNG: encPNG(t, image.NewGray(image.Rect(0, 0, 2, 2))), Opacity: 0.5}

	for _, c := range []struct {
		name   string
		m      engine.Mosaic
		p      *plan.Plan
		ctx    context.Context
		status int
		msg    string
	}{
		{"webp", m, with(func(p *plan.Plan) { p.Format = iiif.FormatWebP }), ctx, 501, "the webp format is not supported by this server"},
		{"tif", m, with(func(p *plan.Plan) { p.Format = iiif.FormatTIF }), ctx, 501, "the tif format is not supported by this server"},
		{"overlay", overlay, good, ctx, 501, "overlays are not supported by this server"},
		{"bad plan", m, with(func(p *plan.Plan) { p.Width = 0 }), ctx, 500, "the image could not be processed"},
		{"bad tile", badTile, good, ctx, 500, "the source image could not be decoded"},
		{"wrong tile size", wrongSize, good, ctx, 500, "the image could not be processed"},
		{"canceled", m, good, canceled, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.RenderMosaic(c.ctx, c.m, c.p, io.Discard)
			if c.status == 0 {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", err)
				}
				return
			}
			status, msg := fault.Status(err)
			if status != c.status || msg != c.msg {
				t.Errorf("got %d %q (%v), want %d %q", status, msg, fault.Detail(err), c.status, c.msg)
			}
		})
	}

	t.Run("writer", func(t *testing.T) {
		err := e.RenderMosaic(ctx, m, good, failingWriter{})
		if !errors.Is(err, errWrite) {
			t.Errorf("got %v, want the writer's error", err)
		}
	})

	// Flat sources through Render.
	jpg := sampleBytes(t, "julia.jpg")
	tif := sampleBytes(t, "mandelbrot.tif")
	jplan := makePlan(t, 2400, 1600, "full", "240,", "0", "default.jpg")
	for _, c := range []struct {
		name   string
		e      *goengine.Engine
		in     engine.Input
		status int
		msg    string
	}{
		{"tiff", e, engine.Input{Reader: bytes.NewReader(tif), Size: int64(len(tif))}, 501, "this server reads only JPEG, PNG, GIF and WebP images whole; other sources must be tiled pyramids"},
		{"tiff page", e, engine.Input{Reader: bytes.NewReader(tif), Size: int64(len(tif)), Level: probe.Level{Page: 2}}, 501, "this server reads pyramid levels only as stored tiles"},
		{"too big", goengine.New(engine.EncodeOptions{}, goengine.Limits{MaxSourcePixels: 1000}), engine.Input{Reader: bytes.NewReader(jpg), Size: int64(len(jpg))}, 501, "the source image has 3840000 pixels, more than the 1000 this server decodes whole; store it as a tiled pyramid"},
		{"truncated", e, engine.Input{Reader: bytes.NewReader(jpg[:5000]), Size: 5000}, 500, "the source image could not be decoded"},
		{"not an image", e, engine.Input{Reader: strings.NewReader("hello, world"), Size: 12}, 501, "this server reads only JPEG, PNG, GIF and WebP images whole; other sources must be tiled pyramids"},
		{"read fails", e, engine.Input{Reader: failingReader{errors.New("connection reset")}, Size: 100}, 502, "the source image could not be read"},
		{"read says 404", e, engine.Input{Reader: failingReader{fault.New(fault.NotFound, "gone")}, Size: 100}, 404, "gone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.e.Render(ctx, c.in, jplan, io.Discard)
			status, msg := fault.Status(err)
			if status != c.status || msg != c.msg {
				t.Errorf("got %d %q (%v), want %d %q", status, msg, fault.Detail(err), c.status, c.msg)
			}
		})
	}
}

// TestFormats checks that the engine lists what it writes, and writes
// each one.
func TestFormats(t *testing.T) {
	e := goengine.New(engine.EncodeOptions{})
	got := e.Formats()
	want := []iiif.Format{iiif.FormatJPG, iiif.FormatPNG, iiif.FormatGIF}
	if len(got) != len(want) {
		t.Fatalf("Formats() = %v, want %v", got, want)
	}
	m := smallMosaic(t)
	for i, f := range want {
		if got[i] != f {
			t.Fatalf("Formats() = %v, want %v", got, want)
		}
		var b bytes.Buffer
		if err := e.RenderMosaic(context.Background(), m, makePlan(t, 64, 48, "full", "max", "0", "default."+string(f)), &b); err != nil {
			t.Fatal(fault.Detail(err))
		}
		_, name, err := image.DecodeConfig(&b)
		if err != nil || name != map[iiif.Format]string{"jpg": "jpeg", "png": "png", "gif": "gif"}[f] {
			t.Errorf("%s: decoded as %q, %v", f, name, err)
		}
	}
}

// TestHeader reads sizes of flat images from their headers.
func TestHeader(t *testing.T) {
	e := goengine.New(engine.EncodeOptions{})
	b := encPNG(t, image.NewGray(image.Rect(0, 0, 7, 5)))
	info, err := e.Header(context.Background(), engine.Input{Reader: bytes.NewReader(b), Size: int64(len(b))})
	if err != nil || info.Width != 7 || info.Height != 5 || info.Format != probe.PNG || len(info.Levels) != 1 {
		t.Errorf("Header = %+v, %v", info, err)
	}
}
