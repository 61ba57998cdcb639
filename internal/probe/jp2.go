package probe

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Part 15 (High-Throughput JPEG 2000) flags in the main header: bit 14 of
// Rsiz in SIZ, and capability bit 15 of Pcap in CAP.
const (
	rsizHT     = 1 << 14
	pcapPart15 = 1 << (32 - 15)
)

// J2KCoding describes how a JPEG 2000 codestream is coded, beyond its
// size: what a decoder must support to read it right. OpenJPEG decodes
// some High-Throughput codestreams into flat grey without an error, so
// HT tells iiifd to decode with a Part 15 decoder instead.
type J2KCoding struct {
	// Offset and Length locate the codestream in the file (past the
	// boxes of a JP2 or JPH file).
	Offset, Length int64
	// HT says the codestream uses High-Throughput block coding (Rsiz
	// bit 14, or Part 15 flagged in a CAP marker).
	HT bool
	// Mixed says code-blocks may be HT or classic coded within one
	// codestream (Ccap15 MIXED), which Part 15 decoders need not read.
	Mixed bool
	// Tiled says the image has more than one tile.
	Tiled bool
	// PackedHeaders says packet headers are gathered in the main header
	// (PPM), so tiles cannot be cut out of the codestream on their own.
	PackedHeaders bool
	// Signed, Subsampled and MixedDepth say some component has signed
	// samples, is subsampled, or differs in depth from the first.
	Signed, Subsampled, MixedDepth bool
}

// JP2 files and HEIF files are both made of boxes: a 32-bit size, a type,
// an optional 64-bit size, then the payload.

// maxBoxes bounds the boxes examined in one container.
const maxBoxes = 1024

type box struct {
	typ  string
	off  int64 // start of the header
	data int64 // start of the payload
	end  int64
}

// readBox reads the box header at off in a container ending at end.
func readBox(src *source, off, end int64) (box, error) {
	if end-off < 8 {
		return box{}, malformed(off, "box header truncated")
	}
	b, err := src.at(off, 8)
	if err != nil {
		return box{}, err
	}
	bx := box{typ: string(b[4:8]), off: off, data: off + 8}
	size := uint64(binary.BigEndian.Uint32(b))
	switch size {
	case 0: // to the end of the container
		size = uint64(end - off)
	case 1:
		if end-off < 16 {
			return box{}, malformed(off, "box header truncated")
		}
		b, err := src.at(off+8, 8)
		if err != nil {
			return box{}, err
		}
		size = binary.BigEndian.Uint64(b)
		bx.data += 8
	}
	if size < uint64(bx.data-off) || size > uint64(end-off) {
		if err := src.check(off, int64(min(size, math.MaxInt64))); err != nil {
			return box{}, err // the file is cut short inside the box
		}
		return box{}, malformed(off, "box %q of %d bytes in a container of %d", bx.typ, size, end-off)
	}
	bx.end = off + int64(size)
	// The box is located, not read; checking it keeps "the header is
	// complete" meaning the same for every format: a box cut short by the
	// end of the file is an error even when its contents are not needed.
	return bx, src.check(off, int64(size))
}

// findBox returns the first box of type typ in [off, end).
func findBox(src *source, off, end int64, typ string) (box, bool, error) {
	for range maxBoxes {
		if off >= end {
			return box{}, false, nil
		}
		b, err := readBox(src, off, end)
		if err != nil {
			return box{}, false, err
		}
		if b.typ == typ {
			return b, true, nil
		}
		off = b.end
	}
	return box{}, false, malformed(off, "more than %d boxes", maxBoxes)
}

// readJP2 finds the contiguous codestream box of a JP2 file and probes the
// codestream. The image header box (ihdr) repeats the size, but the
// codestream is what decoders use.
func readJP2(src *source) (Info, error) {
	b, ok, err := findBox(src, 12, src.size, "jp2c")
	if err != nil {
		return Info{}, err
	}
	if !ok {
		return Info{}, malformed(12, "no codestream box")
	}
	return readCodestream(src, b.data, b.end)
}

