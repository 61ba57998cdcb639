package probe

import "encoding/binary"

// JPEGCoding describes how a JPEG's image data is coded, as its frame
// (SOF) marker says. libvips decodes through libjpeg(-turbo): builds before
// libjpeg-turbo 3 cannot decode lossless or 12-bit data, and none decode
// hierarchical files; callers decide what to do about that.
type JPEGCoding struct {
	SOF          int  // the frame marker, 0xC0 to 0xCF
	Progressive  bool // SOF2, SOF6, SOF10, SOF14
	Arithmetic   bool // SOF9 to SOF15 (entropy coding other than Huffman)
	Lossless     bool // SOF3, SOF7, SOF11, SOF15
	Hierarchical bool // differential frames, SOF5 to SOF7 and SOF13 to SOF15
}

// Bounds on the JPEG marker scan.
const (
	maxJPEGSegments = 4096 // marker segments before the frame header
	maxJPEGGarbage  = 4096 // stray bytes between segments (libjpeg skips them too)
)

// readJPEG scans the marker segments up to the first frame header (SOF),
// taking the EXIF orientation on the way. It reads no entropy-coded data.
func readJPEG(src *source) (Info, error) {
	pos := int64(2) // after SOI
	info := Info{Format: JPEG}
	garbage := 0
	for range maxJPEGSegments {
		b, err := src.u8(pos)
		if err != nil {
			return Info{}, err
		}
		if b != 0xff {
			// libjpeg warns about and skips "extraneous bytes before
			// marker"; so do we, a bounded number of them.
			if garbage++; garbage > maxJPEGGarbage {
				return Info{}, malformed(pos, "no marker found")
			}
			pos++
			continue
		}
		// Any number of 0xFF fill bytes may precede a marker.
		m := byte(0xff)
		for m == 0xff {
			if garbage++; garbage > maxJPEGGarbage {
				return Info{}, malformed(pos, "no marker found")
			}
			pos++
			if m, err = src.u8(pos); err != nil {
				return Info{}, err
			}
		}
		pos++ // now after the marker
		switch {
		case m == 0x00:
			// A stuffed zero is no marker: more stray bytes.
			continue
		case m == 0x01 || m >= 0xd0 && m <= 0xd7:
			continue // TEM and RSTn stand alone
		case m == 0xd8:
			return Info{}, malformed(pos-2, "second SOI marker")
		case m == 0xd9:
			return Info{}, malformed(pos-2, "EOI before the frame header")
		case m == 0xda:
			return Info{}, malformed(pos-2, "SOS before the frame header")
		}
		garbage = 0
		lb, err := src.at(pos, 2)
		if err != nil {
			return Info{}, err
		}
		n := int64(binary.BigEndian.Uint16(lb))
		if n < 2 {
			return Info{}, malformed(pos, "marker 0x%02X has length %d", m, n)
		}
		if err := src.check(pos, n); err != nil {
			return Info{}, err
		}
		switch {
		case isSOF(m):
			return jpegFrame(src, info, m, pos, n)
		case m == 0xe1 && info.Orientation == 0:
			o, err := exifOrientation(src, pos+2, pos+n)
			if err != nil {
				return Info{}, err
			}
			info.Orientation = o
		}
		pos += n
	}
	return Info{}, malformed(pos, "no frame header in the first %d segments", maxJPEGSegments)
}

// isSOF reports whether marker m starts a frame. DHT (C4), JPG (C8) and
// DAC (CC) share the range but are table and reserved markers.
func isSOF(m byte) bool {
	return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc
}

// jpegFrame reads the frame header of n bytes at pos (its length field).
func jpegFrame(src *source, info Info, m byte, pos, n int64) (Info, error) {
	if n < 8 {
		return Info{}, malformed(pos, "frame header of %d bytes", n)
	}
	b, err := src.at(pos, int(n))
	if err != nil {
		return Info{}, err
	}
	prec := int(b[2])
	h := int(binary.BigEndian.Uint16(b[3:]))
	w := int(binary.BigEndian.Uint16(b[5:]))
	nc := int(b[7])
	if nc == 0 || n != 8+3*int64(nc) {
		return Info{}, malformed(pos, "frame header of %d bytes for %d components", n, nc)
	}
	if w == 0 {
		return Info{}, malformed(pos, "image width 0")
	}
	if h == 0 {
		// The height is in a DNL marker after the first scan, which
		// libjpeg does not support either.
		return Info{Format: JPEG}, sizeUnknown(pos, "image height is defined by a DNL marker")
	}
	c := &JPEGCoding{
		SOF:          int(m),
		Progressive:  m&3 == 2,
		Lossless:     m&3 == 3,
		Arithmetic:   m >= 0xc9,
		Hierarchical: m&7 >= 5,
	}
	info.Width, info.Height = w, h
	info.Bands = nc
	info.BitDepth = prec
	info.JPEG = c
	info.Levels = []Level{{Width: w, Height: h, SubIFD: -1, Shrink: 1}}
	if c.Lossless || c.Hierarchical {
		// libjpeg scales only DCT-coded frames on load.
		return info, nil
	}
	// libvips' jpegload shrink=N gives floor(size/N): libjpeg decodes
	// ceil(size/N) and libvips drops the partial last row and column
	// (checked against vipsheader 8.14 on 1001x777 and smaller sizes). A
	// level that would be 0 pixels is left out: libvips aborts on it.
	for _, s := range []int{2, 4, 8} {
		if w/s < 1 || h/s < 1 {
			break
		}
		info.Levels = append(info.Levels, Level{Width: w / s, Height: h / s, SubIFD: -1, Shrink: s})
	}
	return info, nil
}

// exifOrientation returns the orientation tag of the EXIF block in the APP1
// segment data [start, end), or 0 when there is none. A broken EXIF block
// gives 0, not an error: libvips ignores it as well.
func exifOrientation(src *source, start, end int64) (int, error) {
	const sig = "Exif\x00\x00"
	if end-start < int64(len(sig))+8 {
		return 0, nil
	}
	b, err := src.at(start, len(sig))
	if err != nil {
		return 0, err
	}
	if string(b) != sig {
		return 0, nil // XMP and others share APP1
	}
	o, err := func() (uint64, error) {
		t, first, err := openTIFF(src, start+int64(len(sig)), end)
		if err != nil {
			return 0, err
		}
		d, err := t.readIFD(first)
		if err != nil {
			return 0, err
		}
		o, _, err := t.scalar(d, tagOrientation, 0)
		return o, err
	}()
	if err != nil && !isFormatError(err) {
		return 0, err
	}
	if err != nil || o > 8 {
		return 0, nil
	}
	return int(o), nil
}
