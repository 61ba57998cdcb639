package plugin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/plugin/plugintest"
)

// BenchmarkHooks measures one call of each hook of the example plugins:
// encoding the request, the guest's work, decoding the reply; and an
// authorize whose decision the host reuses (decision-reused).
func BenchmarkHooks(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	req := &Request{ID: "photo", Version: 3, Kind: "image", Region: "0,0,512,512", Size: "512,", Rotation: "0",
		Quality: "default", Format: "jpg", Method: "GET", Client: "127.0.0.1:5000",
		Header: http.Header{
			"Authorization":   {"Bearer letmein"},
			"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
			"Accept":          {"image/avif,image/webp,*/*"},
			"Accept-Encoding": {"gzip, deflate, br"},
		}}
	doc := []byte(`{"@context":"http://iiif.io/api/image/3/context.json","id":"https://example.org/iiif/3/photo","type":"ImageService3","protocol":"http://iiif.io/api/image","profile":"level2","width":6144,"height":4608}`)
	benches := []struct {
		name, plugin string
		call         func(h *Host) error
	}{
		{"authorize/go", "auth-token", func(h *Host) error {
			_, err := h.plugins[0].Call(context.Background(), HookAuthorize, req.fields())
			return err
		}},
		{"authorize/assemblyscript", "assemblyscript/auth-token", func(h *Host) error {
			_, err := h.plugins[0].Call(context.Background(), HookAuthorize, req.fields())
			return err
		}},
		{"authorize/go/decision-reused", "auth-token", func(h *Host) error { _, err := h.Authorize(context.Background(), req); return err }},
		{"resolve/go", "hash-resolver", func(h *Host) error { _, err := h.Resolve(context.Background(), "photo"); return err }},
		{"info/go", "rights", func(h *Host) error { _, err := h.Info(context.Background(), "photo", 3, doc); return err }},
		{"overlay/go", "watermark", func(h *Host) error { _, err := h.Overlay(context.Background(), req, 512, 512); return err }},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			h := newHost(b, Options{Logger: log}, Spec{Path: plugintest.Build(b, bb.plugin)})
			if err := bb.call(h); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			defer cpuPerOp(b)()
			for b.Loop() {
				if err := bb.call(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("authorize/go/parallel", func(b *testing.B) {
		h := newHost(b, Options{Logger: log}, Spec{Path: plugintest.Build(b, "auth-token")})
		b.ReportAllocs()
		b.ResetTimer()
		defer cpuPerOp(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.plugins[0].Call(context.Background(), HookAuthorize, req.fields()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// cpuPerOp reports the process's CPU time (user and system) per
// operation from now until the returned function runs: on a shared
// machine, wall time says more about the neighbours than about the code.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() { b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPerRequest measures what the host itself costs per request, in
// allocations above all: the cache-key fingerprint of a hook (asked on
// every image request) and one guest call with a payload made beforehand
// (so only the host's encoding, call and decoding count).
func BenchmarkPerRequest(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := newHost(b, Options{Logger: log}, Spec{Path: plugintest.Build(b, "auth-token")}, Spec{Path: plugintest.Build(b, "watermark")})
	b.Run("fingerprint", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if h.Fingerprint(HookOverlay) == "" {
				b.Fatal("no fingerprint")
			}
		}
	})
	b.Run("call", func(b *testing.B) {
		req := &Request{ID: "photo", Version: 3, Kind: "image", Method: "GET", Header: http.Header{"Authorization": {"Bearer letmein"}}}
		payload := req.fields()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.plugins[0].Call(context.Background(), HookAuthorize, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
