package plan

import (
	"image"
	"testing"
)

// orientPoint is the stored point that displayed point (x, y) of a stored
// w×h image with EXIF orientation o shows, written from the EXIF
// definitions of where row 0 and column 0 go.
func orientPoint(o, w, h, x, y int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	case 8:
		return w - 1 - y, x
	}
	return x, y
}

// TestOrient maps displayed regions of every orientation to stored ones
// and checks them point by point against the EXIF definitions.
func TestOrient(t *testing.T) {
	const sw, sh = 7, 5 // stored size
	for o := 1; o <= 8; o++ {
		dw, dh := OrientedSize(o, sw, sh)
		for _, r := range []image.Rectangle{
			image.Rect(0, 0, dw, dh), image.Rect(1, 2, 3, 4), image.Rect(0, 0, 1, 1),
			image.Rect(dw-2, dh-1, dw, dh), image.Rect(2, 0, 5, 3),
		} {
			p := Plan{LevelRegion: r}
			p.Orient(o, dw, dh)
			if o > 1 && p.Orientation != o {
				t.Fatalf("orientation %d not recorded", o)
			}
			s := p.LevelRegion
			if s.Dx()*s.Dy() != r.Dx()*r.Dy() || !s.In(image.Rect(0, 0, sw, sh)) {
				t.Fatalf("o=%d %v → %v: not a stored region of the same area", o, r, s)
			}
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					if !image.Pt(orientPoint(o, sw, sh, x, y)).In(s) {
						t.Fatalf("o=%d: displayed %d,%d of %v shows stored %v, outside %v", o, x, y, r, image.Pt(orientPoint(o, sw, sh, x, y)), s)
					}
				}
			}
		}
	}
}
