// Package tiles knows stored tiles: which stored tile of a source a plan
// is exactly (so that its bytes can be sent as they are), how to make a
// stored TIFF JPEG tile a complete JPEG without decoding it, and which
// stored tiles of a tile pyramid a plan needs and how they form the
// image the plan is cut from. It is pure Go, shared by the native server
// and the WebAssembly hosts, which must pass the same tiles through.
package tiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
	"github.com/iiifd/iiifd/internal/probe"
)

// ErrNoPassthrough says a stored tile turned out not to be usable as it
// is; the caller then renders the plan instead.
var ErrNoPassthrough = errors.New("tiles: stored tile cannot pass through")

// MaxTileBytes bounds one stored tile: a larger one is implausible and
// never read whole.
const MaxTileBytes = 64 << 20

// TIFFRef names one stored tile of a TIFF level, and how much of it the
// plan wants: Width×Height pixels from X,Y in the tile (0,0 but for the
// sub-tile crops of TIFFCrop).
type TIFFRef struct {
	Level         *probe.TIFFLevel
	Index         int
	X, Y          int
	Width, Height int
}

// Cropped reports whether the plan wants less than the whole stored tile:
// an edge tile, which TIFF pads to the full tile size, or a part of a
// tile (TIFFCrop). Its bytes must be cut to the part (losslessly, in the
// DCT domain) before they are sent.
func (t TIFFRef) Cropped() bool {
	return t.X > 0 || t.Y > 0 || t.Width < t.Level.TileWidth || t.Height < t.Level.TileLength
}

// Part is the part of the stored tile the plan wants, in the tile's
// pixels.
func (t TIFFRef) Part() image.Rectangle {
	return image.Rect(t.X, t.Y, t.X+t.Width, t.Y+t.Height)
}

// MCU is the alignment TIFFCrop asks of a part's top-left corner in its
// tile: the largest JPEG MCU of the tiles that pass through (16 pixels,
// for 4:2:0 and 4:2:2 chroma; 8 for 4:4:4 and grey divides it). A
// lossless crop can only start on an MCU boundary, where the DCT blocks
// kept are whole and decode alone.
const MCU = 16

// TIFFCrop reports whether the plan is, unscaled and unchanged, a part of
// one stored JPEG tile of its TIFF level whose top-left corner is on an
// MCU boundary of the tile, and which: such a part is cut from the stored
// tile in the DCT domain, with the exact stored pixels, as edge tiles
// are. The 256-pixel tiles a viewer asks of a pyramid stored in 512-pixel
// tiles are all such parts. The conditions on the level are TIFFTile's;
// whole tiles qualify too (not Cropped).
func TIFFCrop(hdr probe.Info, p *plan.Plan) (TIFFRef, bool) {
	t, gray, ok := jpegTiled(hdr.Levels[p.Level])
	r := p.LevelRegion
	if !ok || !Unchanged(p, gray) || r.Empty() || r.Min.X < 0 || r.Min.Y < 0 ||
		r.Max.X > t.Width || r.Max.Y > t.Height || p.Width != r.Dx() || p.Height != r.Dy() {
		return TIFFRef{}, false
	}
	tw, tl := t.TileWidth, t.TileLength
	col, row := r.Min.X/tw, r.Min.Y/tl
	x, y := r.Min.X-col*tw, r.Min.Y-row*tl
	if (r.Max.X-1)/tw != col || (r.Max.Y-1)/tl != row || x%MCU != 0 || y%MCU != 0 {
		return TIFFRef{}, false
	}
	across, _ := t.Grid()
	return TIFFRef{Level: t, Index: row*across + col, X: x, Y: y, Width: r.Dx(), Height: r.Dy()}, true
}

// TIFFTile reports whether the plan is exactly one stored JPEG tile of its
// TIFF level, unscaled and unchanged, and which. An edge tile (last
// column or row) qualifies for the part of it inside the level: TIFF pads
// it to the full tile size, so the stored tile must be cropped (see
// TIFFRef.Cropped); the crop starts at the tile's top-left corner, on a
// JPEG MCU boundary, so it can be done without decoding.
//
// Only 8-bit JPEG tiles of three-sample RGB or YCbCr levels and of grey
// (min-is-black) levels pass through; anything else (CMYK, alpha, planar
// storage) goes through libvips. A level with an embedded ICC profile
// passes through with the profile spliced into the tile (SpliceTIFF), so
// that a viewer shows it in the same colours as libvips' sRGB renders.
func TIFFTile(hdr probe.Info, p *plan.Plan) (TIFFRef, bool) {
	t, gray, ok := jpegTiled(hdr.Levels[p.Level])
	if !ok || !Unchanged(p, gray) {
		return TIFFRef{}, false
	}
	r, tw, tl := p.LevelRegion, t.TileWidth, t.TileLength
	if r.Min.X < 0 || r.Min.Y < 0 || r.Min.X%tw != 0 || r.Min.Y%tl != 0 ||
		r.Max.X != min(r.Min.X+tw, t.Width) || r.Max.Y != min(r.Min.Y+tl, t.Height) ||
		p.Width != r.Dx() || p.Height != r.Dy() {
		return TIFFRef{}, false
	}
	across, _ := t.Grid()
	return TIFFRef{Level: t, Index: r.Min.Y/tl*across + r.Min.X/tw, Width: r.Dx(), Height: r.Dy()}, true
}

