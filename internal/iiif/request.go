// Package iiif owns the grammar of the IIIF Image API, versions 3.0 and 2.1:
// parsing the path segments of an image request into a Request, writing a
// Request back out (the canonical form when the Request is canonical), and
// the JSON shapes of info.json.
//
// The package is pure: it imports only the standard library, touches no
// pixels, no files and no network, so that it also compiles for
// WebAssembly targets. Every parser here is fuzzed.
package iiif

// Version is a major version of the IIIF Image API.
type Version int

// The API versions served.
const (
	V2 Version = 2
	V3 Version = 3
)

// RegionKind says which of the region forms a request used.
type RegionKind uint8

// Region forms.
const (
	RegionFull    RegionKind = iota // "full"
	RegionSquare                    // "square"
	RegionPixels                    // "x,y,w,h" in whole pixels
	RegionPercent                   // "pct:x,y,w,h" in percent of the full image
)

// Region is the region parameter. For RegionPixels X, Y, W and H hold whole
// numbers of pixels; for RegionPercent they hold percentages (floats); for
// the other kinds they are zero.
type Region struct {
	Kind       RegionKind
	X, Y, W, H float64
}

// SizeKind says which of the size forms a request used.
type SizeKind uint8

// Size forms. In version 2 "full" and "max" both parse to SizeMax (Full
// records the spelling so that the request can be written back as it was).
const (
	SizeMax     SizeKind = iota // "max" (v2 also "full")
	SizeWidth                   // "w,"
	SizeHeight                  // ",h"
	SizePercent                 // "pct:n"
	SizeExact                   // "w,h"
	SizeBestFit                 // "!w,h"
)

// Size is the size parameter.
type Size struct {
	Kind    SizeKind
	W, H    int     // requested width and height where the form has them
	Percent float64 // for SizePercent
	Upscale bool    // the "^" prefix (version 3 only)
	Full    bool    // version 2 spelled SizeMax as "full"
}

// Rotation is the rotation parameter: Mirror ("!") first, then a clockwise
// rotation by Degrees, 0 <= Degrees <= 360.
type Rotation struct {
	Degrees float64
	Mirror  bool
}

// Quality is the quality parameter.
type Quality string

// Qualities defined by both versions of the API.
const (
	QualityDefault Quality = "default"
	QualityColor   Quality = "color"
	QualityGray    Quality = "gray"
	QualityBitonal Quality = "bitonal"
)

// Format is the format parameter, the file extension of the response.
type Format string

// Formats the server may produce. Which of them a running server can write
// depends on the pixel engine; see Formats in the pixels package.
const (
	FormatJPG  Format = "jpg"
	FormatPNG  Format = "png"
	FormatWebP Format = "webp"
	FormatGIF  Format = "gif"
	FormatTIF  Format = "tif"
	FormatJP2  Format = "jp2"
	FormatAVIF Format = "avif"
	FormatHEIC Format = "heic"
	FormatPDF  Format = "pdf"
)

// Request is a parsed image request: everything after the identifier.
type Request struct {
	Version  Version
	Region   Region
	Size     Size
	Rotation Rotation
	Quality  Quality
	Format   Format
}