// readJ2K probes a raw JPEG 2000 codestream.
func readJ2K(src *source) (Info, error) {
	return readCodestream(src, 0, src.size)
}

// maxJ2KMarkers bounds the marker segments of the main header.
const maxJ2KMarkers = 4096

// readCodestream reads the main header of the codestream in [off, end):
// the image and tile size from SIZ and the number of decomposition levels
// from COD (and COC, which may lower it for one component).
func readCodestream(src *source, off, end int64) (Info, error) {
	if end-off < 6 {
		return Info{}, malformed(off, "codestream truncated")
	}
	b, err := src.at(off, 6)
	if err != nil {
		return Info{}, err
	}
	be := binary.BigEndian
	if be.Uint16(b) != 0xff4f || be.Uint16(b[2:]) != 0xff51 {
		return Info{}, malformed(off, "codestream does not start with SOC, SIZ")
	}
	lsiz := int64(be.Uint16(b[4:]))
	if lsiz < 41 || off+4+lsiz > end {
		return Info{}, malformed(off+4, "SIZ of %d bytes", lsiz)
	}
	s, err := src.at(off+4, int(lsiz))
	if err != nil {
		return Info{}, err
	}
	xsiz, ysiz := be.Uint32(s[4:]), be.Uint32(s[8:])
	xo, yo := be.Uint32(s[12:]), be.Uint32(s[16:])
	xt, yt := be.Uint32(s[20:]), be.Uint32(s[24:])
	xto, yto := be.Uint32(s[28:]), be.Uint32(s[32:])
	ncomp := int(be.Uint16(s[36:]))
	if ncomp == 0 || ncomp > 16384 || lsiz != 38+3*int64(ncomp) {
		return Info{}, malformed(off+4, "SIZ of %d bytes for %d components", lsiz, ncomp)
	}
	if xsiz <= xo || ysiz <= yo || xsiz-xo > maxDim || ysiz-yo > maxDim {
		return Info{}, malformed(off+4, "image area (%d,%d)-(%d,%d)", xo, yo, xsiz, ysiz)
	}
	if xt == 0 || yt == 0 || xto > xo || yto > yo || uint64(xto)+uint64(xt) <= uint64(xo) || uint64(yto)+uint64(yt) <= uint64(yo) {
		return Info{}, malformed(off+4, "tile grid %dx%d at (%d,%d)", xt, yt, xto, yto)
	}
	for c := range ncomp {
		if s[38+3*c+1] == 0 || s[38+3*c+2] == 0 {
			return Info{}, malformed(off+4, "component %d has subsampling 0", c)
		}
	}
	depth := int(s[38]&0x7f) + 1
	coding := &J2KCoding{Offset: off, Length: end - off, HT: be.Uint16(s[2:])&rsizHT != 0}
	for c := range ncomp {
		if s[38+3*c]&0x80 != 0 {
			coding.Signed = true
		}
		if s[38+3*c+1] != 1 || s[38+3*c+2] != 1 {
			coding.Subsampled = true
		}
		if int(s[38+3*c]&0x7f)+1 != depth {
			coding.MixedDepth = true
		}
	}

	// The main header runs to the first tile-part (SOT).
	codNL, cocNL := -1, 32
	pos := off + 4 + lsiz
	for range maxJ2KMarkers {
		if end-pos < 4 {
			return Info{}, malformed(pos, "main header truncated")
		}
		m, err := src.at(pos, 4)
		if err != nil {
			return Info{}, err
		}
		marker := be.Uint16(m)
		if marker == 0xff90 { // SOT
			if codNL < 0 {
				return Info{}, malformed(pos, "no COD marker in the main header")
			}
			single := uint64(xto)+uint64(xt) >= uint64(xsiz) && uint64(yto)+uint64(yt) >= uint64(ysiz)
			info := j2kInfo(xsiz-xo, ysiz-yo, xt, yt, single, min(codNL, cocNL), ncomp, depth)
			coding.Tiled = !single
			for i := range info.Levels {
				info.Levels[i].J2K = coding
			}
			return info, nil
		}
		if marker>>8 != 0xff || marker < 0xff30 {
			return Info{}, malformed(pos, "0x%04X where a marker should be", marker)
		}
		n := int64(be.Uint16(m[2:]))
		if err := src.check(pos, 2+n); err != nil {
			return Info{}, err
		}
		if n < 2 || pos+2+n > end {
			return Info{}, malformed(pos, "marker 0x%04X has length %d", marker, n)
		}
		switch marker {
		case 0xff50: // CAP: Pcap, then one Ccap per capability bit set
			p, err := src.at(pos+2, int(n))
			if err != nil {
				return Info{}, err
			}
			if n < 6 {
				return Info{}, malformed(pos, "CAP of %d bytes", n)
			}
			pcap := be.Uint32(p[2:])
			if pcap&pcapPart15 != 0 {
				coding.HT = true
				// One Ccap follows per part flagged, in part order
				// (Part i is bit 32-i); the top two bits of Ccap15 say
				// whether code-blocks may mix HT and classic coding.
				at := 6 + 2*bits.OnesCount32(pcap>>18)
				if at+2 > int(n) {
					return Info{}, malformed(pos, "CAP of %d bytes lacks Ccap15", n)
				}
				coding.Mixed = be.Uint16(p[at:])>>14 == 3
			}
		case 0xff60: // PPM: packet headers gathered in the main header
			coding.PackedHeaders = true
		case 0xff52: // COD: Scod, SGcod (4 bytes), then SPcod starting with NL
			if n < 12 {
				return Info{}, malformed(pos, "COD of %d bytes", n)
			}
			p, err := src.at(pos+2, int(n))
			if err != nil {
				return Info{}, err
			}
			v := int(p[7])
			if v > 32 {
				return Info{}, malformed(pos, "%d decomposition levels", v)
			}
			if codNL < 0 {
				codNL = v
			}
		case 0xff53: // COC: component index (1 or 2 bytes), Scoc, then NL
			p, err := src.at(pos+2, int(n))
			if err != nil {
				return Info{}, err
			}
			i := 3
			if ncomp > 256 {
				i = 4
			}
			if int(n) < i+6 {
				return Info{}, malformed(pos, "COC of %d bytes", n)
			}
			v := int(p[i+1])
			if v > 32 {
				return Info{}, malformed(pos, "%d decomposition levels", v)
			}
			// OpenJPEG refuses a reduction beyond the levels of any
			// component, so the smallest count is what libvips can load.
			cocNL = min(cocNL, v)
		}
		pos += 2 + n
	}
	return Info{}, malformed(pos, "no tile-part in the first %d markers", maxJ2KMarkers)
}

