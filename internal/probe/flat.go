package probe

import (
	"encoding/binary"
)

// This file holds the formats with one level and no tiling: PNG, GIF and
// WebP. libvips can shrink WebP on load, but by any factor (its scale
// option), so that is not a stored level.

func flatLevels(w, h int) []Level {
	return []Level{{Width: w, Height: h, SubIFD: -1}}
}

// maxPNGChunks bounds the chunks scanned between IHDR and IDAT.
const maxPNGChunks = 1024

// readPNG reads IHDR, then the chunk headers up to the first IDAT to learn
// whether a tRNS chunk adds an alpha band, as it does in libvips.
func readPNG(src *source) (Info, error) {
	b, err := src.at(8, 25) // length, "IHDR", 13 bytes of data, CRC
	if err != nil {
		return Info{}, err
	}
	if binary.BigEndian.Uint32(b) != 13 || string(b[4:8]) != "IHDR" {
		return Info{}, malformed(8, "first chunk is not a 13-byte IHDR")
	}
	w := binary.BigEndian.Uint32(b[8:])
	h := binary.BigEndian.Uint32(b[12:])
	depth, color := int(b[16]), b[17]
	if w == 0 || h == 0 || w > maxDim || h > maxDim {
		return Info{}, malformed(16, "image size %dx%d", w, h)
	}
	var bands int
	switch color {
	case 0:
		bands = 1 // grey
	case 2, 3:
		bands = 3 // RGB; palette images load as RGB
	case 4:
		bands = 2 // grey and alpha
	case 6:
		bands = 4 // RGB and alpha
	default:
		return Info{}, malformed(25, "colour type %d", color)
	}
	if bands == 1 || bands == 3 {
		trns, err := pngHasTRNS(src)
		if err != nil {
			return Info{}, err
		}
		if trns {
			bands++
		}
	}
	return Info{
		Format: PNG, Width: int(w), Height: int(h), Bands: bands, BitDepth: depth,
		Levels: flatLevels(int(w), int(h)),
	}, nil
}

// pngHasTRNS reports whether a tRNS chunk comes before the image data. The
// chunks before IDAT are palettes and metadata, few and mostly small; big
// ones (ICC profiles, text) are skipped by their length without reading.
func pngHasTRNS(src *source) (bool, error) {
	pos := int64(8 + 25)
	for range maxPNGChunks {
		b, err := src.at(pos, 8)
		if err != nil {
			return false, err
		}
		switch string(b[4:8]) {
		case "tRNS":
			return true, nil
		case "IDAT", "IEND":
			return false, nil
		}
		n := int64(binary.BigEndian.Uint32(b))
		if n > 1<<31-1 {
			return false, malformed(pos, "chunk of %d bytes", n)
		}
		pos += 12 + n // length, type, data, CRC
	}
	return false, malformed(pos, "no image data in the first %d chunks", maxPNGChunks)
}

// readGIF reads the logical screen and the first image descriptor. libvips
// (libnsgif) lets the first frame, and only the first, grow the canvas
// beyond the logical screen; checked against vipsheader 8.14. Bands are
// left 0: libvips gives 4 when any frame is transparent, which only a scan
// of the whole file would tell.
func readGIF(src *source) (Info, error) {
	b, err := src.at(6, 7)
	if err != nil {
		return Info{}, err
	}
	w := int(binary.LittleEndian.Uint16(b))
	h := int(binary.LittleEndian.Uint16(b[2:]))
	pos := int64(13)
	if b[4]&0x80 != 0 { // global colour table
		pos += 3 << (b[4]&7 + 1)
	}
	x, y, fw, fh, err := gifFirstFrame(src, pos)
	if err != nil {
		return Info{}, err
	}
	w = max(w, x+fw)
	h = max(h, y+fh)
	if w == 0 || h == 0 {
		return Info{}, malformed(6, "image size %dx%d", w, h)
	}
	return Info{Format: GIF, Width: w, Height: h, BitDepth: 8, Levels: flatLevels(w, h)}, nil
}

// maxGIFBlocks bounds the extension blocks and sub-blocks before the first
// image descriptor.
const maxGIFBlocks = 4096

