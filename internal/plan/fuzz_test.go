package plan

import (
	"errors"
	"fmt"
	"image"
	"math/bits"
	"strings"
	"testing"

	"github.com/iiifd/iiifd/internal/iiif"
)

// TestTileGrid requests every tile that info.json advertises for the
// 40,000×30,000 pyramid, computed with the spec's tile algorithm (3.0
// implementation notes §3), and checks that each is served at the tile
// size from the level of its scale factor, and that its canonical form is
// its own region and size.
func TestTileGrid(t *testing.T) {
	img := pyramid()
	const tile = 256
	factors := iiif.ScaleFactors(img.Width, img.Height, tile, tile)
	n := 0
	for _, s := range factors {
		for m := 0; m*tile*s < img.Height; m++ {
			for k := 0; k*tile*s < img.Width; k++ {
				xr, yr := k*tile*s, m*tile*s
				wr, hr := min(tile*s, img.Width-xr), min(tile*s, img.Height-yr)
				ws, hs := tile, tile
				if xr+tile*s > img.Width {
					ws = (img.Width - xr + s - 1) / s
				}
				if yr+tile*s > img.Height {
					hs = (img.Height - yr + s - 1) / s
				}
				path := fmt.Sprintf("%d,%d,%d,%d/%d,%d/0/default.jpg", xr, yr, wr, hr, ws, hs)
				p, err := plan(t, iiif.V3, path, img, Limits{MaxWidth: 2048})
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if want := bits.TrailingZeros(uint(s)); p.Level != want {
					t.Fatalf("%s: level %d, want %d", path, p.Level, want)
				}
				if p.Width != ws || p.Height != hs {
					t.Fatalf("%s: size %dx%d", path, p.Width, p.Height)
				}
				if lr := p.LevelRegion; lr.Dx() < ws || lr.Dy() < hs || lr.Dx() > ws+1 || lr.Dy() > hs+1 {
					t.Fatalf("%s: level region %v for a %dx%d tile", path, lr, ws, hs)
				}
				wantRegion := fmt.Sprintf("%d,%d,%d,%d", xr, yr, wr, hr)
				if wr == img.Width && hr == img.Height {
					wantRegion = "full"
				}
				if got := p.Canonical.Region.String(); got != wantRegion {
					t.Fatalf("%s: canonical region %s", path, got)
				}
				n++
			}
		}
	}
	if n < 20000 {
		t.Errorf("only %d tiles", n)
	}
}

