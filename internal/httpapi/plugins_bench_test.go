package httpapi_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/samples"
)

// BenchmarkCachedTilePlugins serves one re-encoded tile from the memory
// cache through the whole handler, one request at a time and from all
// CPUs: without plugins; with auth-token in Go, whose decision the host
// reuses (it declares ttl and vary); and with auth-token in
// AssemblyScript, which declares nothing, so every request calls the
// guest before the cache lookup.
func BenchmarkCachedTilePlugins(b *testing.B) {
	const path = "/iiif/3/mandelbrot/2048,1024,256,256/256,/!0/default.jpg"
	for _, name := range []string{"none", "auth-token", "assemblyscript/auth-token"} {
		root := b.TempDir()
		if err := samples.Extract(root); err != nil {
			b.Fatal(err)
		}
		cfg := config.Default()
		cfg.Root = root
		if name != "none" {
			withPlugins(b, []string{name})(&cfg)
			// A wall-clock limit: on a machine shared with other jobs a
			// call may wait for a CPU longer than the default 100 ms.
			cfg.PluginTimeout = time.Second
		}
		a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError})))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { a.Close() })
		h := a.Handler()
		serve := func(b *testing.B) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer letmein")
			h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
		b.Run(name, func(b *testing.B) {
			serve(b) // fill the cache
			b.ReportAllocs()
			b.ResetTimer()
			defer cpuPerOp(b)()
			for b.Loop() {
				serve(b)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			serve(b)
			b.ReportAllocs()
			b.ResetTimer()
			defer cpuPerOp(b)()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("GET", path, nil)
					req.Header.Set("Authorization", "Bearer letmein")
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Errorf("%d %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}

// cpuPerOp reports the process's CPU time (user and system) per
// operation from now until the returned function runs: on a shared
// machine, wall time says more about the neighbours than about the code.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

// cpuTime is the CPU time this process has used, in all its threads
// (libvips' worker threads included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
