// Command wasmbench times the pure-Go engine on the request kinds of
// scripts/bench-edge, built for this machine or for js/wasm and run by
// Node with Go's wasm_exec_node.js, so that the WebAssembly slowdown of
// the engine alone can be measured and profiled (node --cpu-prof names
// the Go functions) without workerd, an origin or the host. The mosaic is
// a virtual 40000x30000 pyramid of 256-pixel JPEG tiles, as the edge
// benchmark's TIFF has; every tile of one size has the same bytes.
//
//	scripts/bench-goengine-wasm
//	go run ./internal/engine/goengine/wasmbench [-n 3] [kind...]
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
	"github.com/iiifd/iiifd/internal/engine/goengine/goenginetest"
	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

const (
	bigW, bigH = 40000, 30000
	bigTile    = 256
)

// kinds are scripts/bench-edge's requests, one of each.
var kinds = map[string]string{
	"rendered":  "1000,1000,1000,1000/256,/0/default.jpg",
	"thumb":     "full/!1024,1024/0/default.jpg",
	"thumbgray": "full/!1024,1024/0/gray.jpg",
	"jpeg3584":  "10000,10000,3584,3584/max/0/default.jpg",
	"jpeg4096":  "5120,6144,4096,4096/max/0/default.jpg",
	"png3584":   "10000,10000,3584,3584/max/0/default.png",
}

func main() {
	n := flag.Int("n", 3, "renders of each kind; the fastest is reported")
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		for k := range kinds {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	e := goengine.New(engine.EncodeOptions{})
	for _, k := range names {
		url, ok := kinds[k]
		if !ok {
			fmt.Fprintf(os.Stderr, "wasmbench: no kind %q\n", k)
			os.Exit(2)
		}
		p, m, err := request(url)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wasmbench: %s: %v\n", k, err)
			os.Exit(1)
		}
		var best time.Duration
		for i := 0; i < *n; i++ {
			t0 := time.Now()
			if err := e.RenderMosaic(context.Background(), m, p, io.Discard); err != nil {
				fmt.Fprintf(os.Stderr, "wasmbench: %s: %v\n", k, fault.Detail(err))
				os.Exit(1)
			}
			if d := time.Since(t0); i == 0 || d < best {
				best = d
			}
		}
		fmt.Printf("%-10s %4d tiles  %7.0f ms (fastest of %d)\n", k, len(m.Tiles), float64(best.Microseconds())/1000, *n)
	}
}

// request plans url on the pyramid with the edge's limits and returns
// the plan, relative to the mosaic of the stored tiles under its region,
// and that mosaic: what the edge host hands the engine.
func request(url string) (*plan.Plan, engine.Mosaic, error) {
	parts := strings.Split(url, "/")
	req, err := iiif.ParseImage(iiif.V3, parts[0], parts[1], parts[2], parts[3])
	if err != nil {
		return nil, engine.Mosaic{}, err
	}
	img := plan.Image{Width: bigW, Height: bigH}
	for w, h := bigW, bigH; ; w, h = (w+1)/2, (h+1)/2 {
		img.Levels = append(img.Levels, plan.Level{Width: w, Height: h, Tiled: true})
		if w <= bigTile && h <= bigTile {
			break
		}
	}
	lim := plan.Limits{MaxWidth: 4096, MaxHeight: 4096, MaxArea: 4096 * 4096, PerFormat: map[iiif.Format]plan.FormatLimits{
		iiif.FormatJPG: {MaxWidth: 4096, MaxHeight: 4096},
		iiif.FormatPNG: {MaxWidth: 3584, MaxHeight: 3584},
	}}
	p, err := plan.Make(req, img, lim)
	if err != nil {
		return nil, engine.Mosaic{}, err
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
			b, err := goenginetest.PhotoTile(w, h)
			if err != nil {
				return nil, engine.Mosaic{}, err
			}
			m.Tiles = append(m.Tiles, engine.Tile{Data: b, Width: w, Height: h})
		}
	}
	p.LevelRegion = r.Sub(image.Pt(tx0*bigTile, ty0*bigTile))
	return &p, m, nil
}
