package probe

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// TIFFLevel says how one resolution level of a TIFF is stored: enough to
// fetch its tiles as they are in the file (for passing stored JPEG tiles
// through without decoding them) without reading any tile or the whole
// offset arrays at probe time.
//
// A TIFFLevel holds no reader, so an Info can be cached and shared; the
// methods that fetch data take a ReaderAt on the same file.
type TIFFLevel struct {
	Width, Height int
	// TileWidth and TileLength are zero when the level is stored in strips.
	TileWidth, TileLength int
	// RowsPerStrip is the strip height (clamped to Height) when the level
	// is stored in strips, and zero when it is tiled.
	RowsPerStrip    int
	SamplesPerPixel int
	BitsPerSample   int    // of the first sample; libtiff requires all to match
	SampleFormat    int    // 1 unsigned, 2 signed, 3 float (TIFF default 1)
	Compression     int    // TIFF code: 1 none, 5 LZW, 7 JPEG, 8 deflate, 34712 JPEG 2000, ...
	Photometric     int    // TIFF code: 1 min-is-black, 2 RGB, 6 YCbCr, ...; -1 when absent
	PlanarConfig    int    // 1 chunky (interleaved), 2 planar
	NewSubfileType  uint32 // bit 0: reduced resolution; bit 1: page; bit 2: mask
	// ICC says the IFD embeds an ICC profile, which libvips applies when
	// it renders the level: pixels taken from the stored tiles for a
	// rendering would skip it.
	ICC bool

	bigEndian bool
	size      int64     // file size, to check the ranges handed out
	ifd       int64     // file offset of the level's IFD
	offsets   tiffArray // TileOffsets or StripOffsets
	counts    tiffArray // TileByteCounts or StripByteCounts; count 0 when absent
	tables    tiffArray // JPEGTables; count 0 when absent
	icc       tiffArray // InterColorProfile; count 0 when absent
}

// ByteRange is a run of bytes in a file.
type ByteRange struct {
	Offset, Length int64
}

// Tiled reports whether the level is stored in tiles rather than strips.
func (l *TIFFLevel) Tiled() bool { return l.TileWidth > 0 }

// Grid returns the number of tiles (or strips) across and down one plane of
// the level. Tile i of plane p, at column x and row y, has index
// p*across*down + y*across + x.
func (l *TIFFLevel) Grid() (across, down int) {
	if l.Tiled() {
		return ceilDiv(l.Width, l.TileWidth), ceilDiv(l.Height, l.TileLength)
	}
	return 1, ceilDiv(l.Height, l.RowsPerStrip)
}

// Chunks returns the number of tile (or strip) offsets the level stores.
func (l *TIFFLevel) Chunks() int { return int(min(l.offsets.count, math.MaxInt32)) }

// maxRangeBatch bounds one TileRanges call, so that a caller's mistake
// cannot turn into a huge allocation.
const maxRangeBatch = 1 << 16

// TileRange returns where tile (or strip) i is stored. A zero length means
// the tile is absent (a sparse file); readers then treat it as empty.
func (l *TIFFLevel) TileRange(r io.ReaderAt, i int) (ByteRange, error) {
	rs, err := l.TileRanges(r, i, 1)
	if err != nil {
		return ByteRange{}, err
	}
	return rs[0], nil
}

