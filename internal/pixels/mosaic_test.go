package pixels

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/draw"
	"io"
	"testing"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/iiif"
)

// cut cuts img into tw×th tiles, row by row, encoded with enc.
func cut(t testing.TB, img image.Image, tw, th int, enc func(testing.TB, image.Image) []byte) engine.Mosaic {
	b := img.Bounds()
	m := engine.Mosaic{TileWidth: tw, TileHeight: th, Across: (b.Dx() + tw - 1) / tw}
	for y := 0; y < b.Dy(); y += th {
		for x := 0; x < b.Dx(); x += tw {
			r := image.Rect(x, y, min(x+tw, b.Dx()), min(y+th, b.Dy()))
			tile := image.NewNRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
			draw.Draw(tile, tile.Bounds(), img, r.Min, draw.Src)
			m.Tiles = append(m.Tiles, engine.Tile{Data: enc(t, tile), Width: r.Dx(), Height: r.Dy()})
		}
	}
	return m
}

func renderMosaic(t testing.TB, m engine.Mosaic, region image.Rectangle, w, h int, rot float64, f iiif.Format) image.Image {
	t.Helper()
	var buf bytes.Buffer
	p := mkPlan(region, w, h, rot, false, "", f)
	if err := RenderMosaic(context.Background(), m, p, engine.EncodeOptions{}, &buf); err != nil {
		t.Fatalf("RenderMosaic(%v): %v", region, detail(err))
	}
	return decode(t, f, buf.Bytes())
}

// TestMosaicExact joins lossless tiles, edge tiles included, and crops
// regions across them: the pixels are the original's, exactly.
func TestMosaicExact(t *testing.T) {
	src := pattern(610, 470)
	m := cut(t, src, 128, 100, encodePNG)
	for _, r := range []image.Rectangle{
		image.Rect(0, 0, 610, 470), image.Rect(127, 99, 130, 102), image.Rect(300, 200, 610, 470),
		image.Rect(1, 1, 600, 400), image.Rect(512, 400, 610, 470),
	} {
		got := renderMosaic(t, m, r, r.Dx(), r.Dy(), 0, iiif.FormatPNG)
		for y := 0; y < r.Dy(); y++ {
			for x := 0; x < r.Dx(); x++ {
				if a, b := nrgba(got, x, y), src.NRGBAAt(r.Min.X+x, r.Min.Y+y); a != b {
					t.Fatalf("region %v pixel %d,%d: %v, want %v", r, x, y, a, b)
				}
			}
		}
	}
	// Processing after the join: scale and rotate as Render does.
	path := writeFile(t, "src.png", encodePNG(t, src))
	r := image.Rect(50, 60, 550, 460)
	p := mkPlan(r, 250, 200, 90, false, "", iiif.FormatPNG)
	want := decode(t, iiif.FormatPNG, renderBytes(t, path, full, p))
	got := renderMosaic(t, m, r, 250, 200, 90, iiif.FormatPNG)
	if d := meanAbsDiff(t, got, want); d > 0.01 {
		t.Errorf("scaled and rotated mosaic differs from the file render by %.3f", d)
	}
}

func TestMosaicErrors(t *testing.T) {
	src := pattern(300, 200)
	good := cut(t, src, 128, 128, encodeJPEG)
	region := image.Rect(0, 0, 300, 200)
	try := func(name string, m engine.Mosaic, want string) {
		t.Helper()
		p := mkPlan(region, 300, 200, 0, false, "", iiif.FormatJPG)
		err := RenderMosaic(context.Background(), m, p, engine.EncodeOptions{}, io.Discard)
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		if _, ok := kindOf(err); !ok {
			t.Errorf("%s: not a fault: %v", name, err)
		}
		if err.Error() != want {
			t.Errorf("%s: public message %q, want %q", name, err.Error(), want)
		}
	}
	with := func(i int, tile engine.Tile) engine.Mosaic {
		m := good
		m.Tiles = append([]engine.Tile(nil), good.Tiles...)
		m.Tiles[i] = tile
		return m
	}
	try("corrupt", with(1, engine.Tile{Data: good.Tiles[1].Data[:len(good.Tiles[1].Data)/3], Width: 128, Height: 128}), msgUndecodable)
	try("not an image", with(0, engine.Tile{Data: []byte("hello"), Width: 128, Height: 128}), msgUndecodable)
	try("empty", with(0, engine.Tile{Width: 128, Height: 128}), msgUndecodable)
	try("wrong size", with(0, engine.Tile{Data: good.Tiles[2].Data, Width: 128, Height: 128}), msgUndecodable)
	try("bad grid", engine.Mosaic{Tiles: good.Tiles, Across: 2, TileWidth: 128, TileHeight: 128}, msgProcess)
	try("no tiles", engine.Mosaic{Across: 1, TileWidth: 128, TileHeight: 128}, msgProcess)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := mkPlan(region, 300, 200, 0, false, "", iiif.FormatJPG)
	if err := RenderMosaic(ctx, good, p, engine.EncodeOptions{}, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestMosaicNoLeaks checks that mosaics, failed ones included, release
// every libvips object and buffer.
func TestMosaicNoLeaks(t *testing.T) {
	m := cut(t, pattern(300, 200), 64, 64, encodeJPEG)
	bad := m
	bad.Tiles = append([]engine.Tile(nil), m.Tiles...)
	bad.Tiles[3].Data = bad.Tiles[3].Data[:100]
	work := func() {
		p := mkPlan(image.Rect(10, 10, 290, 190), 140, 90, 22.5, true, "", iiif.FormatPNG)
		if err := RenderMosaic(context.Background(), m, p, engine.EncodeOptions{}, io.Discard); err != nil {
			t.Fatal(detail(err))
		}
		if err := RenderMosaic(context.Background(), bad, p, engine.EncodeOptions{}, io.Discard); err == nil {
			t.Fatal("bad tile rendered")
		}
	}
	work()
	settle := func() Stats {
		s := ReadStats()
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			next := ReadStats()
			if next == s {
				break
			}
			s = next
		}
		return s
	}
	before := settle()
	for range 3 {
		work()
	}
	after := settle()
	if after.LiveObjects != before.LiveObjects || after.TrackedMem > before.TrackedMem {
		t.Errorf("leak: before %+v after %+v", before, after)
	}
}
