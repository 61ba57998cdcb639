package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"slices"
)

// J2KTiles locates the tile-parts of a tiled JPEG 2000 codestream, so that
// the tiles under a region can be cut out into a codestream of their own
// (Cut) and decoded without touching the rest of the image.
//
// JPEG 2000 places every tile on an absolute reference grid and codes
// each one independently (the wavelet transform stops at tile edges), so
// a codestream whose image area is exactly a block of the original tiles,
// with those tiles' data unchanged, decodes to exactly the pixels the
// whole codestream has there, at every resolution level.
type J2KTiles struct {
	// The image and tile grid of SIZ.
	xsiz, ysiz, xo, yo, xt, yt, xto, yto uint32
	across, down                         int

	head  []byte // the main header, SOC to the first SOT, without TLM and PLM
	sizAt int    // offset of SIZ's Xsiz in head
	parts []j2kPart
	// byTile lists the indices in parts of each tile's tile-parts.
	byTile [][]int32
}

// j2kPart is one tile-part: its tile and where its bytes are, from SOT.
type j2kPart struct {
	tile     int
	off, len int64
}

// Bounds on what ReadJ2KTiles accepts; a JPEG 2000 codestream has at most
// 65535 tiles of up to 255 tile-parts each.
const (
	maxJ2KHeader    = 1 << 20
	maxJ2KTileParts = 1 << 20
)

// ReadJ2KTiles reads the main header and walks the tile-part headers of the
// codestream c (as Read reported it) in r. It reads the main header once,
// then 12 bytes per tile-part; no coded data.
func ReadJ2KTiles(r io.ReaderAt, c *J2KCoding) (*J2KTiles, error) {
	if c == nil || c.Length < 6 {
		return nil, errors.New("probe: no codestream")
	}
	if c.PackedHeaders {
		return nil, errors.New("probe: packet headers in the main header (PPM): tiles cannot be cut out")
	}
	be := binary.BigEndian
	read := func(off int64, n int) ([]byte, error) {
		if off < 0 || int64(n) > c.Length-off {
			return nil, malformed(c.Offset+off, "codestream truncated")
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, c.Offset+off); err != nil && !(errors.Is(err, io.EOF) && len(b) == n) {
			return nil, fmt.Errorf("probe: reading the codestream: %w", err)
		}
		return b, nil
	}
	// The main header: read a generous first chunk, growing it until
	// the first SOT is inside.
	t := &J2KTiles{}
	var main []byte
	pos := int64(2)
	for n := int64(64 << 10); ; n *= 4 {
		n = min(n, c.Length, maxJ2KHeader)
		b, err := read(0, int(n))
		if err != nil {
			return nil, err
		}
		main = b
		end, done, err := t.scanMain(main)
		if err != nil {
			return nil, err
		}
		if done {
			pos = end
			break
		}
		if n == c.Length || n == maxJ2KHeader {
			return nil, malformed(c.Offset, "no tile-part within %d bytes", n)
		}
	}
	if be.Uint16(main) != 0xff4f || be.Uint16(main[2:]) != 0xff51 {
		return nil, malformed(c.Offset, "codestream does not start with SOC, SIZ")
	}

	// The tile-parts, each SOT giving the length of its tile-part.
	ntiles := t.across * t.down
	t.byTile = make([][]int32, ntiles)
	for pos < c.Length-2 {
		b, err := read(pos, 12)
		if err != nil {
			return nil, err
		}
		if be.Uint16(b) == 0xffd9 { // EOC
			break
		}
		if be.Uint16(b) != 0xff90 || be.Uint16(b[2:]) != 10 {
			return nil, malformed(c.Offset+pos, "0x%04X where a tile-part should start", be.Uint16(b))
		}
		tile := int(be.Uint16(b[4:]))
		n := int64(be.Uint32(b[6:]))
		if n == 0 { // the last tile-part runs to EOC
			n = c.Length - pos
			if tail, err := read(c.Length-2, 2); err == nil && be.Uint16(tail) == 0xffd9 {
				n -= 2
			}
		}
		if tile >= ntiles || n < 14 || n > c.Length-pos {
			return nil, malformed(c.Offset+pos, "tile-part of tile %d, %d bytes", tile, n)
		}
		if len(t.parts) == maxJ2KTileParts {
			return nil, malformed(c.Offset+pos, "more than %d tile-parts", maxJ2KTileParts)
		}
		t.byTile[tile] = append(t.byTile[tile], int32(len(t.parts)))
		t.parts = append(t.parts, j2kPart{tile: tile, off: pos, len: n})
		pos += n
	}
	for i, ps := range t.byTile {
		if len(ps) == 0 {
			return nil, malformed(c.Offset, "tile %d has no tile-part", i)
		}
	}
	return t, nil
}