// TileRanges returns where tiles (or strips) first to first+n-1 are stored,
// with two reads at most: the tiles of one row are adjacent in the arrays,
// so a row of a region costs one call. n is at most 65536.
func (l *TIFFLevel) TileRanges(r io.ReaderAt, first, n int) ([]ByteRange, error) {
	if n > maxRangeBatch {
		return nil, fmt.Errorf("probe: TileRanges: %d tiles asked for, at most %d", n, maxRangeBatch)
	}
	if l.counts.count == 0 {
		return nil, &FormatError{Format: TIFF, Offset: -1, Reason: "level has no tile byte counts", Err: ErrMalformed}
	}
	order := l.order()
	offs, err := l.offsets.read(r, order, first, n)
	if err != nil {
		return nil, fmt.Errorf("probe: reading tile offsets: %w", err)
	}
	lens, err := l.counts.read(r, order, first, n)
	if err != nil {
		return nil, fmt.Errorf("probe: reading tile byte counts: %w", err)
	}
	rs := make([]ByteRange, n)
	for i := range rs {
		if offs[i] > uint64(l.size) || lens[i] > uint64(l.size)-offs[i] {
			return nil, &FormatError{Format: TIFF, Offset: l.offsets.off, Err: ErrMalformed,
				Reason: fmt.Sprintf("tile %d at %d (+%d bytes) lies past the end of the file", first+i, offs[i], lens[i])}
		}
		rs[i] = ByteRange{Offset: int64(offs[i]), Length: int64(lens[i])}
	}
	return rs, nil
}

// IFD returns the file offset of the level's image file directory,
// where a reader such as libtiff starts reading the level.
func (l *TIFFLevel) IFD() int64 { return l.ifd }

// TileArrays returns where the level's tile (or strip) offsets and byte
// counts are stored in the file, for reading them ahead in one request
// each: libtiff reads both whole when it opens a level, and TileRanges
// reads parts of them. Arrays small enough to be held in their IFD
// entries take no bytes of their own and are not listed.
func (l *TIFFLevel) TileArrays() []ByteRange {
	var out []ByteRange
	for _, a := range []tiffArray{l.offsets, l.counts} {
		if r, ok := a.stored(); ok {
			out = append(out, r)
		}
	}
	return out
}

// JPEGTablesRange returns where the level's JPEGTables are stored in the
// file, if it has tables not held in their IFD entry.
func (l *TIFFLevel) JPEGTablesRange() (ByteRange, bool) {
	return l.tables.stored()
}

// stored returns where the array's values are stored in the file, apart
// from its IFD entry; false when they are held in the entry or there are
// none. locate checked that the values lie within the file.
func (a tiffArray) stored() (ByteRange, bool) {
	if a.off < 0 || a.count == 0 {
		return ByteRange{}, false
	}
	return ByteRange{Offset: a.off, Length: int64(a.count) * int64(typeSize(a.typ))}, true
}

// maxJPEGTables bounds the JPEGTables read; real tables are under 1 KiB.
const maxJPEGTables = 1 << 20

// JPEGTables returns the level's shared JPEG tables (tag 347): an
// abbreviated JPEG stream, SOI, DQT/DHT segments, EOI, that each stored JPEG
// tile needs before it can be decoded on its own. It returns nil, nil when
// the level has none.
func (l *TIFFLevel) JPEGTables(r io.ReaderAt) ([]byte, error) {
	a := l.tables
	if a.count == 0 {
		return nil, nil
	}
	if a.count > maxJPEGTables {
		return nil, &FormatError{Format: TIFF, Offset: a.off, Reason: fmt.Sprintf("JPEGTables of %d bytes", a.count), Err: ErrMalformed}
	}
	b := make([]byte, a.count)
	if a.off < 0 {
		copy(b, a.inline[:])
		return b, nil
	}
	if k, err := r.ReadAt(b, a.off); k < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("probe: reading JPEGTables: %w", err)
	}
	return b, nil
}

// MaxICCProfile bounds the ICC profile read for a level: real profiles
// are a few KiB, rarely a few hundred; one larger than this is not
// trusted, and its tiles are rendered instead of passed through.
const MaxICCProfile = 4 << 20

// HasICCProfile reports whether the level carries an embedded ICC profile
// (tag 34675, InterColorProfile), whose colours its stored pixels are in.
func (l *TIFFLevel) HasICCProfile() bool { return l.icc.count > 0 }

// ICCProfileRange returns where the level's ICC profile is stored in the
// file, if it has one not held in its IFD entry.
func (l *TIFFLevel) ICCProfileRange() (ByteRange, bool) {
	return l.icc.stored()
}

