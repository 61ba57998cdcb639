package probe

import "encoding/binary"

// heifBrands are the ftyp brands of HEIF still images (HEVC, AVC, AV1 and
// the generic MIAF/HEIF image brands), as libheif recognises them.
var heifBrands = map[string]bool{
	"heic": true, "heix": true, "heim": true, "heis": true,
	"hevc": true, "hevx": true, "hevm": true, "hevs": true,
	"mif1": true, "msf1": true, "avif": true, "avis": true,
}

// Bounds on the HEIF item properties: the ipma box is read whole, and an
// item has a handful of properties (codec configuration, ispe, colour,
// pixel information, transformations).
const (
	maxIPMA      = 256 << 10
	maxItemProps = 64
)

// readHEIF checks the brands, then finds the size of the primary item in
// its ispe property: meta → pitm (primary item), iprp → ipma (the item's
// property indices) → ipco (the properties). libheif reports the size after
// the item's transformations, so an irot of 90 or 270 degrees swaps it,
// and a clean aperture (clap), whose rounding is libheif's own, makes the
// size unknown here.
func readHEIF(src *source) (Info, error) {
	ftyp, err := readBox(src, 0, src.size)
	if err != nil {
		return Info{}, err
	}
	if ftyp.end-ftyp.data < 8 || ftyp.end-ftyp.data > 4096 {
		return Info{}, ErrUnknownFormat
	}
	b, err := src.at(ftyp.data, int(ftyp.end-ftyp.data))
	if err != nil {
		return Info{}, err
	}
	ok := heifBrands[string(b[:4])]
	for i := 8; i+4 <= len(b) && !ok; i += 4 {
		ok = heifBrands[string(b[i:i+4])]
	}
	if !ok {
		return Info{}, ErrUnknownFormat
	}

	meta, found, err := findBox(src, ftyp.end, src.size, "meta")
	if err != nil {
		return Info{}, err
	}
	if !found {
		return Info{}, malformed(ftyp.end, "no meta box")
	}
	mdata := meta.data + 4 // meta is a full box: version and flags first
	pitm, found, err := findBox(src, mdata, meta.end, "pitm")
	if err != nil {
		return Info{}, err
	}
	if !found {
		return Info{}, sizeUnknown(meta.off, "no primary item")
	}
	p, err := src.at(pitm.data, int(min(pitm.end-pitm.data, 8)))
	if err != nil {
		return Info{}, err
	}
	var primary uint32
	switch {
	case len(p) >= 6 && p[0] == 0:
		primary = uint32(binary.BigEndian.Uint16(p[4:]))
	case len(p) >= 8:
		primary = binary.BigEndian.Uint32(p[4:])
	default:
		return Info{}, malformed(pitm.off, "pitm box truncated")
	}

	iprp, found, err := findBox(src, mdata, meta.end, "iprp")
	if err != nil {
		return Info{}, err
	}
	if !found {
		return Info{}, sizeUnknown(meta.off, "no item properties")
	}
	var props []int // 1-based indices into ipco, in association order
	var ipco box
	haveIPCO := false
	off := iprp.data
	for range maxBoxes {
		if off >= iprp.end {
			break
		}
		bx, err := readBox(src, off, iprp.end)
		if err != nil {
			return Info{}, err
		}
		switch bx.typ {
		case "ipco":
			if !haveIPCO {
				ipco, haveIPCO = bx, true
			}
		case "ipma":
			ps, err := ipmaProps(src, bx, primary)
			if err != nil {
				return Info{}, err
			}
			props = append(props, ps...)
		}
		off = bx.end
	}
	if !haveIPCO {
		return Info{}, sizeUnknown(iprp.off, "no property container")
	}

	w, h, swap, found := 0, 0, false, false
	for _, idx := range props[:min(len(props), maxItemProps)] {
		if idx == 0 {
			continue // index 0 means "no property"
		}
		bx, ok, err := nthBox(src, ipco.data, ipco.end, idx)
		if err != nil {
			return Info{}, err
		}
		if !ok {
			return Info{}, malformed(ipco.off, "property %d of the primary item is missing", idx)
		}
		switch bx.typ {
		case "ispe":
			if found {
				continue
			}
			if bx.end-bx.data < 12 {
				return Info{}, malformed(bx.off, "ispe box truncated")
			}
			q, err := src.at(bx.data+4, 8)
			if err != nil {
				return Info{}, err
			}
			w, h = int(binary.BigEndian.Uint32(q)), int(binary.BigEndian.Uint32(q[4:]))
			found = true
		case "irot":
			if bx.end-bx.data < 1 {
				return Info{}, malformed(bx.off, "irot box truncated")
			}
			a, err := src.u8(bx.data)
			if err != nil {
				return Info{}, err
			}
			if a&1 != 0 {
				swap = !swap
			}
		case "clap":
			return Info{}, sizeUnknown(bx.off, "primary item has a clean aperture")
		}
	}
	if !found {
		return Info{}, sizeUnknown(ipco.off, "primary item has no ispe property")
	}
	if w <= 0 || h <= 0 || w > maxDim || h > maxDim {
		return Info{}, malformed(-1, "image size %dx%d", w, h)
	}
	if swap {
		w, h = h, w
	}
	return Info{Format: HEIF, Width: w, Height: h, Levels: flatLevels(w, h)}, nil
}

// ipmaProps returns the property indices an ipma box associates with item.
func ipmaProps(src *source, bx box, item uint32) ([]int, error) {
	n := bx.end - bx.data
	if n < 8 || n > maxIPMA {
		return nil, malformed(bx.off, "ipma box of %d bytes", n)
	}
	b, err := src.at(bx.data, int(n))
	if err != nil {
		return nil, err
	}
	version, flags := b[0], b[3]
	count := binary.BigEndian.Uint32(b[4:])
	b = b[8:]
	for range count {
		var id uint32
		if version < 1 {
			if len(b) < 3 {
				return nil, malformed(bx.off, "ipma box truncated")
			}
			id, b = uint32(binary.BigEndian.Uint16(b)), b[2:]
		} else {
			if len(b) < 5 {
				return nil, malformed(bx.off, "ipma box truncated")
			}
			id, b = binary.BigEndian.Uint32(b), b[4:]
		}
		k := int(b[0])
		b = b[1:]
		size := 1
		if flags&1 != 0 {
			size = 2
		}
		if len(b) < k*size {
			return nil, malformed(bx.off, "ipma box truncated")
		}
		if id == item {
			ps := make([]int, k)
			for j := range ps {
				if size == 1 {
					ps[j] = int(b[j] & 0x7f)
				} else {
					ps[j] = int(binary.BigEndian.Uint16(b[2*j:]) & 0x7fff)
				}
			}
			return ps, nil
		}
		b = b[k*size:]
	}
	return nil, nil
}

// nthBox returns the idx-th box (1-based) in [off, end).
func nthBox(src *source, off, end int64, idx int) (box, bool, error) {
	if idx < 1 || idx > maxBoxes {
		return box{}, false, nil
	}
	for i := 1; off < end; i++ {
		b, err := readBox(src, off, end)
		if err != nil {
			return box{}, false, err
		}
		if i == idx {
			return b, true, nil
		}
		off = b.end
	}
	return box{}, false, nil
}
