package probe

import (
	"encoding/binary"
	"io"
	"math"
)

// This file holds a small parser for the TIFF structure: the header and the
// image file directories (IFDs) of classic TIFF and BigTIFF in either byte
// order. It serves TIFF files and the EXIF block of JPEGs, which is a TIFF
// structure whose offsets count from the start of the block.
//
// Entry values are located but not read until asked for, because some of
// them (tile offsets and byte counts) can be megabytes long.

// Bounds on the TIFF structure. Real files have tens of entries per IFD, a
// handful of pages and sub-IFDs; these limits are far above that and keep a
// hostile file from making us read or allocate much.
const (
	maxIFDEntries = 1024
	maxPages      = 64 // IFDs of the main chain examined for pyramid levels
	maxSubIFDs    = 64
)

// TIFF tags used here.
const (
	tagNewSubfileType  = 254
	tagSubfileType     = 255
	tagImageWidth      = 256
	tagImageLength     = 257
	tagBitsPerSample   = 258
	tagCompression     = 259
	tagPhotometric     = 262
	tagStripOffsets    = 273
	tagOrientation     = 274
	tagSamplesPerPixel = 277
	tagRowsPerStrip    = 278
	tagStripByteCounts = 279
	tagPlanarConfig    = 284
	tagTileWidth       = 322
	tagTileLength      = 323
	tagTileOffsets     = 324
	tagTileByteCounts  = 325
	tagSubIFDs         = 330
	tagJPEGTables      = 347
	tagICCProfile      = 34675 // InterColorProfile
	tagSampleFormat    = 339
)

// TIFF field types.
const (
	typeByte      = 1
	typeASCII     = 2
	typeShort     = 3
	typeLong      = 4
	typeRational  = 5
	typeSByte     = 6
	typeUndefined = 7
	typeSShort    = 8
	typeSLong     = 9
	typeSRational = 10
	typeFloat     = 11
	typeDouble    = 12
	typeIFD       = 13
	typeLong8     = 16
	typeSLong8    = 17
	typeIFD8      = 18
)

// typeSize returns the size in bytes of one value of a field type, or 0
// for types this package does not know (libtiff ignores such entries too).
func typeSize(typ uint16) int {
	switch typ {
	case typeByte, typeASCII, typeSByte, typeUndefined:
		return 1
	case typeShort, typeSShort:
		return 2
	case typeLong, typeSLong, typeFloat, typeIFD:
		return 4
	case typeRational, typeSRational, typeDouble, typeLong8, typeSLong8, typeIFD8:
		return 8
	}
	return 0
}

// isUnsigned reports whether values of the type are unsigned integers,
// the only kind this package needs to interpret.
func isUnsigned(typ uint16) bool {
	switch typ {
	case typeByte, typeShort, typeLong, typeIFD, typeLong8, typeIFD8, typeUndefined:
		return true
	}
	return false
}

// tiffFile is a TIFF structure located in a source.
type tiffFile struct {
	src   *source
	order binary.ByteOrder
	big   bool  // BigTIFF: 8-byte offsets and counts
	base  int64 // offset of the TIFF header in src; file offsets count from here
	end   int64 // end of the TIFF structure in src
}

// ifdEntry is one directory entry with its value field still raw.
type ifdEntry struct {
	tag   uint16
	typ   uint16
	count uint64
	val   [8]byte // the value or offset field: 4 bytes used in classic TIFF
}

// ifd is one image file directory.
type ifd struct {
	off     uint64 // offset from the TIFF header, as stored
	entries []ifdEntry
	next    uint64 // offset of the next IFD in the chain, 0 at the end
}

func (d *ifd) find(tag uint16) *ifdEntry {
	for i := range d.entries {
		if d.entries[i].tag == tag {
			return &d.entries[i]
		}
	}
	return nil
}

// openTIFF parses the TIFF header at base and returns the file and the
// offset of its first IFD.
func openTIFF(src *source, base, end int64) (*tiffFile, uint64, error) {
	if end-base < 8 {
		return nil, 0, malformed(base, "TIFF header truncated")
	}
	h, err := src.at(base, 8)
	if err != nil {
		return nil, 0, err
	}
	t := &tiffFile{src: src, base: base, end: end}
	switch string(h[:2]) {
	case "II":
		t.order = binary.LittleEndian
	case "MM":
		t.order = binary.BigEndian
	default:
		return nil, 0, malformed(base, "bad TIFF byte order mark %q", h[:2])
	}
	switch t.order.Uint16(h[2:]) {
	case 42:
		return t, uint64(t.order.Uint32(h[4:])), nil
	case 43:
		if t.order.Uint16(h[4:]) != 8 || t.order.Uint16(h[6:]) != 0 {
			return nil, 0, malformed(base+4, "BigTIFF header with offset size %d", t.order.Uint16(h[4:]))
		}
		if end-base < 16 {
			return nil, 0, malformed(base, "BigTIFF header truncated")
		}
		b, err := src.at(base+8, 8)
		if err != nil {
			return nil, 0, err
		}
		t.big = true
		return t, t.order.Uint64(b), nil
	}
	return nil, 0, malformed(base+2, "bad TIFF version %d", t.order.Uint16(h[2:]))
}

// abs returns the source offset of n bytes at TIFF offset off, checking
// that they lie inside the TIFF structure.
func (t *tiffFile) abs(off uint64, n uint64) (int64, error) {
	lim := uint64(t.end - t.base)
	if off > lim || n > lim-off {
		return 0, malformed(t.base+int64(min(off, lim)), "TIFF offset %d (+%d bytes) is past the end of the data", off, n)
	}
	a := t.base + int64(off)
	return a, t.src.check(a, int64(n))
}