// scanMain reads SIZ and copies the marker segments of the main header in
// b into t.head, leaving out those that index the whole codestream (TLM,
// PLM), which a cut codestream would contradict. It returns the offset of
// the first SOT and whether b reaches it.
func (t *J2KTiles) scanMain(b []byte) (int64, bool, error) {
	be := binary.BigEndian
	t.head = append(t.head[:0], 0xff, 0x4f)
	pos := 2
	for range maxJ2KMarkers {
		if len(b)-pos < 4 {
			return 0, false, nil
		}
		marker := be.Uint16(b[pos:])
		if marker == 0xff90 {
			if t.across == 0 {
				return 0, false, malformed(int64(pos), "no SIZ")
			}
			return int64(pos), true, nil
		}
		if marker < 0xff30 {
			return 0, false, malformed(int64(pos), "0x%04X where a marker should be", marker)
		}
		n := int(be.Uint16(b[pos+2:]))
		if n < 2 {
			return 0, false, malformed(int64(pos), "marker 0x%04X has length %d", marker, n)
		}
		if len(b)-pos < 2+n {
			return 0, false, nil
		}
		seg := b[pos : pos+2+n]
		switch marker {
		case 0xff51: // SIZ
			if n < 41 {
				return 0, false, malformed(int64(pos), "SIZ of %d bytes", n)
			}
			t.sizAt = len(t.head) + 6
			s := seg[6:]
			t.xsiz, t.ysiz = be.Uint32(s), be.Uint32(s[4:])
			t.xo, t.yo = be.Uint32(s[8:]), be.Uint32(s[12:])
			t.xt, t.yt = be.Uint32(s[16:]), be.Uint32(s[20:])
			t.xto, t.yto = be.Uint32(s[24:]), be.Uint32(s[28:])
			if t.xt == 0 || t.yt == 0 || t.xsiz <= t.xo || t.ysiz <= t.yo || t.xto > t.xo || t.yto > t.yo ||
				uint64(t.xto)+uint64(t.xt) <= uint64(t.xo) || uint64(t.yto)+uint64(t.yt) <= uint64(t.yo) {
				return 0, false, malformed(int64(pos), "image or tile grid")
			}
			across := (uint64(t.xsiz) - uint64(t.xto) + uint64(t.xt) - 1) / uint64(t.xt)
			down := (uint64(t.ysiz) - uint64(t.yto) + uint64(t.yt) - 1) / uint64(t.yt)
			if across*down > 65535 {
				return 0, false, malformed(int64(pos), "%d×%d tiles", across, down)
			}
			t.across, t.down = int(across), int(down)
		case 0xff55, 0xff57: // TLM, PLM
			pos += 2 + n
			continue
		}
		t.head = append(t.head, seg...)
		pos += 2 + n
	}
	return 0, false, malformed(int64(pos), "more than %d markers in the main header", maxJ2KMarkers)
}

// Grid returns the number of tiles across and down.
func (t *J2KTiles) Grid() (across, down int) { return t.across, t.down }

// reducedCoord returns ceil(v / 2^r), for the reduced coordinates of a
// resolution level that skips r levels.
func reducedCoord(v uint32, r int) int64 { return int64((uint64(v) + 1<<r - 1) >> r) }

// tileSpan returns the extent on the reference grid of tile column i (or
// row), clipped to the image: [a, b).
func tileSpan(i int, to, ts, o, siz uint32) (uint32, uint32) {
	a := uint64(to) + uint64(i)*uint64(ts)
	b := min(a+uint64(ts), uint64(siz))
	return uint32(max(a, uint64(o))), uint32(b)
}

