// Package pyramid reads tile pyramids stored in the IIIF level-0 static
// layout: a folder holding an info.json and, for every scale factor of its
// tiles entry, every tile at DIR/{x},{y},{w},{h}/{sw},{sh}/0/default.jpg,
// plus DIR/full/{w},{h}/0/default.jpg for each of its sizes (the layout
// that `vips dzsave --layout iiif3` writes).
//
// It is pure geometry and parsing: it says which stored file answers a
// request as it is (passthrough) and which tiles cover a region (for
// stitching), as keys relative to the folder, so that the same code serves
// pyramids on local disk, in object storage or over HTTP. It imports only
// the standard library, so it also compiles for WebAssembly.
package pyramid

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"slices"
	"strconv"
	"strings"
)

// InfoFile is the name of a pyramid's description inside its folder.
const InfoFile = "info.json"

// MaxInfoSize bounds the info.json read; real ones are a few KiB.
const MaxInfoSize = 1 << 20

// Bounds on what an info.json may declare.
const (
	maxDim          = 1 << 30
	maxTile         = 1 << 16
	maxScaleFactors = 32
	maxSizes        = 64
)

// ErrMalformed is returned (wrapped) for an info.json that does not
// describe a usable pyramid.
var ErrMalformed = errors.New("pyramid: malformed info.json")

// Size is a stored full-image size.
type Size struct{ Width, Height int }

// Pyramid is what a stored info.json says about its tiles. Only what it
// declares is trusted: a writer may store more (dzsave writes a level
// above the last scale factor it declares), never less.
type Pyramid struct {
	Width, Height         int
	TileWidth, TileHeight int
	// ScaleFactors are ascending and start with 1.
	ScaleFactors []int
	// Sizes are the stored full-image sizes, smallest first.
	Sizes []Size
	// V2 says the folder uses the Image API 2 size form ("w,") in its
	// paths; otherwise the 3.0 form ("w,h").
	V2 bool
}

type infoJSON struct {
	Context any `json:"@context"`
	Width   int `json:"width"`
	Height  int `json:"height"`
	Tiles   []struct {
		Width        int   `json:"width"`
		Height       int   `json:"height"`
		ScaleFactors []int `json:"scaleFactors"`
	} `json:"tiles"`
	Sizes []struct {
		Width  int `json:"width"`
		Height int `json:"height"`
	} `json:"sizes"`
}

// Parse reads a stored info.json. Its "id" is ignored: the server that
// serves the pyramid names it. Only the first "tiles" entry is used.
func Parse(b []byte) (*Pyramid, error) {
	if len(b) > MaxInfoSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	var in infoJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
	}
	if in.Width < 1 || in.Height < 1 || in.Width > maxDim || in.Height > maxDim {
		return nil, bad("image size %dx%d", in.Width, in.Height)
	}
	if len(in.Tiles) == 0 {
		return nil, bad("no tiles")
	}
	t := in.Tiles[0]
	if t.Height == 0 {
		t.Height = t.Width
	}
	if t.Width < 1 || t.Height < 1 || t.Width > maxTile || t.Height > maxTile {
		return nil, bad("tile size %dx%d", t.Width, t.Height)
	}
	if len(t.ScaleFactors) == 0 || len(t.ScaleFactors) > maxScaleFactors {
		return nil, bad("%d scale factors", len(t.ScaleFactors))
	}
	sfs := slices.Clone(t.ScaleFactors)
	slices.Sort(sfs)
	sfs = slices.Compact(sfs)
	for _, s := range sfs {
		if s < 1 || s > maxDim {
			return nil, bad("scale factor %d", s)
		}
	}
	if sfs[0] != 1 {
		// Without full-resolution tiles nothing at full size can be
		// served from the pyramid.
		return nil, bad("no scale factor 1")
	}
	p := &Pyramid{
		Width: in.Width, Height: in.Height,
		TileWidth: t.Width, TileHeight: t.Height,
		ScaleFactors: sfs,
		V2:           isV2(in.Context),
	}
	if len(in.Sizes) > maxSizes {
		return nil, bad("%d sizes", len(in.Sizes))
	}
	for _, s := range in.Sizes {
		if s.Width < 1 || s.Height < 1 || s.Width > in.Width || s.Height > in.Height {
			return nil, bad("size %dx%d", s.Width, s.Height)
		}
		if e := (Size{s.Width, s.Height}); !slices.Contains(p.Sizes, e) {
			p.Sizes = append(p.Sizes, e)
		}
	}
	slices.SortFunc(p.Sizes, func(a, b Size) int { return a.Width - b.Width })
	return p, nil
}

