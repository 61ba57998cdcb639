package service_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/cache/memory"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/limit"
	"github.com/iiifd/iiifd/internal/output"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/source/fs"
)

// TestResultHoldsNoWorker: a rendered Result not read yet holds neither
// a worker slot nor the render's memory; it is already in the cache (an
// identical request is a hit while the first client has read nothing);
// its body is complete (Size known, every byte there), and Close gives
// its memory or its file back.
func TestResultHoldsNoWorker(t *testing.T) {
	root, spill := t.TempDir(), t.TempDir()
	var buf bytes.Buffer
	png.Encode(&buf, chart(600, 400))
	os.WriteFile(filepath.Join(root, "chart.png"), buf.Bytes(), 0o644)
	noise := image.NewGray(image.Rect(0, 0, 400, 400))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Pix {
		noise.Pix[i] = byte(rng.Uint32())
	}
	buf.Reset()
	png.Encode(&buf, noise)
	os.WriteFile(filepath.Join(root, "noise.png"), buf.Bytes(), 0o644)
	src, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := pixels.Startup(pixels.Config{}); err != nil {
		t.Fatal(err)
	}
	adm, err := limit.New(limit.Config{Workers: 1, Memory: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := memory.New(memory.Config{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Config{
		Limits: app.Limits(config.Default()), TileSize: 512, Admit: adm, Cache: c,
		// The noise (160 KB as PNG) goes to a file, the chart's
		// thumbnail stays in memory.
		Output: output.Config{Threshold: 64 << 10, Dir: spill},
	}, src, pixels.NewEngine(engine.EncodeOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	render := func(id string) *service.Result {
		t.Helper()
		req, err := iiif.ParseImage(iiif.V3, "full", "max", "0", "default.png")
		if err != nil {
			t.Fatal(err)
		}
		job, err := svc.Image(context.Background(), id, req)
		if err != nil {
			t.Fatal(err)
		}
		defer job.Close()
		res, err := job.Render(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for _, tc := range []struct {
		id      string
		spilled bool
	}{{"noise.png", true}, {"chart.png", false}} {
		res := render(tc.id)
		st := adm.Stats()
		if st.Running != 0 || st.Memory != 0 {
			t.Errorf("%s: a result not read yet holds %+v", tc.id, st)
		}
		if files, _ := output.OpenFiles(spill); (files == 1) != tc.spilled {
			t.Errorf("%s: %d spilled files open, want spilled %v", tc.id, files, tc.spilled)
		}
		if tc.spilled != (st.Output == 0) {
			t.Errorf("%s: %d bytes of output in memory, want spilled %v", tc.id, st.Output, tc.spilled)
		}
		again := render(tc.id)
		if res.CacheStatus != "MISS" || again.CacheStatus != "HIT memory" || again.Size != res.Size {
			t.Errorf("%s: %s %d bytes, then %s %d bytes; want a miss, then a hit of the same size", tc.id, res.CacheStatus, res.Size, again.CacheStatus, again.Size)
		}
		if _, ok := again.Held(); !ok {
			t.Errorf("%s: a memory hit without its handle", tc.id)
		}
		first, _ := io.ReadAll(res.Body())
		second, _ := io.ReadAll(again.Body())
		if int64(len(first)) != res.Size || !bytes.Equal(first, second) {
			t.Errorf("%s: bodies of %d and %d bytes, Size %d", tc.id, len(first), len(second), res.Size)
		}
		res.Close()
		again.Close()
		res.Close()
		if files, _ := output.OpenFiles(spill); files != 0 || adm.Stats() != (limit.Stats{}) {
			t.Errorf("%s: after Close, %d files open, admission state %+v", tc.id, files, adm.Stats())
		}
	}
}