// readIFD reads the directory at TIFF offset off.
func (t *tiffFile) readIFD(off uint64) (*ifd, error) {
	if off < 8 {
		return nil, malformed(t.base, "IFD offset %d points into the header", off)
	}
	countSize, entrySize, nextSize := uint64(2), uint64(12), uint64(4)
	if t.big {
		countSize, entrySize, nextSize = 8, 20, 8
	}
	a, err := t.abs(off, countSize)
	if err != nil {
		return nil, err
	}
	b, err := t.src.at(a, int(countSize))
	if err != nil {
		return nil, err
	}
	var n uint64
	if t.big {
		n = t.order.Uint64(b)
	} else {
		n = uint64(t.order.Uint16(b))
	}
	if n == 0 || n > maxIFDEntries {
		return nil, malformed(a, "IFD with %d entries", n)
	}
	a, err = t.abs(off+countSize, n*entrySize+nextSize)
	if err != nil {
		return nil, err
	}
	b, err = t.src.at(a, int(n*entrySize+nextSize))
	if err != nil {
		return nil, err
	}
	d := &ifd{off: off, entries: make([]ifdEntry, n)}
	for i := range d.entries {
		e := b[uint64(i)*entrySize:]
		en := &d.entries[i]
		en.tag = t.order.Uint16(e)
		en.typ = t.order.Uint16(e[2:])
		if t.big {
			en.count = t.order.Uint64(e[4:])
			copy(en.val[:], e[12:20])
		} else {
			en.count = uint64(t.order.Uint32(e[4:]))
			copy(en.val[:], e[8:12])
		}
	}
	if t.big {
		d.next = t.order.Uint64(b[n*entrySize:])
	} else {
		d.next = uint64(t.order.Uint32(b[n*entrySize:]))
	}
	return d, nil
}

// locate returns where the values of an entry are, without reading them.
func (t *tiffFile) locate(e *ifdEntry) (tiffArray, error) {
	a := tiffArray{typ: e.typ, count: e.count, off: -1}
	size := uint64(typeSize(e.typ))
	if size == 0 {
		return a, malformed(-1, "tag %d has unknown type %d", e.tag, e.typ)
	}
	if e.count > math.MaxInt64/8 {
		return a, malformed(-1, "tag %d has %d values", e.tag, e.count)
	}
	inline := uint64(4)
	if t.big {
		inline = 8
	}
	if size*e.count <= inline {
		a.inline = e.val
		return a, nil
	}
	var off uint64
	if t.big {
		off = t.order.Uint64(e.val[:])
	} else {
		off = uint64(t.order.Uint32(e.val[:]))
	}
	abs, err := t.abs(off, size*e.count)
	if err != nil {
		return a, err
	}
	a.off = abs
	return a, nil
}

// uint returns value i of an entry of unsigned integer type.
func (t *tiffFile) uint(e *ifdEntry, i uint64) (uint64, error) {
	if !isUnsigned(e.typ) {
		return 0, malformed(-1, "tag %d has type %d, want an unsigned integer", e.tag, e.typ)
	}
	if i >= e.count {
		return 0, malformed(-1, "tag %d has %d values, want at least %d", e.tag, e.count, i+1)
	}
	a, err := t.locate(e)
	if err != nil {
		return 0, err
	}
	size := typeSize(e.typ)
	var b []byte
	if a.off < 0 {
		b = a.inline[i*uint64(size):]
	} else if b, err = t.src.at(a.off+int64(i)*int64(size), size); err != nil {
		return 0, err
	}
	return decodeUint(t.order, e.typ, b), nil
}

// scalar returns the first value of tag in d, or def when d lacks the tag.
func (t *tiffFile) scalar(d *ifd, tag uint16, def uint64) (uint64, bool, error) {
	e := d.find(tag)
	if e == nil || e.count == 0 {
		return def, false, nil
	}
	v, err := t.uint(e, 0)
	return v, err == nil, err
}

// decodeUint decodes one unsigned value of type typ from the start of b.
func decodeUint(order binary.ByteOrder, typ uint16, b []byte) uint64 {
	switch typeSize(typ) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(order.Uint16(b))
	case 4:
		return uint64(order.Uint32(b))
	default:
		return order.Uint64(b)
	}
}

// tiffArray locates the values of one IFD entry in the file, so that they
// can be fetched later, in part, through any ReaderAt on the same file.
type tiffArray struct {
	typ    uint16
	count  uint64
	off    int64   // file offset of the values; -1 when they are inline
	inline [8]byte // the values, when they fit in the entry
}

// read returns values [first, first+n) of an unsigned integer array.
func (a tiffArray) read(r io.ReaderAt, order binary.ByteOrder, first, n int) ([]uint64, error) {
	if !isUnsigned(a.typ) {
		return nil, &FormatError{Format: TIFF, Offset: a.off, Reason: "offset array is not of an unsigned integer type", Err: ErrMalformed}
	}
	if first < 0 || n < 0 || uint64(first) > a.count || uint64(n) > a.count-uint64(first) {
		return nil, &FormatError{Format: TIFF, Offset: a.off, Reason: "index out of range of the offset array", Err: ErrMalformed}
	}
	size := typeSize(a.typ)
	var b []byte
	if a.off < 0 {
		b = a.inline[first*size : (first+n)*size]
	} else {
		b = make([]byte, n*size)
		off := a.off + int64(first)*int64(size)
		if k, err := r.ReadAt(b, off); k < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	v := make([]uint64, n)
	for i := range v {
		v[i] = decodeUint(order, a.typ, b[i*size:])
	}
	return v, nil
}
