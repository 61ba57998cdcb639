package goengine

import (
	"compress/zlib"
	"io"
)

// newZlibWriter returns a zlib stream at level (1..9, zlib's scale, as
// EncodeOptions.PNGCompression gives it).
func newZlibWriter(w io.Writer, level int) (*zlib.Writer, error) {
	return zlib.NewWriterLevel(w, min(max(level, 1), 9))
}
