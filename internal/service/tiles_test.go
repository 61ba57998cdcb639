package service_test

import (
	"bytes"
	"context"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/app"
	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/pixels"
	"github.com/iiifd/iiifd/internal/service"
	"github.com/iiifd/iiifd/internal/source"
	"github.com/iiifd/iiifd/internal/source/fs"
)

// slowSource delays every tile read and records how many are in flight.
type slowSource struct {
	source.Source
	mu            sync.Mutex
	now, max, all int
}

func (s *slowSource) Open(ctx context.Context, key string) (*source.Object, error) {
	if strings.HasSuffix(key, "/default.jpg") {
		s.mu.Lock()
		s.now++
		s.all++
		s.max = max(s.max, s.now)
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		defer func() {
			s.mu.Lock()
			s.now--
			s.mu.Unlock()
		}()
	}
	return s.Source.Open(ctx, key)
}

// TestStitchFetchesConcurrently checks that the tiles of a stitched region
// are read through the source, several at once but at most 8.
func TestStitchFetchesConcurrently(t *testing.T) {
	root := t.TempDir()
	var buf bytes.Buffer
	png.Encode(&buf, chart(1600, 1200))
	master := filepath.Join(root, "master.png")
	os.WriteFile(master, buf.Bytes(), 0o644)
	vips(t, "dzsave", master, filepath.Join(root, "dz"), "--layout", "iiif3", "--tile-size", "256", "--suffix", ".jpg")
	if err := pixels.Startup(pixels.Config{}); err != nil {
		t.Fatal(err)
	}
	disk, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	src := &slowSource{Source: disk}
	svc, err := service.New(service.Config{Limits: app.Limits(config.Default()), TileSize: 512}, src, pixels.NewEngine(engine.EncodeOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := iiif.ParseImage(iiif.V3, "100,100,1400,1000", "max", "0", "default.png")
	img := render(t, svc, "dz", req)
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 1000 {
		t.Fatalf("size %v", b)
	}
	// Columns 0..5 and rows 0..4 of the full-resolution level.
	if src.all != 30 || src.max < 2 || src.max > 8 {
		t.Errorf("%d tiles read, at most %d at once; want 30, 2 to 8", src.all, src.max)
	}
	checkColours := []struct{ x, y, q int }{{100, 100, 0}, {1300, 100, 1}, {100, 900, 2}, {1300, 900, 3}}
	for _, c := range checkColours {
		if d := diff(rgba(img, c.x, c.y), quadrants[c.q]); d > 12 {
			t.Errorf("quadrant %d: off by %d", c.q, d)
		}
	}
}

func rgba(img interface {
	At(x, y int) color.Color
}, x, y int) color.RGBA {
	return color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
}
