package describe

import (
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// TestImageInfo checks the facts info.json is made of: the source's
// tiles, shrunk to the limits, and only sizes within them.
func TestImageInfo(t *testing.T) {
	lv := func(w, h int) probe.Level { return probe.Level{Width: w, Height: h, TileWidth: 256, TileHeight: 256} }
	h := FromProbe(probe.Info{Width: 4000, Height: 3000, Levels: []probe.Level{lv(4000, 3000), lv(2000, 1500), lv(1000, 750)}})
	ii := ImageInfo("https://x/iiif/3/a", h, plan.Limits{MaxArea: 1_000_000}, 512, []iiif.Format{iiif.FormatJPG, iiif.FormatPNG, iiif.FormatGIF})
	if ii.Tiles[0].Width != 256 || len(ii.Tiles[0].ScaleFactors) == 0 || ii.Tiles[0].ScaleFactors[1] != 2 {
		t.Errorf("tiles %+v", ii.Tiles)
	}
	for _, s := range ii.Sizes {
		if int64(s.Width)*int64(s.Height) > 1_000_000 {
			t.Errorf("size %v past maxArea", s)
		}
	}
	if len(ii.ExtraFormats) != 1 || ii.ExtraFormats[0] != iiif.FormatGIF {
		t.Errorf("extraFormats %v", ii.ExtraFormats)
	}
	if w, hh := FitTile(1024, 1024, plan.Limits{MaxWidth: 300}); w != 300 || hh != 300 {
		t.Errorf("FitTile: %dx%d", w, hh)
	}
	if ETag("a", "b") == ETag("ab") || ETag("a")[0] != '"' {
		t.Errorf("ETag parts run together or unquoted")
	}
}

func FuzzPyramid(f *testing.F) {
	f.Add([]byte(`{"width":1000,"height":800,"tiles":[{"width":256,"scaleFactors":[1,2,4]}],"sizes":[{"width":250,"height":200}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Pyramid(b)
		if err != nil {
			return
		}
		if len(h.Image.Levels) != len(h.Pyramid.ScaleFactors) || h.Image.Width != h.Info.Width {
			t.Fatalf("levels %d for %d scale factors", len(h.Image.Levels), len(h.Pyramid.ScaleFactors))
		}
		ImageInfo("x", h, plan.Limits{}, 512, nil)
	})
}
