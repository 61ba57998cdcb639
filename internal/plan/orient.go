package plan

import "image"

// Orient makes p read a source whose stored pixels are shown turned or
// mirrored by the EXIF orientation o (2 to 8; 0 and 1 leave p as it is).
// The planner works in displayed coordinates, which is what clients ask
// for; Orient maps LevelRegion to the stored pixels of the level, whose
// displayed size is levelW×levelH, and records o in p.Orientation, so that
// the engine turns the cropped pixels before it scales them. Everything
// after the crop (Width, Height, rotation, mirroring) stays displayed.
func (p *Plan) Orient(o, levelW, levelH int) {
	if o < 2 || o > 8 {
		return
	}
	r := p.LevelRegion
	sw, sh := levelW, levelH // stored size of the level
	if o >= 5 {
		sw, sh = levelH, levelW
	}
	// Each displayed point (x, y) shows the stored point given below;
	// a half-open rectangle maps to a half-open rectangle.
	flipX := func(x0, x1 int) (int, int) { return sw - x1, sw - x0 }
	flipY := func(y0, y1 int) (int, int) { return sh - y1, sh - y0 }
	var s image.Rectangle
	switch o {
	case 2: // mirrored: x = W-1-x'
		s.Min.X, s.Max.X = flipX(r.Min.X, r.Max.X)
		s.Min.Y, s.Max.Y = r.Min.Y, r.Max.Y
	case 3: // turned 180°
		s.Min.X, s.Max.X = flipX(r.Min.X, r.Max.X)
		s.Min.Y, s.Max.Y = flipY(r.Min.Y, r.Max.Y)
	case 4: // flipped: y = H-1-y'
		s.Min.X, s.Max.X = r.Min.X, r.Max.X
		s.Min.Y, s.Max.Y = flipY(r.Min.Y, r.Max.Y)
	case 5: // transposed: x = y', y = x'
		s.Min.X, s.Max.X = r.Min.Y, r.Max.Y
		s.Min.Y, s.Max.Y = r.Min.X, r.Max.X
	case 6: // shown turned 90° clockwise: x = y', y = H-1-x'
		s.Min.X, s.Max.X = r.Min.Y, r.Max.Y
		s.Min.Y, s.Max.Y = flipY(r.Min.X, r.Max.X)
	case 7: // transversed: x = W-1-y', y = H-1-x'
		s.Min.X, s.Max.X = flipX(r.Min.Y, r.Max.Y)
		s.Min.Y, s.Max.Y = flipY(r.Min.X, r.Max.X)
	case 8: // shown turned 90° anticlockwise: x = W-1-y', y = x'
		s.Min.X, s.Max.X = flipX(r.Min.Y, r.Max.Y)
		s.Min.Y, s.Max.Y = r.Min.X, r.Max.X
	}
	p.LevelRegion = s
	p.Orientation = o
}

// OrientedSize returns the displayed size of a stored w×h image shown
// with EXIF orientation o: orientations 5 to 8 swap the sides.
func OrientedSize(o, w, h int) (int, int) {
	if o >= 5 && o <= 8 {
		return h, w
	}
	return w, h
}
