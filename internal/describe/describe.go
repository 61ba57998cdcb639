// Package describe turns what a source's header says (the probe's facts,
// or a tile pyramid's stored info.json) into what the planner and
// info.json need: the levels as the planner sees them, the tiles and
// scale factors viewers should ask for, the sizes within the limits, and
// the strong entity tags of responses. It is pure Go, shared by the
// native server and the edge worker, so that both describe a source the
// same way.
package describe

import (
	"fmt"
	"slices"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/source/pyramid"
)

// Header is what is known of a source from its header: the probe's
// facts, the planner's view of them, and for a tile pyramid its stored
// description.
type Header struct {
	Info    probe.Info
	Image   plan.Image       // Info as the planner sees it
	Pyramid *pyramid.Pyramid // nil for image files
}

// FromProbe describes an image file from the probe's facts.
func FromProbe(info probe.Info) Header {
	return Header{Info: info, Image: PlanImage(info)}
}

// Pyramid parses a tile pyramid's info.json and describes the pyramid as
// the planner sees an image: its levels are the scale factors, level k
// being ceil(W/sf)×ceil(H/sf), every one tiled.
func Pyramid(infoJSON []byte) (Header, error) {
	pyr, err := pyramid.Parse(infoJSON)
	if err != nil {
		return Header{}, err
	}
	info := probe.Info{Format: probe.JPEG, Width: pyr.Width, Height: pyr.Height}
	for _, sf := range pyr.ScaleFactors {
		w, h := pyr.Level(sf)
		info.Levels = append(info.Levels, probe.Level{
			Width: w, Height: h, TileWidth: pyr.TileWidth, TileHeight: pyr.TileHeight, SubIFD: -1,
		})
	}
	return Header{Info: info, Image: PlanImage(info), Pyramid: pyr}, nil
}

// PlanImage is the planner's view of the probe's facts, with what a
// decoder must decode whole for any crop: the stored tiles, the strips of
// a TIFF, and a JPEG 2000 codestream stored as one tile, which is one
// tile the size of each level.
func PlanImage(hdr probe.Info) plan.Image {
	img := plan.Image{Width: hdr.Width, Height: hdr.Height}
	for _, l := range hdr.Levels {
		pl := plan.Level{Width: l.Width, Height: l.Height, Tiled: l.TileWidth > 0 && l.TileHeight > 0}
		if pl.Tiled {
			pl.TileWidth, pl.TileHeight = l.TileWidth, l.TileHeight
		} else if l.TIFF != nil {
			pl.RowsPerStrip = l.TIFF.RowsPerStrip
		} else if hdr.Format == probe.JP2 {
			pl.Tiled, pl.TileWidth, pl.TileHeight = true, l.Width, l.Height
		}
		img.Levels = append(img.Levels, pl)
	}
	return img
}

// ImageInfo assembles info.json's facts for the service id: the source's
// own tiling (or tileSize for sources that are not tiled) and the scale
// factors whose tiles are stored (see ScaleFactors), the cheaply
// available sizes, the limits and the capabilities of an engine that
// writes formats.
func ImageInfo(id string, h Header, lim plan.Limits, tileSize int, formats []iiif.Format) iiif.ImageInfo {
	hdr := h.Info
	l0 := hdr.Levels[0]
	tw, th := l0.TileWidth, l0.TileHeight
	if tw <= 0 || th <= 0 {
		tw, th = tileSize, tileSize
	}
	ftw, fth := FitTile(tw, th, lim)
	factors := iiif.ScaleFactors(hdr.Width, hdr.Height, ftw, fth)
	if f := ScaleFactors(h); f != nil && ftw == tw && fth == th {
		factors = f
	}
	sizes := halvings(hdr, lim)
	if h.Pyramid != nil {
		sizes = storedSizes(h.Pyramid, lim)
	}
	ii := iiif.ImageInfo{
		ID:        id,
		Width:     hdr.Width,
		Height:    hdr.Height,
		MaxWidth:  lim.MaxWidth,
		MaxHeight: lim.MaxHeight,
		MaxArea:   lim.MaxArea,
		Tiles: []iiif.Tile{{
			Width: ftw, Height: fth,
			ScaleFactors: factors,
		}},
		Sizes:            sizes,
		PreferredFormats: []iiif.Format{iiif.FormatJPG},
	}
	for _, f := range formats {
		if f != iiif.FormatJPG && f != iiif.FormatPNG {
			ii.ExtraFormats = append(ii.ExtraFormats, f)
		}
	}
	if slices.Contains(formats, iiif.FormatWebP) {
		ii.PreferredFormats = append(ii.PreferredFormats, iiif.FormatWebP)
	}
	ii.ExtraQualities = []iiif.Quality{iiif.QualityColor, iiif.QualityGray, iiif.QualityBitonal}
	return ii
}