// j2kInfo builds the Info of a codestream with an image w×h, tiles tw×th,
// nl decomposition levels.
//
// libvips' jp2kload page=r asks OpenJPEG for r fewer resolutions and
// reports ceil(w/2^r)×ceil(h/2^r), taking w and h without the image offset
// (checked against vipsheader 8.14, also on files patched to have an
// offset, where the OpenJPEG component grid would differ by a pixel).
func j2kInfo(w, h, tw, th uint32, single bool, nl, bands, depth int) Info {
	info := Info{Format: JP2, Width: int(w), Height: int(h), Bands: bands, BitDepth: depth}
	for r := 0; r <= nl; r++ {
		l := Level{
			Width:  int(ceilShift(w, r)),
			Height: int(ceilShift(h, r)),
			Page:   r,
			SubIFD: -1,
		}
		if !single {
			l.TileWidth = int(min(ceilShift(tw, r), maxDim))
			l.TileHeight = int(min(ceilShift(th, r), maxDim))
		}
		if r > 0 {
			prev := info.Levels[len(info.Levels)-1]
			if prev.Width == l.Width && prev.Height == l.Height {
				break
			}
		}
		info.Levels = append(info.Levels, l)
	}
	return info
}

// ceilShift returns ceil(v / 2^r).
func ceilShift(v uint32, r int) uint64 {
	return (uint64(v) + 1<<r - 1) >> r
}
