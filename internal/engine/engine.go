// Package engine holds what every image engine of iiifd is given and
// what it promises: the inputs (an image file or reader, a block of
// stored tiles, an overlay), the encoder settings, and the media types of
// the output formats. It is pure Go with no cgo, so that the request
// pipeline, which is typed by these values, builds for every target:
// natively, where package pixels renders with libvips, and as
// WebAssembly, where a pure-Go engine renders at the edge and in the
// browser. The engine interface itself is defined where it is used
// (service.Engine).
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/probe"
)

// Input names the image to read and the resolution level to read from it.
type Input struct {
	// Path is the image's file on local disk. When it is set, the engine
	// reads the file itself: the fast path.
	Path string
	// Reader and Size give the image's bytes when Path is empty, as for
	// an object in a remote store. Only the bytes a render needs are
	// read: headers, and for tiled formats (TIFF, JPEG 2000) the tiles
	// under the region. ReadAt may be called from the engine's own
	// threads, one call at a time per render; a call still running when
	// the render's context is done is abandoned, not waited for, so it
	// may outlive the render and must tolerate the reader being closed
	// meanwhile. Errors it returns fail the render with a 502 fault, or
	// with the reader's own fault when it has one (see ReadFault).
	Reader io.ReaderAt
	Size   int64
	// Level says how to load the level the plan was made for, as the
	// probe package reported it: Page (TIFF page, JPEG 2000 resolution
	// reduction), SubIFD (TIFF sub-IFD; -1 when unused, and note that the
	// zero value 0 selects the first sub-IFD of a TIFF) and Shrink (JPEG
	// shrink-on-load; 0 or 1 for none). Width, Height and the tiling are
	// not used.
	Level probe.Level
	// Overlay, when set, is composited over the output.
	Overlay *Overlay
}

// Overlay is an image composited over the output after every geometric
// step (a watermark): PNG bytes, placed with their top-left corner at X,
// Y of the output (parts outside are cut off), with Opacity 0..1.
type Overlay struct {
	PNG     []byte
	X, Y    int
	Opacity float64
}

// Tile is one encoded stored tile of a Mosaic and the size its pixels
// must have.
type Tile struct {
	Data          []byte
	Width, Height int
}

// Mosaic is a block of stored tiles of one grid, all encoded (JPEG, PNG,
// WebP...: whatever the engine reads), that together form one image: the
// level region a plan is cropped from.
type Mosaic struct {
	// Tiles lists the tiles row by row, Across to a row. Every tile is
	// TileWidth×TileHeight but those of the last column and row, which
	// may be narrower and shorter.
	Tiles                 []Tile
	Across                int
	TileWidth, TileHeight int
	// Overlay, when set, is composited over the output.
	Overlay *Overlay
}

// Size returns the size of the image the tiles form. Check must have
// accepted m.
func (m *Mosaic) Size() (w, h int) {
	down := len(m.Tiles) / m.Across
	last := m.Tiles[len(m.Tiles)-1]
	return (m.Across-1)*m.TileWidth + last.Width, (down-1)*m.TileHeight + last.Height
}

// Check reports whether m's tiles form one image: a full grid whose
// tiles all have the grid's size, but for the last column and row, which
// may be narrower and shorter, alike in every row and column.
func (m *Mosaic) Check() error {
	if m.Across < 1 || len(m.Tiles) == 0 || len(m.Tiles)%m.Across != 0 || m.TileWidth < 1 || m.TileHeight < 1 {
		return fmt.Errorf("engine: mosaic of %d tiles, %d across, grid %dx%d", len(m.Tiles), m.Across, m.TileWidth, m.TileHeight)
	}
	down := len(m.Tiles) / m.Across
	lastW, lastH := m.Tiles[m.Across-1].Width, m.Tiles[len(m.Tiles)-1].Height
	if lastW < 1 || lastW > m.TileWidth || lastH < 1 || lastH > m.TileHeight {
		return fmt.Errorf("engine: mosaic edge tiles %dx%d in a %dx%d grid", lastW, lastH, m.TileWidth, m.TileHeight)
	}
	for i, t := range m.Tiles {
		wantW, wantH := m.TileWidth, m.TileHeight
		if i%m.Across == m.Across-1 {
			wantW = lastW
		}
		if i/m.Across == down-1 {
			wantH = lastH
		}
		if t.Width != wantW || t.Height != wantH {
			return fmt.Errorf("engine: mosaic tile %d is %dx%d, want %dx%d", i, t.Width, t.Height, wantW, wantH)
		}
	}
	return nil
}

