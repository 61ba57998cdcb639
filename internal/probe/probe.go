// Package probe reads image headers in pure Go: the format, the size, the
// stored resolution levels and the tiling of an image, from as few bytes as
// possible through an io.ReaderAt (which may be a ranged reader over object
// storage). It decodes no pixels and imports only the standard library.
//
// libvips does not report TIFF or JPEG 2000 tile sizes, nor the layout of
// pyramidal TIFFs before loading each page, which is why this package exists.
// The sizes it reports for reduced levels are the ones libvips gives when
// loading them (a test compares every level with vipsheader), so that a
// plan made from them matches the pixels that arrive.
//
// Read is the entry point. TIFF levels keep where their tile offsets,
// byte counts and JPEG tables are, so that stored tiles can later be
// fetched as they are (TIFFLevel.TileRanges) without reading those arrays
// at probe time.
package probe

// Format names the container format of a source image.
type Format string

// Source formats recognised by Read.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	WebP Format = "webp"
	TIFF Format = "tiff"
	JP2  Format = "jp2"  // JP2 file or raw J2K codestream
	HEIF Format = "heif" // HEIF/AVIF; size only when found in the ispe box
	// Slide is a whole-slide image in a vendor's TIFF dialect that only
	// OpenSlide reads right (Hamamatsu NDPI, Philips TIFF, Leica SCN,
	// Ventana BIF). Read answers ErrSizeUnknown for it, with the Format
	// set: its levels are OpenSlide's to read, through the engine.
	Slide Format = "slide"
)

// Level is one resolution level that can be read cheaply, and how.
type Level struct {
	Width, Height int
	// TileWidth and TileHeight are the stored tiling of this level, zero
	// when the level is not tiled (strips, or a flat format).
	TileWidth, TileHeight int
	// Exactly one of the following says how to load the level; all zero
	// (and SubIFD -1) for the full-resolution image of a flat file. They
	// mean what libvips' load options of the same names mean: a sub-IFD
	// level has Page 0, the IFD whose sub-IFD it is (page=0, subifd=N).
	Page   int // TIFF page (IFD index) or JPEG 2000 resolution reduction
	SubIFD int // TIFF sub-IFD index of the main image, -1 when not used
	Shrink int // decoder shrink-on-load factor (JPEG: 1, 2, 4, 8); 0 = none

	// OpenSlide says the level is read through OpenSlide: Page is then
	// OpenSlide's level index, or Associated names the associated image
	// (label, macro, thumbnail) to read instead of a level.
	// Background is the colour OpenSlide's transparent pixels (outside
	// the scanned area) are flattened onto.
	OpenSlide  bool
	Associated string
	Background [3]uint8

	// TIFF says how a TIFF level is stored, for reading its tiles as they
	// are; nil for other formats.
	TIFF *TIFFLevel
	// J2K says how the codestream of a JPEG 2000 file is coded, the same
	// for every level; nil for other formats.
	J2K *J2KCoding
}

// Info is what a header says about an image.
type Info struct {
	Format        Format
	Width, Height int
	// Bands is the number of bands libvips will load when the header
	// tells (PNG and WebP count alpha as libvips does; TIFF and JPEG 2000
	// give the stored samples), else 0 (GIF, HEIF).
	Bands int
	// Levels lists the cheaply readable resolution levels, largest first:
	// each is no larger than the one before in either dimension. Levels[0]
	// is the full-resolution image. Never empty on success.
	Levels []Level

	// BitDepth is the number of bits per sample as stored (of the first
	// sample or component), 0 when the header does not say.
	BitDepth int
	// Orientation is the EXIF orientation (1 to 8) of a JPEG's EXIF block
	// or a TIFF's IFD 0, 0 when absent. Width, Height and Levels are as
	// stored, before any rotation it asks for.
	Orientation int
	// JPEG describes the coding of a JPEG; nil for other formats.
	JPEG *JPEGCoding
	// Slide describes a whole-slide image (an Aperio SVS read as a TIFF,
	// or any slide OpenSlide reads); nil for other images.
	Slide *SlideInfo
}

// Displayed returns i as its image is shown: with Orientation 5 to 8 the
// width and height of the image, of every level and of their tiles are
// swapped. Everything else, the TIFF storage facts included, stays as
// stored: TIFF levels describe the file, not what is shown.
func (i Info) Displayed() Info {
	if i.Orientation < 5 || i.Orientation > 8 {
		return i
	}
	i.Width, i.Height = i.Height, i.Width
	levels := make([]Level, len(i.Levels))
	for k, l := range i.Levels {
		l.Width, l.Height = l.Height, l.Width
		l.TileWidth, l.TileHeight = l.TileHeight, l.TileWidth
		levels[k] = l
	}
	i.Levels = levels
	return i
}
