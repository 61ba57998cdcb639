package service_test

import (
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/service"
)

// TestCostCountsWholeTiles: the memory a render reserves counts the
// whole tiles the decoder holds (issue 14 item 2): a one-pixel crop of
// an image stored as one 8192×8192 tile holds all 64 Mpx of it.
func TestCostCountsWholeTiles(t *testing.T) {
	req, err := iiif.ParseImage(iiif.V3, "0,0,1,1", "max", "0", "default.png")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		lvl  plan.Level
		min  int64
		max  int64
	}{
		{"one tile", plan.Level{Width: 8192, Height: 8192, Tiled: true, TileWidth: 8192, TileHeight: 8192}, 4 * 8192 * 8192, 4*8192*8192 + 8<<20},
		{"one strip", plan.Level{Width: 8192, Height: 8192, RowsPerStrip: 8192}, 4 * 8192 * 8192, 4*8192*8192 + 8<<20},
		{"small tiles", plan.Level{Width: 8192, Height: 8192, Tiled: true, TileWidth: 256, TileHeight: 256}, 4 * 256 * 256, 8 << 20},
	} {
		p, err := plan.Make(req, plan.Image{Width: 8192, Height: 8192, Levels: []plan.Level{tc.lvl}}, plan.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if c := service.Cost(&p); c < tc.min || c > tc.max {
			t.Errorf("%s: cost %d bytes, want %d to %d", tc.name, c, tc.min, tc.max)
		}
	}
}