// FuzzMake checks that Make never panics, that every error carries a client
// status (the images here are valid), and that every plan is consistent:
// the region is inside the image, the level region inside its level, the
// size at least 1×1 and within the limits, and the canonical request parses
// and plans to the same Plan.
func FuzzMake(f *testing.F) {
	seeds := []struct {
		v                 uint8
		region, size, rot string
		qf                string
		w, h              uint32
		levels            uint8
		maxW, maxH, maxA  uint32
		gifW              uint32
	}{
		{3, "full", "max", "0", "default.jpg", 300, 200, 0, 0, 0, 0, 0},
		{3, "square", "^max", "!90", "gray.png", 300, 200, 0, 360, 0, 0, 0},
		{3, "125,15,200,200", "!225,100", "22.5", "color.gif", 300, 200, 2, 200, 0, 30000, 100},
		{3, "pct:41.6,7.5,66.6,100", "^!360,360", "!345", "default.webp", 300, 200, 3, 360, 0, 0, 0},
		{3, "full", "!1024,1024", "0", "default.jpg", 40000, 30000, 9, 0, 0, 0, 0},
		{3, "32768,16384,7232,13616", "113,213", "0", "default.jpg", 40000, 30000, 9, 0, 0, 0, 0},
		{3, "full", "301,201", "360", "default.jpg", 300, 200, 1, 0, 0, 0, 0},
		{3, "full", "^pct:1000000000", "0", "default.jpg", 3, 1000000, 4, 1, 0, 7, 0},
		{2, "full", "full", "0", "default.jpg", 300, 200, 0, 200, 0, 0, 0},
		{2, "pct:0,0,33.3333333333,100", "pct:150", "90", "default.jpg", 100, 10, 2, 1000, 0, 0, 0},
		{2, "0,0,1,1", "!999999999,999999999", "0", "default.gif", 1 << 30, 1, 8, 5, 5, 5, 3},
		{2, "full", "1,", "0", "default.jpg", 1000, 1, 0, 0, 0, 0, 0},
		{3, "full", "max", "45", "default.png", 2000, 2000, 0, 0, 0, 1000000, 0},
		{3, "full", "max", "30", "default.gif", 2000, 2000, 0, 1000, 1000, 0, 500},
		{3, "0,0,1200,146", "^max", "!10", "default.webp", 2000, 2000, 0, 20000, 0, 0, 0},
		{3, "0,0,1,1", "max", "0", "default.jpg", 8192, 8192, 12*3 + 1, 0, 0, 100000, 3},
		{3, "10,10,100,100", "50,", "270", "default.jpg", 8192, 8192, 12 + 1, 0, 0, 100000, 3},
		{3, "100,100,512,512", "^max", "90", "default.jpg", 8192, 8192, 12*2 + 5, 300, 700, 0, 3},
	}
	for _, s := range seeds {
		f.Add(s.v, s.region, s.size, s.rot, s.qf, s.w, s.h, s.levels, s.maxW, s.maxH, s.maxA, s.gifW)
	}
	f.Fuzz(func(t *testing.T, v uint8, region, size, rot, qf string, w, h uint32, levels uint8, maxW, maxH, maxA, gifW uint32) {
		req, err := iiif.ParseImage(iiif.Version(v), region, size, rot, qf)
		if err != nil {
			return
		}
		img := Image{Width: 1 + int(w%MaxDim), Height: 1 + int(h%MaxDim)}
		lw, lh := img.Width, img.Height
		// levels/12 picks the storage: untiled, strips of 16 rows,
		// 256² tiles, or one tile per level.
		storage := levels / 12 % 4
		for range levels % 12 {
			l := Level{Width: lw, Height: lh}
			switch storage {
			case 1:
				l.RowsPerStrip = 16
			case 2:
				l.Tiled, l.TileWidth, l.TileHeight = true, 256, 256
			case 3:
				l.Tiled, l.TileWidth, l.TileHeight = true, lw, lh
			}
			img.Levels = append(img.Levels, l)
			lw, lh = (lw+1)/2, (lh+1)/2
		}
		lim := Limits{MaxWidth: int(maxW % 100000), MaxHeight: int(maxH % 100000), MaxArea: int64(maxA)}
		if gifW%3 == 0 {
			lim.MaxSourcePixels = int64(maxA) * 64
		}
		if gifW%4 != 0 {
			lim.PerFormat = map[iiif.Format]FormatLimits{iiif.FormatGIF: {MaxWidth: int(gifW % 5000), MaxArea: int64(gifW)}}
		}
		p, err := Make(req, img, lim)
		if err != nil {
			status := 0
			var pe *Error
			var ie *iiif.Error
			switch {
			case errors.As(err, &pe):
				status = pe.HTTPStatus()
				if !strings.HasPrefix(pe.Error(), pe.Part+": ") {
					t.Fatalf("%q does not name its part", pe)
				}
			case errors.As(err, &ie):
				status = ie.HTTPStatus()
			default:
				t.Fatalf("error %T: %v", err, err)
			}
			if status != 400 && status != 404 && status != 501 {
				t.Fatalf("status %d: %v", status, err)
			}
			return
		}
		checkPlan(t, req, img, lim, p)

		c := p.Canonical.String()
		seg := strings.Split(c, "/")
		creq, err := iiif.ParseImage(req.Version, seg[0], seg[1], seg[2], seg[3])
		if err != nil {
			t.Fatalf("canonical %q: %v", c, err)
		}
		if creq != p.Canonical {
			t.Fatalf("canonical %q parses to %+v, not %+v", c, creq, p.Canonical)
		}
		q, err := Make(creq, img, lim)
		if err != nil {
			t.Fatalf("canonical %q of %q: %v", c, req, err)
		}
		if q != p {
			t.Fatalf("canonical %q of %q plans differently:\n%+v\n%+v", c, req, q, p)
		}
	})
}

