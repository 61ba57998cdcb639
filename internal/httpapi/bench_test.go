package httpapi_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/samples"
)

// benchHandler is the whole server (routing, resolving, probing, planning,
// libvips, encoding) over the embedded samples, called without a socket.
func benchHandler(b *testing.B) *app.App {
	b.Helper()
	root := b.TempDir()
	if err := samples.Extract(root); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Root = root
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a
}

func benchRequest(b *testing.B, path string) {
	h := benchHandler(b).Handler()
	b.ReportAllocs()
	b.ResetTimer()
	var bytes int64
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		bytes = int64(rec.Body.Len())
	}
	b.ReportMetric(float64(bytes), "resp-bytes")
}

// BenchmarkTileRequest is one aligned 256×256 tile at full resolution from
// the pyramidal TIFF sample, as a viewer asks for it.
func BenchmarkTileRequest(b *testing.B) {
	benchRequest(b, "/iiif/3/mandelbrot/2048,1024,256,256/256,/0/default.jpg")
}

// BenchmarkTileRequestScaled is a 256×256 tile at scale factor 4 (a 1024×1024
// region read from the ¼ level).
func BenchmarkTileRequestScaled(b *testing.B) {
	benchRequest(b, "/iiif/3/mandelbrot/2048,1024,1024,1024/256,/0/default.jpg")
}

// BenchmarkThumbnailRequest is a !1024,1024 thumbnail of the whole pyramid.
func BenchmarkThumbnailRequest(b *testing.B) {
	benchRequest(b, "/iiif/3/mandelbrot/full/!1024,1024/0/default.jpg")
}

// BenchmarkThumbnailJPEG is a !1024,1024 thumbnail of a flat 2400×1600
// JPEG (shrink-on-load).
func BenchmarkThumbnailJPEG(b *testing.B) {
	benchRequest(b, "/iiif/3/julia/full/!1024,1024/0/default.jpg")
}

// BenchmarkInfo is an info.json request (header cached after the first).
func BenchmarkInfo(b *testing.B) {
	benchRequest(b, "/iiif/3/mandelbrot/info.json")
}
