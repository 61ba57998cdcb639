package goengine_test

import (
	"context"
	"io"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
	"github.com/iiifd/iiifd/internal/fault"
)

// peakHeap runs fn and returns the most heap memory in live and not yet
// collected objects seen while it ran, above what was in use before,
// sampled every half millisecond with the collector made eager (10%), as
// a worker tight on memory would run it: roughly the memory a render
// needs at its peak. It also returns the bytes fn allocated in all.
func peakHeap(t *testing.T, fn func() error) (peak, total uint64) {
	t.Helper()
	old := debug.SetGCPercent(10)
	defer debug.SetGCPercent(old)
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var max atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Microsecond)
		defer tick.Stop()
		for {
			if v := read(); v > max.Load() {
				max.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	err := fn()
	close(done)
	wg.Wait()
	runtime.ReadMemStats(&ms1)
	if err != nil {
		t.Fatal(fault.Detail(err))
	}
	if v := read(); v > max.Load() {
		max.Store(v)
	}
	m := max.Load()
	if m < base {
		m = base
	}
	return m - base, ms1.TotalAlloc - ms0.TotalAlloc
}

// TestMemory renders the request kinds of issue 16 from the 40000x30000
// pyramid and bounds the heap each needs at its peak. The bounds leave
// the rest of a 128 MB isolate to the host (its tiles, the runtime):
// JPEG holds its output as 4:2:0 YCbCr (24 MiB at 4096x4096), PNG
// streams, rotations hold the scaled image.
func TestMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 60 megapixels")
	}
	e := goengine.New(engine.EncodeOptions{})
	const MiB = 1 << 20
	for _, c := range []struct {
		url   string
		bound uint64
	}{
		{"0,0,512,512/max/0/default.jpg", 8 * MiB},
		{"full/!1024,1024/0/default.jpg", 16 * MiB},
		{"0,0,8190,8190/4096,4096/0/default.jpg", 56 * MiB},
		{"0,0,7166,7166/3584,3584/0/default.png", 40 * MiB},
		{"0,0,8190,8190/4096,4096/90/default.jpg", 96 * MiB},
		{"10000,10000,3584,3584/max/0/default.png", 32 * MiB},
	} {
		if raceEnabled && c.bound > 16*MiB {
			continue // the big ones take minutes under the race detector
		}
		t.Run(c.url, func(t *testing.T) {
			p, m := bigRequest(t, c.url)
			var n countWriter
			peak, total := peakHeap(t, func() error {
				return e.RenderMosaic(context.Background(), m, p, &n)
			})
			w, h := m.Size()
			t.Logf("mosaic %dx%d (%d tiles), region %v, output %dx%d, %d bytes: peak heap %.1f MiB, allocated %.1f MiB",
				w, h, len(m.Tiles), p.LevelRegion, p.OutWidth, p.OutHeight, n.n,
				float64(peak)/MiB, float64(total)/MiB)
			if peak > c.bound {
				t.Errorf("peak heap %.1f MiB, bound %.0f MiB", float64(peak)/MiB, float64(c.bound)/MiB)
			}
			if n.n == 0 {
				t.Error("nothing written")
			}
		})
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