// gifFirstFrame skips extensions from pos and returns the position and
// size of the first image descriptor.
func gifFirstFrame(src *source, pos int64) (x, y, w, h int, err error) {
	for blocks := 0; blocks < maxGIFBlocks; blocks++ {
		c, err := src.u8(pos)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		switch c {
		case 0x2c: // image descriptor
			b, err := src.at(pos+1, 8)
			if err != nil {
				return 0, 0, 0, 0, err
			}
			le := binary.LittleEndian
			return int(le.Uint16(b)), int(le.Uint16(b[2:])), int(le.Uint16(b[4:])), int(le.Uint16(b[6:])), nil
		case 0x21: // extension: label, then sub-blocks up to an empty one
			pos += 2
			for ; blocks < maxGIFBlocks; blocks++ {
				n, err := src.u8(pos)
				if err != nil {
					return 0, 0, 0, 0, err
				}
				pos += 1 + int64(n)
				if n == 0 {
					break
				}
			}
		case 0x3b:
			return 0, 0, 0, 0, malformed(pos, "no image before the trailer")
		default:
			return 0, 0, 0, 0, malformed(pos, "unknown block 0x%02X", c)
		}
	}
	return 0, 0, 0, 0, malformed(pos, "no image in the first %d blocks", maxGIFBlocks)
}

// readWebP reads the first chunk of a RIFF WebP: VP8 (lossy), VP8L
// (lossless) or VP8X (extended: canvas size and flags, as for animations).
func readWebP(src *source) (Info, error) {
	b, err := src.at(12, 8)
	if err != nil {
		return Info{}, err
	}
	fourcc := string(b[:4])
	n := int64(binary.LittleEndian.Uint32(b[4:]))
	if err := src.check(20, n); err != nil {
		return Info{}, err
	}
	var w, h, bands int
	switch fourcc {
	case "VP8 ":
		// A key frame: 3-byte frame tag, start code, then 14-bit sizes
		// (the top two bits are upscaling hints, not size).
		if n < 10 {
			return Info{}, malformed(20, "VP8 chunk of %d bytes", n)
		}
		p, err := src.at(20, 10)
		if err != nil {
			return Info{}, err
		}
		if p[0]&1 != 0 || string(p[3:6]) != "\x9d\x01\x2a" {
			return Info{}, malformed(20, "VP8 data is not a key frame")
		}
		w = int(binary.LittleEndian.Uint16(p[6:]) & 0x3fff)
		h = int(binary.LittleEndian.Uint16(p[8:]) & 0x3fff)
		bands = 3
	case "VP8L":
		if n < 5 {
			return Info{}, malformed(20, "VP8L chunk of %d bytes", n)
		}
		p, err := src.at(20, 5)
		if err != nil {
			return Info{}, err
		}
		v := binary.LittleEndian.Uint32(p[1:])
		if p[0] != 0x2f || v>>29 != 0 {
			return Info{}, malformed(20, "bad VP8L signature or version")
		}
		w = int(v&0x3fff) + 1
		h = int(v>>14&0x3fff) + 1
		bands = 3 + int(v>>28&1) // the alpha_is_used hint, as libwebp reports it
	case "VP8X":
		if n < 10 {
			return Info{}, malformed(20, "VP8X chunk of %d bytes", n)
		}
		p, err := src.at(20, 10)
		if err != nil {
			return Info{}, err
		}
		w = int(uint32(p[4])|uint32(p[5])<<8|uint32(p[6])<<16) + 1
		h = int(uint32(p[7])|uint32(p[8])<<8|uint32(p[9])<<16) + 1
		bands = 3
		if p[0]&0x10 != 0 {
			bands = 4
		}
	default:
		return Info{}, malformed(12, "first chunk is %q, want VP8, VP8L or VP8X", fourcc)
	}
	if w == 0 || h == 0 {
		return Info{}, malformed(20, "image size %dx%d", w, h)
	}
	return Info{Format: WebP, Width: w, Height: h, Bands: bands, BitDepth: 8, Levels: flatLevels(w, h)}, nil
}