func checkPlan(t *testing.T, req iiif.Request, img Image, lim Limits, p Plan) {
	t.Helper()
	full := image.Rect(0, 0, img.Width, img.Height)
	if p.Region.Empty() || !p.Region.In(full) {
		t.Fatalf("region %v outside %v", p.Region, full)
	}
	lvl := full
	if len(img.Levels) > 0 {
		if p.Level < 0 || p.Level >= len(img.Levels) {
			t.Fatalf("level %d of %d", p.Level, len(img.Levels))
		}
		l := img.Levels[p.Level]
		lvl = image.Rect(0, 0, l.Width, l.Height)
	} else if p.Level != 0 {
		t.Fatalf("level %d without levels", p.Level)
	}
	if p.LevelRegion.Empty() || !p.LevelRegion.In(lvl) {
		t.Fatalf("level region %v outside %v", p.LevelRegion, lvl)
	}
	if p.Width < 1 || p.Height < 1 || p.OutWidth < 1 || p.OutHeight < 1 {
		t.Fatalf("size %dx%d out %dx%d", p.Width, p.Height, p.OutWidth, p.OutHeight)
	}
	// The limits bound the output as delivered: the rotated bounding box.
	b := lim.bounds(req.Format)
	if int64(p.OutWidth) > b.w.v || int64(p.OutHeight) > b.h.v || int64(p.OutWidth)*int64(p.OutHeight) > b.area.v {
		t.Fatalf("size %dx%d rotated %v to %dx%d, over the limits %+v", p.Width, p.Height, p.Rotation, p.OutWidth, p.OutHeight, b)
	}
	if ow, oh := rotatedSize(p.Width, p.Height, p.Rotation); ow != p.OutWidth || oh != p.OutHeight {
		t.Fatalf("output %dx%d, rotated size %dx%d", p.OutWidth, p.OutHeight, ow, oh)
	}
	// Whole tiles and strips are counted: at least the level region,
	// and never more than the level holds.
	lr := int64(p.LevelRegion.Dx()) * int64(p.LevelRegion.Dy())
	if p.Decoded < lr || p.Held < lr || p.Decoded > int64(lvl.Dx())*int64(lvl.Dy()) {
		t.Fatalf("decoded %d, held %d for a level region of %d pixels in %v", p.Decoded, p.Held, lr, lvl)
	}
	if lim.MaxSourcePixels > 0 && p.Decoded > lim.MaxSourcePixels {
		t.Fatalf("decoded %d over the source limit %d", p.Decoded, lim.MaxSourcePixels)
	}
	upscaled := p.Width > p.Region.Dx() || p.Height > p.Region.Dy()
	if upscaled && lim.MaxWidth <= 0 && lim.MaxArea <= 0 {
		t.Fatalf("upscaled to %dx%d from %v without limits", p.Width, p.Height, p.Region)
	}
	if upscaled && req.Version == iiif.V3 && !req.Size.Upscale {
		t.Fatalf("upscaled to %dx%d from %v without ^", p.Width, p.Height, p.Region)
	}
	if p.Rotation < 0 || p.Rotation >= 360 {
		t.Fatalf("rotation %v", p.Rotation)
	}
	if p.Quality != req.Quality || p.Format != req.Format || p.Mirror != req.Rotation.Mirror {
		t.Fatalf("quality, format or mirror changed")
	}
}