// jpegTiled returns the TIFF level of lv when its tiles are plain JPEGs
// that decode as they are: 8-bit, interleaved RGB or YCbCr, or grey
// (min-is-black), read at the level's own scale; and whether it is grey.
func jpegTiled(lv probe.Level) (*probe.TIFFLevel, bool, bool) {
	t := lv.TIFF
	if t == nil || !t.Tiled() || lv.Shrink > 1 || t.Compression != 7 || t.PlanarConfig != 1 ||
		t.BitsPerSample != 8 || t.SampleFormat != 1 {
		return nil, false, false
	}
	switch {
	case t.SamplesPerPixel == 3 && (t.Photometric == 2 || t.Photometric == 6):
		return t, false, true
	case t.SamplesPerPixel == 1 && t.Photometric == 1:
		return t, true, true
	}
	return nil, false, false
}

// TIFFBlock is the block of stored JPEG tiles of a TIFF level under a
// plan's region, row by row, Across to a row, each cut to the part inside
// the level (edge tiles are Cropped), and the level position of the
// block's top-left pixel.
type TIFFBlock struct {
	Tiles  []TIFFRef
	Across int
	Origin image.Point
}

// TIFFTiles returns the block of stored JPEG tiles under p's region when
// the level's tiles are plain JPEGs (as for TIFFTile) and there are at
// most maxTiles of them: an engine can then render p from the tiles'
// bytes, as from a tile pyramid's, without opening the TIFF. Whether the
// rendering changes the pixels does not matter here; a level with an ICC
// profile does not qualify, as rendering it colour-manages the pixels.
func TIFFTiles(hdr probe.Info, p *plan.Plan, maxTiles int) (TIFFBlock, bool) {
	t, _, ok := jpegTiled(hdr.Levels[p.Level])
	r := p.LevelRegion
	if !ok || t.ICC || r.Empty() || r.Min.X < 0 || r.Min.Y < 0 || r.Max.X > t.Width || r.Max.Y > t.Height {
		return TIFFBlock{}, false
	}
	tw, tl := t.TileWidth, t.TileLength
	c0, c1 := r.Min.X/tw, (r.Max.X-1)/tw
	r0, r1 := r.Min.Y/tl, (r.Max.Y-1)/tl
	n := (c1 - c0 + 1) * (r1 - r0 + 1)
	if n > maxTiles {
		return TIFFBlock{}, false
	}
	across, _ := t.Grid()
	b := TIFFBlock{Across: c1 - c0 + 1, Origin: image.Pt(c0*tw, r0*tl), Tiles: make([]TIFFRef, 0, n)}
	for row := r0; row <= r1; row++ {
		for col := c0; col <= c1; col++ {
			b.Tiles = append(b.Tiles, TIFFRef{Level: t, Index: row*across + col,
				Width: min(tw, t.Width-col*tw), Height: min(tl, t.Height-row*tl)})
		}
	}
	return b, true
}

// TIFFJoin returns the block of stored JPEG tiles under p's region when
// p is, unscaled and unchanged (as for TIFFTile), a region over several
// tiles of its level whose corner is on an MCU boundary of the block, the
// tiles' size a multiple of the MCU, and no more than maxTiles tiles: the
// region is then the tiles' coefficients, joined in the DCT domain into
// one JPEG (a 512-pixel tile of a pyramid stored in 256-pixel tiles),
// the exact stored pixels without decoding or encoding. Levels with an
// ICC profile do not qualify (TIFFTiles).
func TIFFJoin(hdr probe.Info, p *plan.Plan, maxTiles int) (TIFFBlock, bool) {
	t, gray, ok := jpegTiled(hdr.Levels[p.Level])
	if !ok || !Unchanged(p, gray) || p.Width != p.LevelRegion.Dx() || p.Height != p.LevelRegion.Dy() ||
		t.TileWidth%MCU != 0 || t.TileLength%MCU != 0 {
		return TIFFBlock{}, false
	}
	b, ok := TIFFTiles(hdr, p, maxTiles)
	if !ok || len(b.Tiles) < 2 {
		return TIFFBlock{}, false
	}
	if c := p.LevelRegion.Min.Sub(b.Origin); c.X%MCU != 0 || c.Y%MCU != 0 {
		return TIFFBlock{}, false
	}
	return b, true
}

