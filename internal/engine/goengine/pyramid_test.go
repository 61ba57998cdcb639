package goengine_test

import (
	"image"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine/goenginetest"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

// A virtual 40000x30000 pyramid of 512x512 JPEG tiles, the size issue 16
// asks the edge to serve: no file holds it; every tile of one size has
// the same bytes, so a render gets the tiles a host would fetch without
// the test holding gigabytes.
const (
	bigW, bigH = 40000, 30000
	bigTile    = 512
)

// photoTile is goenginetest.PhotoTile, failing t on an error.
func photoTile(t testing.TB, w, h int) []byte {
	b, err := goenginetest.PhotoTile(w, h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bigImage is the planner's view of the pyramid.
func bigImage() plan.Image {
	img := plan.Image{Width: bigW, Height: bigH}
	for w, h := bigW, bigH; ; w, h = (w+1)/2, (h+1)/2 {
		img.Levels = append(img.Levels, plan.Level{Width: w, Height: h, Tiled: true})
		if w <= bigTile && h <= bigTile {
			break
		}
	}
	return img
}

// bigRequest plans a request on the pyramid, with Micrio's per-format
// limits, and returns the plan with its level region made relative to
// the mosaic of the stored tiles under it, and that mosaic: what an edge
// host hands the engine.
func bigRequest(t testing.TB, url string) (*plan.Plan, engine.Mosaic) {
	t.Helper()
	parts := strings.Split(url, "/")
	req, err := iiif.ParseImage(iiif.V3, parts[0], parts[1], parts[2], parts[3])
	if err != nil {
		t.Fatal(err)
	}
	img := bigImage()
	lim := plan.Limits{MaxWidth: 10000, MaxHeight: 10000, PerFormat: map[iiif.Format]plan.FormatLimits{
		iiif.FormatJPG: {MaxWidth: 4096, MaxHeight: 4096},
		iiif.FormatPNG: {MaxWidth: 3584, MaxHeight: 3584},
	}}
	p, err := plan.Make(req, img, lim)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	lv := img.Levels[p.Level]
	r := p.LevelRegion
	tx0, ty0 := r.Min.X/bigTile, r.Min.Y/bigTile
	tx1, ty1 := (r.Max.X+bigTile-1)/bigTile, (r.Max.Y+bigTile-1)/bigTile
	m := engine.Mosaic{Across: tx1 - tx0, TileWidth: bigTile, TileHeight: bigTile}
	for ty := ty0; ty < ty1; ty++ {
		for tx := tx0; tx < tx1; tx++ {
			w := min(bigTile, lv.Width-tx*bigTile)
			h := min(bigTile, lv.Height-ty*bigTile)
			m.Tiles = append(m.Tiles, engine.Tile{Data: photoTile(t, w, h), Width: w, Height: h})
		}
	}
	p.LevelRegion = r.Sub(image.Pt(tx0*bigTile, ty0*bigTile))
	return &p, m
}