// isV2 reports whether a JSON-LD @context names the Image API 2 context.
func isV2(ctx any) bool {
	switch c := ctx.(type) {
	case string:
		return strings.Contains(c, "/image/2/")
	case []any:
		for _, e := range c {
			if isV2(e) {
				return true
			}
		}
	}
	return false
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Level returns the size of the level at scale factor sf: ceil(W/sf) by
// ceil(H/sf), as the spec's tile algorithm sizes tiles.
func (p *Pyramid) Level(sf int) (w, h int) {
	return ceilDiv(p.Width, sf), ceilDiv(p.Height, sf)
}

// TileRegion returns the full-resolution region of tile (col, row) at
// scale factor sf: x = col·tw·sf, w = min(tw·sf, W−x), likewise y and h.
func (p *Pyramid) TileRegion(sf, col, row int) image.Rectangle {
	x, y := col*p.TileWidth*sf, row*p.TileHeight*sf
	return image.Rect(x, y, min(x+p.TileWidth*sf, p.Width), min(y+p.TileHeight*sf, p.Height))
}

// TileKey returns the key, relative to the pyramid's folder, of the tile
// at column col and row row of the level at scale factor sf.
func (p *Pyramid) TileKey(sf, col, row int) string {
	r := p.TileRegion(sf, col, row)
	return fmt.Sprintf("%d,%d,%d,%d/%s/0/default.jpg", r.Min.X, r.Min.Y, r.Dx(), r.Dy(),
		p.sizePath(ceilDiv(r.Dx(), sf), ceilDiv(r.Dy(), sf)))
}

// SizeKey returns the key of the stored full image of size s.
func (p *Pyramid) SizeKey(s Size) string {
	return "full/" + p.sizePath(s.Width, s.Height) + "/0/default.jpg"
}

func (p *Pyramid) sizePath(w, h int) string {
	if p.V2 {
		return strconv.Itoa(w) + ","
	}
	return strconv.Itoa(w) + "," + strconv.Itoa(h)
}

// Match returns the key of the stored file whose pixels are exactly the
// full-resolution region scaled to w×h: a tile of the grid at one of the
// declared scale factors, edge tiles included, or a stored full size. It
// says nothing of rotation, quality or format, which the caller checks.
func (p *Pyramid) Match(region image.Rectangle, w, h int) (string, bool) {
	if region == image.Rect(0, 0, p.Width, p.Height) {
		if i := slices.Index(p.Sizes, Size{w, h}); i >= 0 {
			return p.SizeKey(p.Sizes[i]), true
		}
	}
	for _, sf := range p.ScaleFactors {
		cw, ch := p.TileWidth*sf, p.TileHeight*sf
		if region.Min.X%cw != 0 || region.Min.Y%ch != 0 {
			continue
		}
		col, row := region.Min.X/cw, region.Min.Y/ch
		if r := p.TileRegion(sf, col, row); r == region && w == ceilDiv(r.Dx(), sf) && h == ceilDiv(r.Dy(), sf) {
			return p.TileKey(sf, col, row), true
		}
	}
	return "", false
}

// Span is the block of tiles of one level that covers a region.
type Span struct {
	SF         int
	Col0, Row0 int // the top-left tile
	Cols, Rows int
}

// Cover returns the tiles of the level at scale factor sf that intersect
// r, a non-empty rectangle in that level's pixels (clipped to the level).
func (p *Pyramid) Cover(sf int, r image.Rectangle) Span {
	lw, lh := p.Level(sf)
	r = r.Intersect(image.Rect(0, 0, lw, lh))
	if r.Empty() {
		return Span{SF: sf}
	}
	c0, r0 := r.Min.X/p.TileWidth, r.Min.Y/p.TileHeight
	c1, r1 := (r.Max.X-1)/p.TileWidth, (r.Max.Y-1)/p.TileHeight
	return Span{SF: sf, Col0: c0, Row0: r0, Cols: c1 - c0 + 1, Rows: r1 - r0 + 1}
}

// Rect returns the pixels of the span's level that its tiles hold.
func (p *Pyramid) Rect(s Span) image.Rectangle {
	lw, lh := p.Level(s.SF)
	return image.Rect(s.Col0*p.TileWidth, s.Row0*p.TileHeight,
		min((s.Col0+s.Cols)*p.TileWidth, lw), min((s.Row0+s.Rows)*p.TileHeight, lh))
}

// Keys returns the keys of the span's tiles, row by row.
func (p *Pyramid) Keys(s Span) []string {
	keys := make([]string, 0, s.Cols*s.Rows)
	for r := s.Row0; r < s.Row0+s.Rows; r++ {
		for c := s.Col0; c < s.Col0+s.Cols; c++ {
			keys = append(keys, p.TileKey(s.SF, c, r))
		}
	}
	return keys
}