// Cut returns a codestream holding only the tiles under region, a
// rectangle of the image at reduction r (r resolution levels skipped, with
// its top-left pixel at 0,0, sized as the decoder reconstructs it:
// ceil(Xsiz/2^r)-ceil(XOsiz/2^r) wide), and the position of the cut
// codestream's image in that level. read fills p with the codestream's
// bytes at off (relative to the codestream's start).
//
// The cut codestream's image area is the block of tiles, on the same
// reference grid: its SIZ moves the image and tile offsets to the block's
// corner, and its tile-parts are those of the block's tiles, renumbered
// in the smaller grid.
func (t *J2KTiles) Cut(r int, region image.Rectangle, read func(p []byte, off int64) error) ([]byte, image.Point, error) {
	if r < 0 || r > 32 || region.Empty() {
		return nil, image.Point{}, fmt.Errorf("probe: cut of %v at reduction %d", region, r)
	}
	// The tile columns and rows whose reduced extent meets the region.
	pick := func(n int, to, ts, o, siz uint32, lo, hi int) (int, int) {
		base := reducedCoord(o, r)
		first, last := -1, -1
		for i := range n {
			a, b := tileSpan(i, to, ts, o, siz)
			ra, rb := reducedCoord(a, r)-base, reducedCoord(b, r)-base
			if ra < rb && ra < int64(hi) && rb > int64(lo) {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		return first, last
	}
	c0, c1 := pick(t.across, t.xto, t.xt, t.xo, t.xsiz, region.Min.X, region.Max.X)
	r0, r1 := pick(t.down, t.yto, t.yt, t.yo, t.ysiz, region.Min.Y, region.Max.Y)
	if c0 < 0 || r0 < 0 {
		return nil, image.Point{}, fmt.Errorf("probe: region %v outside the image at reduction %d", region, r)
	}
	x0, _ := tileSpan(c0, t.xto, t.xt, t.xo, t.xsiz)
	_, x1 := tileSpan(c1, t.xto, t.xt, t.xo, t.xsiz)
	y0, _ := tileSpan(r0, t.yto, t.yt, t.yo, t.ysiz)
	_, y1 := tileSpan(r1, t.yto, t.yt, t.yo, t.ysiz)

	be := binary.BigEndian
	out := append([]byte(nil), t.head...)
	s := out[t.sizAt:]
	be.PutUint32(s, x1)
	be.PutUint32(s[4:], y1)
	be.PutUint32(s[8:], x0)
	be.PutUint32(s[12:], y0)
	be.PutUint32(s[24:], t.xto+uint32(c0)*t.xt)
	be.PutUint32(s[28:], t.yto+uint32(r0)*t.yt)

	across := c1 - c0 + 1
	// Tile-parts in their original order, so that each tile's parts
	// keep theirs.
	var picked []int32
	for ty := r0; ty <= r1; ty++ {
		for tx := c0; tx <= c1; tx++ {
			picked = append(picked, t.byTile[ty*t.across+tx]...)
		}
	}
	slices.Sort(picked)
	for _, i := range picked {
		p := t.parts[i]
		at := len(out)
		out = append(out, make([]byte, p.len)...)
		if err := read(out[at:], p.off); err != nil {
			return nil, image.Point{}, err
		}
		seg := out[at:]
		if be.Uint16(seg) != 0xff90 || int(be.Uint16(seg[4:])) != p.tile {
			return nil, image.Point{}, malformed(p.off, "tile-part of tile %d changed", p.tile)
		}
		tx, ty := p.tile%t.across-c0, p.tile/t.across-r0
		be.PutUint16(seg[4:], uint16(ty*across+tx))
		be.PutUint32(seg[6:], uint32(p.len))
	}
	out = append(out, 0xff, 0xd9)
	origin := image.Pt(int(reducedCoord(x0, r)-reducedCoord(t.xo, r)), int(reducedCoord(y0, r)-reducedCoord(t.yo, r)))
	return out, origin, nil
}