// halvings lists halvings of the full image, smallest first, that are
// within the limits; viewers use them for thumbnails and the first view.
func halvings(hdr probe.Info, lim plan.Limits) []iiif.SizeEntry {
	var out []iiif.SizeEntry
	for f := 1; ; f *= 2 {
		w, h := ceilDiv(hdr.Width, f), ceilDiv(hdr.Height, f)
		if lim.Fits(w, h) {
			out = append(out, iiif.SizeEntry{Width: w, Height: h})
		}
		if w <= 64 || h <= 64 || f >= 1<<20 {
			break
		}
	}
	slices.Reverse(out)
	return out
}

// storedSizes lists the pyramid's stored full sizes within the limits.
func storedSizes(pyr *pyramid.Pyramid, lim plan.Limits) []iiif.SizeEntry {
	var out []iiif.SizeEntry
	for _, z := range pyr.Sizes {
		if lim.Fits(z.Width, z.Height) {
			out = append(out, iiif.SizeEntry{Width: z.Width, Height: z.Height})
		}
	}
	return out
}

// ScaleFactors returns the scale factors info.json advertises with the
// tiling of level 0: for a tile pyramid the stored ones; for a tiled
// pyramidal file the factor of every stored level tiled like level 0
// (so that viewers ask for tiles that can pass through), followed by
// doublings down to a single tile; nil for anything else.
func ScaleFactors(h Header) []int {
	hdr := h.Info
	l0 := hdr.Levels[0]
	if h.Pyramid != nil {
		return h.Pyramid.ScaleFactors
	}
	tw, th := l0.TileWidth, l0.TileHeight
	if tw <= 0 || th <= 0 || len(hdr.Levels) < 2 {
		return nil // the caller uses powers of two
	}
	out := []int{1}
	for _, l := range hdr.Levels[1:] {
		if l.TileWidth != tw || l.TileHeight != th {
			continue
		}
		sf := (hdr.Width + l.Width/2) / l.Width
		if sf <= out[len(out)-1] || !levelOf(hdr.Width, sf, l.Width) || !levelOf(hdr.Height, sf, l.Height) {
			continue
		}
		out = append(out, sf)
	}
	for s := out[len(out)-1]; ceilDiv(hdr.Width, s) > tw || ceilDiv(hdr.Height, s) > th; {
		s *= 2
		out = append(out, s)
	}
	return out
}

// levelOf reports whether n is full scaled by 1/sf, rounded either way.
func levelOf(full, sf, n int) bool { return n == full/sf || n == ceilDiv(full, sf) }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// FitTile shrinks a tile size to the output limits, because info.json
// must not advertise tiles that the server would refuse. A maxHeight left
// unset takes maxWidth's value, as 3.0 §5.2 tells clients to assume.
func FitTile(tw, th int, lim plan.Limits) (int, int) {
	maxH := lim.MaxHeight
	if maxH == 0 {
		maxH = lim.MaxWidth
	}
	if lim.MaxWidth > 0 && tw > lim.MaxWidth {
		tw = lim.MaxWidth
	}
	if maxH > 0 && th > maxH {
		th = maxH
	}
	for lim.MaxArea > 0 && int64(tw)*int64(th) > lim.MaxArea && tw > 1 && th > 1 {
		tw, th = max(tw/2, 1), max(th/2, 1)
	}
	return tw, th
}

// LimitsKey writes limits in a stable order (maps print sorted), for
// entity tags and cache keys: outputs depend on them.
func LimitsKey(l plan.Limits) string { return fmt.Sprint(l) }

// ETag is the strong entity tag of the parts that fully determine a
// response's bytes.
func ETag(parts ...string) string { return `"` + cache.Hash(parts...) + `"` }
