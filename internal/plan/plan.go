// Package plan turns a parsed IIIF request and what is known about an image
// from its header into a Plan: which stored resolution level to read, which
// pixels of it to crop, the exact output size, rotation, mirroring, quality
// and format, and the canonical form of the request. Every limit and every
// error that can be known before decoding is decided here, so no pixel is
// touched for a request that will fail.
//
// The package is pure geometry: it imports only the standard library and the
// iiif package, and is fuzzed.
package plan

import (
	"image"

	"github.com/iiifd/iiifd/internal/iiif"
)

// Level is one resolution level an image can be read at cheaply: a stored
// pyramid level (TIFF page or sub-IFD, JPEG 2000 resolution reduction) or a
// reduction the decoder does on load (JPEG DCT scaling). Level 0 is always
// the full resolution image.
type Level struct {
	Width, Height int
	// Tiled says the level is stored in tiles that are read on their
	// own, so a crop decodes only the tiles under it. Levels that are not
	// tiled (strips, flat formats, decoder reductions) are decoded from
	// their first row down to the last row a crop needs.
	Tiled bool
	// TileWidth and TileHeight are the stored tile size of a tiled level,
	// zero when unknown (then only the region itself is counted). A
	// decoder decodes whole tiles: a one-pixel crop of a level stored as
	// one 8192×8192 tile decodes and holds all of it.
	TileWidth, TileHeight int
	// RowsPerStrip is the height of the strips an untiled level is stored
	// in (TIFF), zero when unknown or not stored in strips. A decoder
	// decodes whole strips, so the rows decoded end at a strip's end.
	RowsPerStrip int
}

// Image is what the planner needs to know about a source image.
type Image struct {
	Width, Height int
	// Levels lists the cheaply readable levels, largest first; Levels[0]
	// has the full Width and Height. An empty list means only full size.
	Levels []Level
}

// Limits are the server's limits on output images. Zero means no limit.
//
// As info.json tells clients (3.0 §5.2: "If maxWidth is specified and
// maxHeight is not, then clients should infer that maxHeight = maxWidth"),
// a zero MaxHeight with a non-zero MaxWidth limits the height to MaxWidth;
// the same holds inside FormatLimits.
//
// Upscaling (the version 3 "^" sizes, sizes above the region in version 2)
// is served only when MaxWidth or MaxArea is set: 3.0 §5.7 says "A server
// that supports sizeUpscaling MUST specify maxWidth or maxArea", and an
// unbounded upscale is a denial-of-service vector (2.1 §10). Without such a
// limit a request that needs upscaling gets 501 Not Implemented, as 3.0 §4.2
// prescribes for servers that do not support upscaling.
type Limits struct {
	MaxWidth, MaxHeight int
	MaxArea             int64
	// PerFormat holds further limits for single output formats (e.g. GIF).
	// They apply on top of the global ones.
	PerFormat map[iiif.Format]FormatLimits
	// MaxSourcePixels bounds the pixels a request may have decoded from
	// the source (see DecodeArea): decompression bombs and huge images
	// without a pyramid are refused from their headers, before any pixel
	// is decoded. Zero means no limit.
	MaxSourcePixels int64
}

// Tighter returns the tighter of two limits where 0 means none: the
// smaller non-zero one. Settings, plugins' degraded access and per-format
// limits are all combined with it.
func Tighter[T int | int64](a, b T) T {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// Fits reports whether a w×h output is within the global limits (not
// the per-format ones), by the rule info.json states them with
// (iiif.Within).
func (l Limits) Fits(w, h int) bool { return iiif.Within(w, h, l.MaxWidth, l.MaxHeight, l.MaxArea) }

// FormatLimits are the limits for one output format. Zero means no limit.
type FormatLimits struct {
	MaxWidth, MaxHeight int
	MaxArea             int64
}

// Plan is everything needed to produce a response, known before decoding.
type Plan struct {
	// Region is the requested region in full-resolution pixel coordinates,
	// already clipped to the image; never empty.
	Region image.Rectangle
	// Level is the index into Image.Levels to read from (0 when the image
	// has no levels).
	Level int
	// LevelRegion is Region mapped to the pixel grid of the chosen level
	// (rounded outward, clipped to the level). It is what the pixel engine
	// crops before scaling.
	LevelRegion image.Rectangle
	// Width and Height are the exact size of the scaled region, before
	// rotation.
	Width, Height int
	// OutWidth and OutHeight are the size of the final image after rotation
	// (the bounding box for angles that are not multiples of 90).
	OutWidth, OutHeight int
	Rotation            float64 // clockwise degrees, 0 <= Rotation < 360
	Mirror              bool
	// Decoded is the number of source pixels the decoder produces for
	// LevelRegion (see DecodeArea), whole tiles and strips counted; it is
	// what MaxSourcePixels bounds.
	Decoded int64
	// Resident is the number of source pixels the decoder holds at once at
	// least: LevelRegion widened to whole tiles on tiled levels, or
	// LevelRegion and one whole strip on untiled ones. The memory a render
	// reserves is counted from it.
	Resident int64
	// Orientation, when 2 to 8, is the EXIF orientation the stored
	// pixels are shown with (see Orient): LevelRegion is then in stored
	// pixels, and the engine turns or mirrors the crop by it before
	// scaling. 0 or 1: stored as shown.
	Orientation int
	Quality     iiif.Quality
	Format      iiif.Format
	// Canonical is the canonical form of the request for this image: equal
	// requests (full vs 0,0,W,H; max vs W,) have equal Canonical values.
	Canonical iiif.Request
}