// SpliceTIFF reads a stored JPEG tile and its level's JPEG tables from
// the TIFF file r and returns them as one complete JPEG (see SpliceJPEG).
func SpliceTIFF(ctx context.Context, r io.ReaderAt, t TIFFRef) ([]byte, error) {
	damaged := func(err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fault.Wrap(fault.Internal, err, "the source image is damaged or unreadable")
	}
	br, err := t.Level.TileRange(r, t.Index)
	if err != nil {
		return nil, damaged(err)
	}
	if br.Length < 4 || br.Length > MaxTileBytes {
		return nil, ErrNoPassthrough // sparse, or implausible: let libvips judge
	}
	tile := make([]byte, br.Length)
	if n, err := r.ReadAt(tile, br.Offset); n < len(tile) {
		return nil, damaged(fmt.Errorf("tiles: reading tile %d: %w", t.Index, err))
	}
	tables, err := t.Level.JPEGTables(r)
	if err != nil {
		return nil, damaged(err)
	}
	b, err := SpliceJPEG(tables, tile, t.Level.Photometric == 2)
	if err != nil || !t.Level.HasICCProfile() {
		return b, err
	}
	icc, err := t.Level.ICCProfile(r)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, ErrNoPassthrough // libvips judges the profile
	}
	return EmbedICC(b, icc)
}

// iccChunk is the most profile bytes one APP2 segment holds: a segment's
// length field counts itself (2), the "ICC_PROFILE\0" tag (12) and the
// sequence number and count (2), and tops out at 65535.
const iccChunk = 65535 - 2 - 12 - 2

// EmbedICC returns the complete JPEG j with the ICC profile icc in APP2
// "ICC_PROFILE" segments right after its SOI, split into numbered chunks
// as the ICC specification (annex B) says, without touching the coded
// data. A stored tile sent as it is would otherwise lose its source's
// colour profile, and a viewer would read wide-gamut pixels as sRGB. A
// profile needing more than 255 chunks (about 16 MB) cannot be embedded:
// the answer is ErrNoPassthrough, and the caller renders instead.
func EmbedICC(j, icc []byte) ([]byte, error) {
	if len(j) < 4 || !bytes.HasPrefix(j, soi) {
		return nil, ErrNoPassthrough
	}
	if len(icc) == 0 {
		return j, nil
	}
	n := (len(icc) + iccChunk - 1) / iccChunk
	if n > 255 {
		return nil, ErrNoPassthrough
	}
	out := make([]byte, 0, len(j)+len(icc)+n*18)
	out = append(out, soi...)
	for i := range n {
		part := icc[i*iccChunk : min(len(icc), (i+1)*iccChunk)]
		size := 2 + 12 + 2 + len(part)
		out = append(out, 0xFF, 0xE2, byte(size>>8), byte(size))
		out = append(out, "ICC_PROFILE\x00"...)
		out = append(out, byte(i+1), byte(n))
		out = append(out, part...)
	}
	return append(out, j[2:]...), nil
}

var (
	soi = []byte{0xFF, 0xD8}
	eoi = []byte{0xFF, 0xD9}
	// adobeRGB is an Adobe APP14 segment with transform 0: the three
	// components are R, G and B, not YCbCr. TIFF's JPEG tiles carry no
	// JFIF or Adobe marker, and without one decoders guess YCbCr for
	// three components unless the component ids spell "RGB".
	adobeRGB = []byte{0xFF, 0xEE, 0x00, 0x0E, 'A', 'd', 'o', 'b', 'e', 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00}
)

// SpliceJPEG makes a complete JPEG of a TIFF JPEG tile without decoding
// it: SOI, an Adobe marker for RGB-coded tiles, the tables of the TIFF's
// JPEGTables tag (an abbreviated stream: its own SOI and EOI dropped) and
// the tile after its SOI. tables may be nil when the tile holds its own.
func SpliceJPEG(tables, tile []byte, rgb bool) ([]byte, error) {
	if len(tile) < 4 || !bytes.HasPrefix(tile, soi) {
		return nil, ErrNoPassthrough
	}
	if len(tables) > 0 && (len(tables) < 4 || !bytes.HasPrefix(tables, soi) || !bytes.HasSuffix(tables, eoi)) {
		return nil, ErrNoPassthrough
	}
	out := make([]byte, 0, len(tables)+len(tile)+len(adobeRGB))
	out = append(out, soi...)
	if rgb {
		out = append(out, adobeRGB...)
	}
	if len(tables) > 0 {
		out = append(out, tables[2:len(tables)-2]...)
	}
	return append(out, tile[2:]...), nil
}

// passQuality reports whether a quality leaves a source of the given
// kind unchanged: default always, color for colour sources, gray for grey.
func passQuality(q iiif.Quality, gray bool) bool {
	switch q {
	case iiif.QualityDefault:
		return true
	case iiif.QualityColor:
		return !gray
	case iiif.QualityGray:
		return gray
	}
	return false
}

// Unchanged reports whether p keeps the stored pixels' orientation and
// encoding, the conditions of every passthrough besides geometry. A
// source shown with an EXIF orientation never passes through: its stored
// tiles are sideways or mirrored.
func Unchanged(p *plan.Plan, gray bool) bool {
	return p.Rotation == 0 && !p.Mirror && p.Orientation <= 1 && p.Format == iiif.FormatJPG && passQuality(p.Quality, gray)
}
