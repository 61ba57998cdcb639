package iiif

import (
	"strconv"
	"strings"
)

// allFormats lists every format ParseImage accepts, in the order of the
// spec's table (3.0 §4.5) followed by the extension formats avif and heic,
// which a server must list in extraFormats (3.0 §4.9, §5.7).
var allFormats = []Format{FormatJPG, FormatTIF, FormatPNG, FormatGIF, FormatJP2, FormatPDF, FormatWebP, FormatAVIF, FormatHEIC}

// Formats returns every format ParseImage accepts.
func Formats() []Format { return append([]Format(nil), allFormats...) }

// Valid reports whether f is a format ParseImage accepts.
func (f Format) Valid() bool { return f.MediaType() != "" }

// MediaType returns the MIME type of the format as given in the spec's
// format table (3.0 §4.5, 2.1 §4.5), or "" for an unknown format.
func (f Format) MediaType() string {
	switch f {
	case FormatJPG:
		return "image/jpeg"
	case FormatTIF:
		return "image/tiff"
	case FormatPNG:
		return "image/png"
	case FormatGIF:
		return "image/gif"
	case FormatJP2:
		return "image/jp2"
	case FormatPDF:
		return "application/pdf"
	case FormatWebP:
		return "image/webp"
	case FormatAVIF:
		return "image/avif"
	case FormatHEIC:
		return "image/heic"
	}
	return ""
}

// Valid reports whether q is one of the four qualities of the spec.
func (q Quality) Valid() bool {
	switch q {
	case QualityDefault, QualityColor, QualityGray, QualityBitonal:
		return true
	}
	return false
}

// String returns the region parameter as written in a URL.
func (r Region) String() string {
	switch r.Kind {
	case RegionFull:
		return "full"
	case RegionSquare:
		return "square"
	case RegionPercent:
		return "pct:" + join4(r.X, r.Y, r.W, r.H)
	}
	return join4(r.X, r.Y, r.W, r.H)
}

// String returns the size parameter as written in a URL.
func (s Size) String() string {
	var b strings.Builder
	if s.Upscale {
		b.WriteByte('^')
	}
	switch s.Kind {
	case SizeMax:
		if s.Full {
			b.WriteString("full")
		} else {
			b.WriteString("max")
		}
	case SizeWidth:
		b.WriteString(strconv.Itoa(s.W))
		b.WriteByte(',')
	case SizeHeight:
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(s.H))
	case SizePercent:
		b.WriteString("pct:")
		b.WriteString(formatFloat(s.Percent))
	case SizeExact, SizeBestFit:
		if s.Kind == SizeBestFit {
			b.WriteByte('!')
		}
		b.WriteString(strconv.Itoa(s.W))
		b.WriteByte(',')
		b.WriteString(strconv.Itoa(s.H))
	}
	return b.String()
}

// String returns the rotation parameter as written in a URL: "!" when
// mirrored, then the degrees in their shortest form (an integer when the
// value is whole, as the canonical syntax of both versions asks).
func (r Rotation) String() string {
	if r.Mirror {
		return "!" + formatFloat(r.Degrees)
	}
	return formatFloat(r.Degrees)
}

// String returns the request as the path after the identifier:
// region/size/rotation/quality.format. Numbers are written in their
// shortest decimal form without exponent, so for every Request returned by
// ParseImage, parsing the four segments of String again gives an equal
// Request.
func (r Request) String() string {
	return r.Region.String() + "/" + r.Size.String() + "/" + r.Rotation.String() + "/" + string(r.Quality) + "." + string(r.Format)
}

// formatFloat writes f in the shortest decimal form that reads back as f,
// without exponent: 3.0 §4.7 asks for a leading zero below 1 and no
// trailing zeros; integers get no decimal point.
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func join4(a, b, c, d float64) string {
	return formatFloat(a) + "," + formatFloat(b) + "," + formatFloat(c) + "," + formatFloat(d)
}