// Holder is an io.ReaderAt that holds some of its bytes in memory, such
// as the tiles of a render fetched before it was admitted. An engine may
// serve reads of held bytes on the calling thread, without the goroutine
// that guards other reads against hanging.
type Holder interface {
	io.ReaderAt
	// ReadHeld fills p with the bytes at off if it holds all of them in
	// memory, without blocking, and reports whether it did; when it did
	// not, p may be left as it was and the bytes are read as from any
	// reader. Holding and copying are one step, so the bytes cannot be
	// let go of between the two.
	ReadHeld(p []byte, off int64) bool
}

// Small reads of an Input's Reader, such as libtiff's of IFD entries and
// tag arrays, or the 4 KiB a JPEG or PNG decoder asks for at a time, are
// served from windows read ahead: a read of at most SmallRead bytes asks
// for ReadWindow bytes at its offset; larger reads ask for exactly their
// bytes. Callers that prepare an Input's bytes ahead of a render use
// these to know which they need.
const (
	SmallRead  = 4 << 10
	ReadWindow = 16 << 10
)

// ReadFault turns a failed read of a source into an error for the
// client: a fault of the reader's own (a backend that says 404 or 504) as
// it is, else a bad gateway, or a gateway timeout when the reader gave up
// waiting.
func ReadFault(err error) error {
	var se interface {
		error
		HTTPStatus() int
	}
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		return fault.Wrap(fault.GatewayTimeout, err, "the source image could not be read in time")
	}
	return fault.Wrap(fault.BadGateway, err, "the source image could not be read")
}

// contentTypes are the media types of the output formats iiifd knows.
var contentTypes = map[iiif.Format]string{
	iiif.FormatJPG:  "image/jpeg",
	iiif.FormatPNG:  "image/png",
	iiif.FormatWebP: "image/webp",
	iiif.FormatGIF:  "image/gif",
	iiif.FormatTIF:  "image/tiff",
	iiif.FormatJP2:  "image/jp2",
	iiif.FormatAVIF: "image/avif",
	iiif.FormatHEIC: "image/heic",
	iiif.FormatPDF:  "application/pdf",
}

// ContentType returns the media type of an output format, or
// "application/octet-stream" for a format it does not know.
func ContentType(f iiif.Format) string {
	if t, ok := contentTypes[f]; ok {
		return t
	}
	return "application/octet-stream"
}

// EncodeOptions tunes the encoders. Zero fields take the defaults noted.
type EncodeOptions struct {
	JPEGQuality int // 1..100; default 85
	WebPQuality int // 1..100; default 80
	AVIFQuality int // 1..100; default 60
	HEICQuality int // 1..100; default 60
	JP2Quality  int // 1..100; default 48 (libvips' default)
	// PNGCompression is the zlib level 1..9. Zero is auto: level 6 up to
	// 2048×2048 pixels; past that level 1 with the sub row filter,
	// faster where zlib dominates, for files of about the same size.
	PNGCompression int
	// The efforts trade CPU for size (higher is slower and smaller);
	// zero takes the default noted, so libvips' effort 0 cannot be
	// asked for. AV1 encoding is slow: on a 512x512 tile libvips' own
	// default (4) takes about 9 times as long as 2 for files some 3%
	// smaller, hence the lower default.
	WebPEffort int // 1..6; default 4
	AVIFEffort int // 1..9; default 2
	HEICEffort int // 1..9; default 4
	GIFEffort  int // 1..10; default 7
}

// Default encoder settings.
const (
	DefaultJPEGQuality    = 85
	DefaultWebPQuality    = 80
	DefaultAVIFQuality    = 60
	DefaultHEICQuality    = 60
	DefaultJP2Quality     = 48
	DefaultPNGCompression = 6
	DefaultWebPEffort     = 4
	DefaultAVIFEffort     = 2
	DefaultHEICEffort     = 4
	DefaultGIFEffort      = 7
)

// Resolved returns o with every zero field set to its default and every
// field clamped to its range's top, as the encoders take them.
func (o EncodeOptions) Resolved() EncodeOptions {
	or := func(v, def, top int) int {
		if v <= 0 {
			return def
		}
		return min(v, top)
	}
	return EncodeOptions{
		JPEGQuality:    or(o.JPEGQuality, DefaultJPEGQuality, 100),
		WebPQuality:    or(o.WebPQuality, DefaultWebPQuality, 100),
		AVIFQuality:    or(o.AVIFQuality, DefaultAVIFQuality, 100),
		HEICQuality:    or(o.HEICQuality, DefaultHEICQuality, 100),
		JP2Quality:     or(o.JP2Quality, DefaultJP2Quality, 100),
		PNGCompression: or(o.PNGCompression, DefaultPNGCompression, 9),
		WebPEffort:     or(o.WebPEffort, DefaultWebPEffort, 6),
		AVIFEffort:     or(o.AVIFEffort, DefaultAVIFEffort, 9),
		HEICEffort:     or(o.HEICEffort, DefaultHEICEffort, 9),
		GIFEffort:      or(o.GIFEffort, DefaultGIFEffort, 10),
	}
}
