package pixels

import "strings"

// decodeMarkers are fragments of libvips' error messages that come from
// reading a source image: loader domains and the usual libjpeg, libpng,
// libtiff, OpenJPEG and libheif complaints. libvips reports errors as
// text only, and some domains (libjpeg's "VipsJpeg", libtiff's) serve
// both reading and writing, so telling a bad source from a failed encode
// is a matter of recognising phrases. Either way the error is a 500; only
// the public message differs.
var decodeMarkers = []string{
	"load", "2vips", "premature end", "truncated", "corrupt",
	"not a known file format", "read error", "unexpected end",
	"readencoded", "readtile", "readstrip", "readscanline",
	"out of order read", "decode", "bad huffman", "invalid",
}

// isDecodeError reports whether libvips' error text says the source could
// not be read.
func isDecodeError(text string) bool {
	t := strings.ToLower(text)
	for _, m := range decodeMarkers {
		if strings.Contains(t, m) {
			return true
		}
	}
	return false
}
