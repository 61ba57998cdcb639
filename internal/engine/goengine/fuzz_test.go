package goengine_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"io"
	"testing"

	"github.com/iiifd/iiifd/internal/engine"
	"github.com/iiifd/iiifd/internal/engine/goengine"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

// FuzzRenderTile renders arbitrary bytes as a stored tile: whatever the
// tile holds, a render ends with an image or an error that carries an
// HTTP status, never a panic or a hang. The tile's size is what its
// header says, as a host's would be, bounded so that one run stays small.
func FuzzRenderTile(f *testing.F) {
	grey := image.NewGray(image.Rect(0, 0, 9, 7))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i * 5)
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, 6, 5))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 3)
	}
	var g bytes.Buffer
	pal := image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White, color.Transparent})
	pal.Pix[5] = 2
	if err := gif.Encode(&g, pal, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(encJPEG(f, rgba))
	f.Add(encJPEG(f, grey))
	f.Add(encPNG(f, grey))
	f.Add(encPNG(f, rgba))
	f.Add(g.Bytes())
	e := goengine.New(engine.EncodeOptions{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width < 1 || cfg.Height < 1 || cfg.Width*cfg.Height > 1<<16 {
			return
		}
		m := engine.Mosaic{Tiles: []engine.Tile{{Data: data, Width: cfg.Width, Height: cfg.Height}},
			Across: 1, TileWidth: cfg.Width, TileHeight: cfg.Height}
		for _, req := range [][4]string{
			{"full", "max", "0", "default.png"},
			{"full", "5,", "33", "gray.jpg"},
			{"full", "^20,", "90", "default.gif"},
		} {
			r, err := iiif.ParseImage(iiif.V3, req[0], req[1], req[2], req[3])
			if err != nil {
				t.Fatal(err)
			}
			p, err := plan.Make(r, plan.Image{Width: cfg.Width, Height: cfg.Height}, plan.Limits{MaxWidth: 4000})
			if err != nil {
				continue // a request this image cannot have (a 400 before any pixel)
			}
			err = e.RenderMosaic(context.Background(), m, &p, io.Discard)
			var se interface{ HTTPStatus() int }
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("%v: error without a status: %v", req, err)
			}
		}
	})
}
