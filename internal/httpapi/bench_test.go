package httpapi_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
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
	return benchApp(b, root)
}

func benchApp(b *testing.B, root string) *app.App {
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
	benchServe(b, benchHandler(b).Handler(), path)
}

func benchServe(b *testing.B, h http.Handler, path string) {
	b.ReportAllocs()
	req := httptest.NewRequest("GET", path, nil)
	w := &discardWriter{}
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.code, w.n = 0, 0
		h.ServeHTTP(w, req)
		if w.code != 200 {
			b.Fatalf("%s: %d", path, w.code)
		}
	}
	b.ReportMetric(float64(w.n), "resp-bytes")
}

// discardWriter is a ResponseWriter that keeps only the status and the
// length, so that benchmarks measure the server and not a recorder's
// buffers.
type discardWriter struct {
	h    http.Header
	code int
	n    int64
}

func (w *discardWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	w.n += int64(len(p))
	return len(p), nil
}

// BenchmarkTileRequest is one aligned 256×256 tile at full resolution from
// the pyramidal TIFF sample, as a viewer asks for it.
func BenchmarkTileRequest(b *testing.B) {
	benchRequest(b, "/iiif/3/mandelbrot/2048,1024,256,256/256,/0/default.jpg")
}

// BenchmarkTileRequestReencoded is the tile of BenchmarkTileRequest
// mirrored, which cannot pass through: decode, flip, encode.
func BenchmarkTileRequestReencoded(b *testing.B) {
	benchRequest(b, "/iiif/3/mandelbrot/2048,1024,256,256/256,/!0/default.jpg")
}

// BenchmarkTileDirPassthrough is an aligned 256×256 tile of a tile
// directory (dzsave of the pyramidal TIFF sample): the stored file as it is.
func BenchmarkTileDirPassthrough(b *testing.B) {
	benchServe(b, tileDirHandler(b), "/iiif/3/tiles/2048,1024,256,256/256,256/0/default.jpg")
}

// BenchmarkTileDirStitched is a 256×256 region of the same tile directory
// across four stored tiles: fetch, decode, join, crop, encode.
func BenchmarkTileDirStitched(b *testing.B) {
	benchServe(b, tileDirHandler(b), "/iiif/3/tiles/2176,1152,256,256/256,256/0/default.jpg")
}

func tileDirHandler(b *testing.B) http.Handler {
	root := b.TempDir()
	if err := samples.Extract(root); err != nil {
		b.Fatal(err)
	}
	run(b, "vips", "dzsave", filepath.Join(root, "mandelbrot.tif"), filepath.Join(root, "tiles"),
		"--layout", "iiif3", "--tile-size", "256", "--suffix", ".jpg[Q=85]")
	return benchApp(b, root).Handler()
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

// BenchmarkCacheHit is a derivative served from the memory cache, with an
// identifier given without its extension, as viewers send them.
func BenchmarkCacheHit(b *testing.B) {
	benchRequest(b, "/iiif/3/mandelbrot/1792,2304,256,256/256,256/0/gray.jpg")
}

// BenchmarkCacheHitSocket is BenchmarkCacheHit over a loopback keep-alive
// connection, one request after the other, as iiifd serves (net/http with
// the handler's memo). The client is a minimal one, so that the figures
// are mostly the server's and the kernel's.
func BenchmarkCacheHitSocket(b *testing.B) {
	const path = "/iiif/3/mandelbrot/1792,2304,256,256/256,256/0/gray.jpg"
	a := benchHandler(b)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 64<<10)
	hit := func() int {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		n, err := skipResponse(br)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	for range 3 { // a miss, a hit that is remembered, a remembered hit
		res, err := http.Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		n = hit()
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "resp-bytes")
}

// skipResponse reads one response with a Content-Length and returns the
// length of its body.
func skipResponse(br *bufio.Reader) (int, error) {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n < 0 {
		return 0, errors.New("no Content-Length")
	}
	_, err := br.Discard(n)
	return n, err
}