// ICCProfile returns the level's embedded ICC profile (tag 34675), or nil,
// nil when it has none. A passed-through stored tile needs it: without
// it a viewer reads the tile's pixels as sRGB, and a wide-gamut source
// (AdobeRGB, ProPhoto) looks desaturated.
func (l *TIFFLevel) ICCProfile(r io.ReaderAt) ([]byte, error) {
	a := l.icc
	if a.count == 0 {
		return nil, nil
	}
	if a.count > MaxICCProfile || typeSize(a.typ) != 1 {
		return nil, &FormatError{Format: TIFF, Offset: a.off, Reason: fmt.Sprintf("ICC profile of %d values of type %d", a.count, a.typ), Err: ErrMalformed}
	}
	b := make([]byte, a.count)
	if a.off < 0 {
		copy(b, a.inline[:])
		return b, nil
	}
	if k, err := r.ReadAt(b, a.off); k < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("probe: reading the ICC profile: %w", err)
	}
	return b, nil
}

func (l *TIFFLevel) order() binary.ByteOrder {
	if l.bigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func ceilDiv(a, b int) int {
	if b <= 0 {
		return 0
	}
	return int((int64(a) + int64(b) - 1) / int64(b))
}

// maxDim is the largest width or height accepted from any header.
const maxDim = math.MaxInt32

// readTIFF probes a TIFF or BigTIFF file. Levels come from the sub-IFDs of
// IFD 0 and from the later IFDs of the main chain (pages); see isReduction
// for which of them count as levels of IFD 0.
func readTIFF(src *source) (Info, error) {
	t, first, err := openTIFF(src, 0, src.size)
	if err != nil {
		return Info{}, err
	}
	seen := map[uint64]bool{first: true}
	d0, err := t.readIFD(first)
	if err != nil {
		return Info{}, err
	}
	l0, err := t.level(d0)
	if err != nil {
		return Info{}, err
	}
	orient, _, err := t.scalar(d0, tagOrientation, 0)
	if err != nil && !isFormatError(err) {
		return Info{}, err
	}
	if err != nil || orient > 8 {
		orient = 0 // libtiff ignores a bad orientation too
	}
	info := Info{
		Format:      TIFF,
		Width:       l0.Width,
		Height:      l0.Height,
		Bands:       l0.SamplesPerPixel,
		BitDepth:    l0.BitsPerSample,
		Orientation: int(orient),
		Levels:      []Level{tiffLevel(l0, 0, -1)},
	}
	add := func(l *TIFFLevel, page, sub int) {
		if !isReduction(l0, l) {
			return
		}
		for _, have := range info.Levels {
			if have.Width == l.Width && have.Height == l.Height {
				return
			}
		}
		info.Levels = append(info.Levels, tiffLevel(l, page, sub))
	}

	// readLevel reads the IFD at off, refusing one seen before (a cycle).
	readLevel := func(what string, off uint64) (*ifd, *TIFFLevel, error) {
		if seen[off] {
			return nil, nil, malformed(-1, "%s at offset %d was seen before (IFD cycle)", what, off)
		}
		seen[off] = true
		d, err := t.readIFD(off)
		if err != nil {
			return nil, nil, err
		}
		l, err := t.level(d)
		if err == nil && l.icc.count == 0 && l0.ICC {
			// A reduced level without a profile of its own shows the same
			// picture as IFD 0, in IFD 0's colours (libvips writes the
			// profile in sub-IFDs too, other writers do not).
			l.icc, l.ICC = l0.icc, true
		}
		return d, l, err
	}

	// Sub-IFDs of IFD 0, as libvips and bfconvert write pyramids. libvips'
	// subifd=N indexes this array, so the index is kept even when
	// entries are skipped.
	if e := d0.find(tagSubIFDs); e != nil {
		n := min(e.count, maxSubIFDs)
		for i := range n {
			off, err := t.uint(e, i)
			if err != nil {
				return Info{}, err
			}
			_, l, err := readLevel(fmt.Sprintf("sub-IFD %d", i), off)
			if err != nil {
				return Info{}, err
			}
			add(l, 0, int(i))
		}
	}

	// Pages of the main chain. A page as large as IFD 0 means a multi-page
	// document (or the planes of an OME-TIFF), not a pyramid, and nothing
	// after it will be a level either: stop there instead of walking
	// hundreds of pages, each of which may cost a ranged read.
	pages := []tiffPage{{d: d0, l: l0}}
	for page, off := 1, d0.next; off != 0 && page < maxPages; page++ {
		d, l, err := readLevel(fmt.Sprintf("IFD %d", page), off)
		if err != nil {
			return Info{}, err
		}
		if l.Width >= l0.Width && l.Height >= l0.Height {
			break
		}
		pages = append(pages, tiffPage{d: d, l: l, page: page})
		add(l, page, -1)
		off = d.next
	}
	slide, err := t.slide(pages)
	if err != nil {
		return Info{}, err
	}
	if slide != nil && slide.Vendor != "aperio" {
		// A vendor's TIFF dialect that only OpenSlide reads right
		// (sparse or overlapping tiles, levels described in XML): the
		// levels above are not to be trusted.
		return Info{Format: Slide, Width: l0.Width, Height: l0.Height, Slide: slide},
			&FormatError{Format: Slide, Offset: -1, Reason: "a " + slide.Vendor + " slide, whose levels OpenSlide reads", Err: ErrSizeUnknown}
	}
	info.Slide = slide

	slices.SortStableFunc(info.Levels[1:], func(a, b Level) int {
		if a.Width != b.Width {
			return b.Width - a.Width
		}
		return b.Height - a.Height
	})
	// Levels that passed the aspect test can still disagree by a pixel
	// (51x37 and 50x38 of 101x75); keep each level smaller in both
	// dimensions than the one before, so that callers may search them.
	kept := info.Levels[:1]
	for _, l := range info.Levels[1:] {
		if p := kept[len(kept)-1]; l.Width <= p.Width && l.Height <= p.Height {
			kept = append(kept, l)
		}
	}
	info.Levels = kept
	return info, nil
}

func tiffLevel(l *TIFFLevel, page, sub int) Level {
	return Level{
		Width: l.Width, Height: l.Height,
		TileWidth: l.TileWidth, TileHeight: l.TileLength,
		Page: page, SubIFD: sub,
		TIFF: l,
	}
}

// isReduction reports whether l is a reduced-resolution copy of the full
// image l0 that a reader may use as a pyramid level.
//
// The NewSubfileType reduced-resolution bit alone cannot decide it: Aperio
// SVS sets it on its label and macro photographs, and some writers leave
// it off real levels. So a level must be smaller, have the aspect ratio of
// l0 to within a pixel or two of rounding at its own scale, and store
// pixels the same way (samples, bits, sample format). When l0 is tiled the
// level must be tiled too: in SVS the one stripped page after IFD 0 is a
// thumbnail, and readers want tiled levels anyway.
func isReduction(l0, l *TIFFLevel) bool {
	if l.NewSubfileType&4 != 0 { // transparency mask
		return false
	}
	if l.Width > l0.Width || l.Height > l0.Height || (l.Width == l0.Width && l.Height == l0.Height) {
		return false
	}
	if l.SamplesPerPixel != l0.SamplesPerPixel || l.BitsPerSample != l0.BitsPerSample || l.SampleFormat != l0.SampleFormat {
		return false
	}
	if l0.Tiled() && !l.Tiled() {
		return false
	}
	// If l is l0 scaled by 1/f with each side off by e pixels, then
	// w*H - h*W = ex*H - ey*W, so |e| <= 2 bounds it by 2*(W+H).
	W, H := int64(l0.Width), int64(l0.Height)
	d := int64(l.Width)*H - int64(l.Height)*W
	return max(d, -d) <= 2*(W+H)
}

// level reads what Read and the passthrough need from one IFD, checking
// what any reader (libtiff included) would refuse.
func (t *tiffFile) level(d *ifd) (*TIFFLevel, error) {
	l := &TIFFLevel{bigEndian: t.order == binary.BigEndian, size: t.src.size}
	l.ifd, _ = t.abs(d.off, 0) // read already: within the file
	get := func(tag uint16, def uint64, lo, hi uint64) (int, bool, error) {
		v, ok, err := t.scalar(d, tag, def)
		if err != nil {
			return 0, false, err
		}
		if v < lo || v > hi {
			return 0, false, malformed(-1, "IFD at %d: tag %d has value %d, want %d to %d", d.off, tag, v, lo, hi)
		}
		return int(v), ok, nil
	}
	var err error
	var ok bool
	if l.Width, ok, err = get(tagImageWidth, 0, 0, maxDim); err != nil {
		return nil, err
	} else if !ok || l.Width == 0 {
		return nil, malformed(-1, "IFD at %d has no ImageWidth", d.off)
	}
	if l.Height, ok, err = get(tagImageLength, 0, 0, maxDim); err != nil {
		return nil, err
	} else if !ok || l.Height == 0 {
		return nil, malformed(-1, "IFD at %d has no ImageLength", d.off)
	}
	if l.SamplesPerPixel, _, err = get(tagSamplesPerPixel, 1, 1, math.MaxUint16); err != nil {
		return nil, err
	}
	if l.BitsPerSample, _, err = get(tagBitsPerSample, 1, 1, math.MaxUint16); err != nil {
		return nil, err
	}
	if l.SampleFormat, _, err = get(tagSampleFormat, 1, 1, math.MaxUint16); err != nil {
		return nil, err
	}
	if l.Compression, _, err = get(tagCompression, 1, 1, math.MaxUint16); err != nil {
		return nil, err
	}
	if l.Photometric, ok, err = get(tagPhotometric, 0, 0, math.MaxUint16); err != nil {
		return nil, err
	} else if !ok {
		l.Photometric = -1
	}
	if l.PlanarConfig, _, err = get(tagPlanarConfig, 1, 1, 2); err != nil {
		return nil, err
	}
	nst, _, err := t.scalar(d, tagNewSubfileType, 0)
	if err != nil {
		return nil, err
	}
	l.NewSubfileType = uint32(nst)
	// The old SubfileType tag says "reduced resolution" with the value 2.
	if old, _, err := get(tagSubfileType, 0, 0, math.MaxUint16); err != nil {
		return nil, err
	} else if old == 2 {
		l.NewSubfileType |= 1
	}

	offsetsTag, countsTag := uint16(tagStripOffsets), uint16(tagStripByteCounts)
	tw, hasTW, err := get(tagTileWidth, 0, 0, maxDim)
	if err != nil {
		return nil, err
	}
	tl, hasTL, err := get(tagTileLength, 0, 0, maxDim)
	if err != nil {
		return nil, err
	}
	if hasTW || hasTL {
		if tw == 0 || tl == 0 {
			return nil, malformed(-1, "IFD at %d has tile size %dx%d", d.off, tw, tl)
		}
		l.TileWidth, l.TileLength = tw, tl
		offsetsTag, countsTag = tagTileOffsets, tagTileByteCounts
	} else {
		rps, _, err := t.scalar(d, tagRowsPerStrip, math.MaxUint32)
		if err != nil {
			return nil, err
		}
		if rps == 0 {
			rps = math.MaxUint32 // libtiff reads 0 as "one strip"
		}
		l.RowsPerStrip = int(min(rps, uint64(l.Height)))
	}

	e := d.find(offsetsTag)
	if e == nil || e.count == 0 {
		return nil, malformed(-1, "IFD at %d has no tile or strip offsets", d.off)
	}
	if l.offsets, err = t.locate(e); err != nil {
		return nil, err
	}
	if e := d.find(countsTag); e != nil {
		if l.counts, err = t.locate(e); err != nil {
			return nil, err
		}
	}
	if e := d.find(tagJPEGTables); e != nil && e.count > 0 {
		if l.tables, err = t.locate(e); err != nil {
			return nil, err
		}
	}
	if e := d.find(tagICCProfile); e != nil && e.count > 0 {
		l.ICC = true
		if l.icc, err = t.locate(e); err != nil {
			return nil, err
		}
	}
	return l, nil
}
