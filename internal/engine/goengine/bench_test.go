package goengine_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/service"
)

// BenchmarkRender renders the request kinds of issue 16 from the virtual
// 40000x30000 pyramid with both engines, on the same tiles. Run with
// scripts/bench-goengine; figures in docs/BENCHMARKS.md.
func BenchmarkRender(b *testing.B) {
	engines := []struct {
		name string
		e    service.Engine
	}{
		{"native", pixels.NewEngine(engine.EncodeOptions{})},
		{"goengine", goengine.New(engine.EncodeOptions{})},
	}
	for _, c := range []struct{ name, url string }{
		// A 512x512 tile across four stored tiles (an aligned one is
		// sent as stored, never rendered).
		{"tile512", "1000,1000,512,512/max/0/default.jpg"},
		// A thumbnail from the 1250x938 level.
		{"thumb1024", "full/!1024,1024/0/default.jpg"},
		// 3584x3584 crops read 1:1 from level 1 (the planner's choice).
		{"crop3584jpg", "10000,10000,7168,7168/3584,3584/0/default.jpg"},
		{"crop3584png", "10000,10000,7168,7168/3584,3584/0/default.png"},
		// The worst cases of the limits: the largest outputs halved from
		// level 0 (a region just too big for level 1).
		{"half3584png", "0,0,7166,7166/3584,3584/0/default.png"},
		{"half4096jpg", "0,0,8190,8190/4096,4096/0/default.jpg"},
	} {
		p, m := bigRequest(b, c.url)
		for _, e := range engines {
			b.Run(c.name+"/"+e.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu0 := cpuTime()
				for i := 0; i < b.N; i++ {
					var n countWriter
					if err := e.e.RenderMosaic(context.Background(), m, p, &n); err != nil {
						b.Fatal(fault.Detail(err))
					}
					b.SetBytes(n.n)
				}
				// CPU time of the process (all threads, libvips' too)
				// per render: on a shared machine, wall time says more
				// about the neighbours than about the engines.
				b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The engine is what the request pipeline renders with.
var _ service.Engine = (*goengine.Engine)(nil)
