package plan

import (
	"fmt"
	"image"
	"math"
	"strings"

	"github.com/iiifd/iiifd/internal/iiif"
)

// MaxDim is the largest image or output dimension the planner handles. It
// keeps every product of two dimensions far inside int64.
const MaxDim = 1 << 30

// Make plans req for img under lim. Every error is an *Error (or the
// *iiif.Error of a Request that ParseImage would not have returned), with
// the HTTP status the spec asks for:
//
//   - a region that lies outside the image: 400 (3.0 §4.1, 2.1 §4.1);
//   - a size below 1 pixel: 400 (3.0 §4.2, 2.1 §4.2);
//   - version 3, a size larger than the region without "^": 400 (3.0 §4.2),
//     except that up to 1 pixel too many per dimension is forgiven and
//     clamped to the region, because viewers round tile sizes up;
//   - a size that needs upscaling when the server does not upscale (see
//     Limits): 501 (3.0 §4.2; 2.1 §7.2 "a valid IIIF request that is not
//     implemented");
//   - a size above maxWidth, maxHeight or maxArea: 400 in version 3 (§4.2:
//     "greater than the server-imposed limits ... SHOULD result in a 400")
//     and 404 in version 2 (§7.2: 404 when "the requested size is greater
//     than the limits specified"; 2.1 has no more specific rule). The sizes
//     max, ^max, !w,h and ^!w,h never fail on limits: they shrink to fit
//     (3.0 §4.2 "constrained to a smaller size by maxWidth ...", "not larger
//     than ... server-imposed limits");
//   - an image with impossible dimensions or levels: 500.
func Make(req iiif.Request, img Image, lim Limits) (Plan, error) {
	if err := checkImage(img); err != nil {
		return Plan{}, err
	}
	req, err := normalize(req)
	if err != nil {
		return Plan{}, err
	}
	region, err := regionRect(req.Region, img)
	if err != nil {
		return Plan{}, err
	}
	rw, rh := region.Dx(), region.Dy()
	deg := req.Rotation.Degrees
	if deg == 360 {
		deg = 0 // a full turn is no turn; one canonical form for both
	}
	// Every limit bounds the image as delivered: the bounding box after
	// rotation (b.deg), so that a 45° turn cannot double the area served.
	b := lim.bounds(req.Format)
	b.deg = deg
	upOK := lim.MaxWidth > 0 || lim.MaxArea > 0
	maxW, maxH := b.fit(rw, rh, int64(rw), int64(rh))
	upW, upH := maxW, maxH
	if upOK {
		upW, upH = b.fit(rw, rh, MaxDim, MaxDim)
	}
	w, h, err := scaledSize(req, rw, rh, b, upOK, [2]int{maxW, maxH}, [2]int{upW, upH})
	if err != nil {
		return Plan{}, err
	}
	level, levelRegion := chooseLevel(img, region, w, h)
	decoded := DecodeArea(img, level, levelRegion)
	if lim.MaxSourcePixels > 0 && decoded > lim.MaxSourcePixels {
		return Plan{}, &Error{Part: "image", Status: statusNotImplemented, Msg: fmt.Sprintf(
			"the request needs %d source pixels decoded, more than this server's limit of %d (maxSourcePixels); ask for a smaller region or size, or store the image as a tiled pyramid", decoded, lim.MaxSourcePixels)}
	}
	ow, oh := rotatedSize(w, h, deg)
	p := Plan{
		Region:      region,
		Level:       level,
		LevelRegion: levelRegion,
		Width:       w,
		Height:      h,
		OutWidth:    ow,
		OutHeight:   oh,
		Rotation:    deg,
		Mirror:      req.Rotation.Mirror,
		Decoded:     decoded,
		Held:        heldArea(img, level, levelRegion),
		Quality:     req.Quality,
		Format:      req.Format,
	}
	p.Canonical = iiif.Canonical(req.Version, iiif.Geometry{
		WholeImage: region == image.Rect(0, 0, img.Width, img.Height),
		X:          region.Min.X,
		Y:          region.Min.Y,
		W:          rw,
		H:          rh,
		Width:      w,
		Height:     h,
		IsMax:      w == maxW && h == maxH,
		IsUpMax:    upOK && w == upW && h == upH,
		Degrees:    deg,
		Mirror:     p.Mirror,
		Quality:    p.Quality,
		Format:     p.Format,
	})
	return p, nil
}

// checkImage rejects images the planner cannot reason about; these are
// faults of the header probe, not of the client.
func checkImage(img Image) error {
	fault := func(msg string) error {
		return &Error{Part: "image", Msg: msg, Status: statusInternalServerError}
	}
	if img.Width < 1 || img.Height < 1 || img.Width > MaxDim || img.Height > MaxDim {
		return fault(fmt.Sprintf("image size %dx%d is out of range", img.Width, img.Height))
	}
	for i, l := range img.Levels {
		if i == 0 && (l.Width != img.Width || l.Height != img.Height) {
			return fault("level 0 is not the full image")
		}
		if l.Width < 1 || l.Height < 1 || l.Width > img.Width || l.Height > img.Height {
			return fault(fmt.Sprintf("level %d has size %dx%d", i, l.Width, l.Height))
		}
	}
	return nil
}

// normalize makes sure req is a Request that ParseImage returns, by writing
// it out and parsing it again. Requests from ParseImage pass unchanged;
// hand-built ones with NaN, negative or out-of-range values get the same
// 400 a URL would, and stray fields that String ignores are dropped.
func normalize(req iiif.Request) (iiif.Request, error) {
	seg := strings.SplitN(req.String(), "/", 4)
	if len(seg) != 4 {
		return iiif.Request{}, badRequest("request", "malformed request")
	}
	return iiif.ParseImage(req.Version, seg[0], seg[1], seg[2], seg[3])
}

// regionRect resolves the region parameter to pixels of the full image,
// clipped to it (3.0 §4.1: "the service SHOULD return an image cropped at the
// image's edge").
func regionRect(r iiif.Region, img Image) (image.Rectangle, error) {
	W, H := img.Width, img.Height
	switch r.Kind {
	case iiif.RegionFull:
		return image.Rect(0, 0, W, H), nil
	case iiif.RegionSquare:
		// The spec lets the server place the square; centred is its
		// suggested default. Odd leftovers go to the right/bottom.
		s := min(W, H)
		x, y := (W-s)/2, (H-s)/2
		return image.Rect(x, y, x+s, y+s), nil
	case iiif.RegionPercent:
		// Percentages are turned into pixel edges, each rounded half up,
		// rather than into an origin and a rounded size: adjacent pct
		// regions then share an edge exactly, with no gap or overlap. A
		// region that overlaps the image keeps at least one pixel.
		fx0, fy0 := r.X*float64(W)/100, r.Y*float64(H)/100
		if fx0 >= float64(W) || fy0 >= float64(H) {
			return image.Rectangle{}, outside(r, W, H)
		}
		fx1 := min((r.X+r.W)*float64(W)/100, float64(W))
		fy1 := min((r.Y+r.H)*float64(H)/100, float64(H))
		x0, x1 := edges(fx0, fx1, W)
		y0, y1 := edges(fy0, fy1, H)
		return image.Rect(x0, y0, x1, y1), nil
	}
	x, y, w, h := int(r.X), int(r.Y), int(r.W), int(r.H)
	// 3.0 §4.1: "if the region is entirely outside the bounds of the
	// reported dimensions, then the server SHOULD return a 400".
	if x >= W || y >= H {
		return image.Rectangle{}, outside(r, W, H)
	}
	return image.Rect(x, y, min(x+w, W), min(y+h, H)), nil
}

// edges rounds a pct region's float edges to whole pixels inside [0, n],
// keeping at least one pixel.
func edges(f0, f1 float64, n int) (int, int) {
	a, b := int(roundHalfUp(f0)), int(roundHalfUp(f1))
	if a > n-1 {
		a = n - 1
	}
	if b <= a {
		b = a + 1
	}
	return a, b
}

func outside(r iiif.Region, w, h int) error {
	return badRequest("region", fmt.Sprintf("region %s lies outside the %dx%d image", r, w, h))
}

// roundHalfUp rounds x to the nearest integer, halves up. The tiny bias
// keeps values like 1.4999999999999998, float noise for an exact 1.5, from
// rounding down.
func roundHalfUp(x float64) float64 {
	return math.Floor(x + 0.5 + 1e-9)
}

// limit is one effective size limit and where it came from, for messages.
type limit struct {
	v      int64 // MaxDim (or MaxDim² for areas) when unlimited
	set    bool
	format bool // set by the output format's own limits
}

// bounds are the limits in force for one output format.
type bounds struct {
	w, h, area limit
	f          iiif.Format
	// deg is the rotation the output gets: the limits bound the rotated
	// bounding box of a size.
	deg float64
}

func (l Limits) bounds(f iiif.Format) bounds {
	b := bounds{
		w:    limit{v: MaxDim},
		h:    limit{v: MaxDim},
		area: limit{v: MaxDim * MaxDim},
		f:    f,
	}
	apply := func(maxW, maxH int, maxArea int64, format bool) {
		if maxH <= 0 {
			maxH = maxW // 3.0 §5.2: "clients should infer that maxHeight = maxWidth"
		}
		if maxW > 0 && int64(maxW) < b.w.v {
			b.w = limit{v: int64(maxW), set: true, format: format}
		}
		if maxH > 0 && int64(maxH) < b.h.v {
			b.h = limit{v: int64(maxH), set: true, format: format}
		}
		if maxArea > 0 && maxArea < b.area.v {
			b.area = limit{v: maxArea, set: true, format: format}
		}
	}
	apply(l.MaxWidth, l.MaxHeight, l.MaxArea, false)
	if fl, ok := l.PerFormat[f]; ok {
		apply(fl.MaxWidth, fl.MaxHeight, fl.MaxArea, true)
	}
	return b
}

// exceeds returns the error for a size over one of the limits, or nil.
func (b bounds) exceeds(v iiif.Version, w, h int) error {
	status := statusBadRequest
	if v == iiif.V2 {
		status = statusNotFound
	}
	check := func(what string, got int64, l limit, name string) error {
		if got <= l.v {
			return nil
		}
		msg := fmt.Sprintf("requested %s %d exceeds ", what, got)
		if b.deg != 0 {
			msg = fmt.Sprintf("requested %s %d after rotation by %g° exceeds ", what, got, b.deg)
		}
		switch {
		case !l.set:
			msg += fmt.Sprintf("the largest supported %s %d", what, l.v)
		case l.format:
			msg += fmt.Sprintf("%s %d for format %s", name, l.v, b.f)
		default:
			msg += fmt.Sprintf("%s %d", name, l.v)
		}
		return &Error{Part: "size", Msg: msg, Status: status}
	}
	w, h = rotatedSize(w, h, b.deg)
	if err := check("width", int64(w), b.w, "maxWidth"); err != nil {
		return err
	}
	if err := check("height", int64(h), b.h, "maxHeight"); err != nil {
		return err
	}
	return check("area", int64(w)*int64(h), b.area, "maxArea")
}

// scaledSize resolves the size parameter against a rw×rh region. maxSize
// and upMax are what "max" and "^max" give.
func scaledSize(req iiif.Request, rw, rh int, b bounds, upOK bool, maxSize, upMax [2]int) (int, int, error) {
	s := req.Size
	v3 := req.Version == iiif.V3
	// strict: version 3 without "^" must not go beyond the region.
	strict := v3 && !s.Upscale
	var w, h int
	switch s.Kind {
	case iiif.SizeMax:
		if v3 && s.Upscale {
			return upMax[0], upMax[1], nil
		}
		// Version 2 "full" is served like "max": the region unscaled,
		// unless that is over the limits, when it is shrunk to fit rather
		// than refused, so that the deprecated spelling of "max" (2.1
		// §4.2) behaves as "max" does.
		return maxSize[0], maxSize[1], nil
	case iiif.SizeBestFit:
		bw, bh := int64(s.W), int64(s.H)
		// Version 3 "!w,h" must not be "larger than the extracted region"
		// (§4.2); "^!w,h" may be, and gets 501 when that needs upscaling
		// the server does not do. Version 2 leaves the exact scaling to the
		// server (§4.2 "MAY be determined by the service provider"); it
		// upscales only where upscaling is served, and never fails for
		// want of it.
		if strict || (!v3 && !upOK) {
			bw, bh = min(bw, int64(rw)), min(bh, int64(rh))
		}
		w, h = b.fit(rw, rh, bw, bh)
		if (w > rw || h > rh) && !upOK {
			return 0, 0, noUpscaling()
		}
		return w, h, nil
	case iiif.SizeWidth:
		w = s.W
		if strict {
			if err := tolerate("width", w, rw); err != nil {
				return 0, 0, err
			}
			w = min(w, rw)
		}
		h = iiif.AspectHeight(rw, rh, w)
	case iiif.SizeHeight:
		h = s.H
		if strict {
			if err := tolerate("height", h, rh); err != nil {
				return 0, 0, err
			}
			h = min(h, rh)
		}
		w = iiif.AspectWidth(rw, rh, h)
	case iiif.SizePercent:
		fw, fh := float64(rw)*s.Percent/100, float64(rh)*s.Percent/100
		if fw > MaxDim || fh > MaxDim {
			if !upOK {
				return 0, 0, noUpscaling()
			}
			return 0, 0, b.exceeds(req.Version, int(min(fw, 2*MaxDim)), int(min(fh, 2*MaxDim)))
		}
		w, h = int(roundHalfUp(fw)), int(roundHalfUp(fh))
	case iiif.SizeExact:
		w, h = s.W, s.H
		if strict {
			if err := tolerate("width", w, rw); err != nil {
				return 0, 0, err
			}
			if err := tolerate("height", h, rh); err != nil {
				return 0, 0, err
			}
			w, h = min(w, rw), min(h, rh)
		}
	}
	if w < 1 || h < 1 {
		return 0, 0, badRequest("size", fmt.Sprintf("size %s of a %dx%d region is less than 1 pixel", s, rw, rh))
	}
	if (w > rw || h > rh) && !upOK {
		return 0, 0, noUpscaling()
	}
	if err := b.exceeds(req.Version, w, h); err != nil {
		return 0, 0, err
	}
	return w, h, nil
}

// tolerate checks a version 3 dimension without "^" against the region's.
// 3.0 §4.2 makes a size above the region a 400; one pixel over is let
// through (and clamped by the caller) because viewers that compute sizes
// from scale factors round up and then ask for one pixel more than exists.
func tolerate(what string, got, region int) error {
	if got <= region+1 {
		return nil
	}
	return badRequest("size", fmt.Sprintf("requested %s %d is larger than the region's %d; prefix the size with ^ to upscale", what, got, region))
}

func noUpscaling() error {
	return &Error{Part: "size", Msg: "upscaling is not supported by this server", Status: statusNotImplemented}
}

// fit returns the largest size with the aspect ratio of rw×rh (as closely as
// whole pixels allow) within bw×bh and area pixels. The dimension that binds
// is exact and the other is rounded half up, the same rounding as the "w,"
// and ",h" forms; when the area binds, both are rounded down so the area is
// never exceeded (the approach of the 3.0 implementation notes §4).
func fit(rw, rh int, bw, bh, area int64) (int, int) {
	RW, RH := int64(rw), int64(rh)
	var w, h int64
	if bw*RH <= bh*RW { // bw/rw <= bh/rh: the width binds
		w, h = bw, int64(iiif.AspectHeight(rw, rh, int(bw)))
	} else {
		w, h = int64(iiif.AspectWidth(rw, rh, int(bh))), bh
	}
	w, h = max(1, min(w, bw)), max(1, min(h, bh))
	if w*h > area {
		s := math.Sqrt(float64(area) / (float64(RW) * float64(RH)))
		w = max(1, min(w, int64(float64(RW)*s)))
		h = max(1, min(h, int64(float64(RH)*s)))
		// Float error or the 1-pixel floor can leave the area a little
		// over; trim the dimension that costs the least aspect.
		if w*h > area {
			if w <= h {
				h = max(1, area/w)
				if w*h > area {
					w = max(1, area/h)
				}
			} else {
				w = max(1, area/h)
				if w*h > area {
					h = max(1, area/w)
				}
			}
		}
	}
	return int(w), int(h)
}

// fits reports whether a w×h image, rotated, is within the bounds.
func (b bounds) fits(w, h int) bool {
	ow, oh := rotatedSize(w, h, b.deg)
	return int64(ow) <= b.w.v && int64(oh) <= b.h.v && int64(ow)*int64(oh) <= b.area.v
}

// fit returns the largest size with the aspect ratio of rw×rh that is
// within capW×capH before rotation (the region's own size, or what a
// "!w,h" asks for) and whose rotated bounding box is within the bounds.
// Multiples of 90° are exact: the limits swap for a quarter turn. Other
// angles start from the scale at which the rotated box of the region
// meets the tightest limit and shrink a pixel step at a time while
// rounding leaves the box over it; a 1×1 image always fits, as its
// rotated box rounds to 1×1.
func (b bounds) fit(rw, rh int, capW, capH int64) (int, int) {
	switch {
	case math.Mod(b.deg, 180) == 0:
		return fit(rw, rh, min(capW, b.w.v), min(capH, b.h.v), b.area.v)
	case math.Mod(b.deg, 90) == 0:
		return fit(rw, rh, min(capW, b.h.v), min(capH, b.w.v), b.area.v)
	}
	rad := b.deg * math.Pi / 180
	c, s := math.Abs(math.Cos(rad)), math.Abs(math.Sin(rad))
	fw, fh := float64(rw)*c+float64(rh)*s, float64(rh)*c+float64(rw)*s
	k := min(float64(b.w.v)/fw, float64(b.h.v)/fh, math.Sqrt(float64(b.area.v)/fw/fh))
	cw := min(capW, MaxDim, max(1, int64(k*float64(rw))+1))
	ch := min(capH, MaxDim, max(1, int64(k*float64(rh))+1))
	for {
		w, h := fit(rw, rh, cw, ch, MaxDim*MaxDim)
		if b.fits(w, h) || (w == 1 && h == 1) {
			return w, h
		}
		// Lower the bound of the longer side below what was returned:
		// the other side follows by the aspect ratio.
		if w >= h {
			cw = max(1, int64(w)-max(1, int64(w)/1000))
		} else {
			ch = max(1, int64(h)-max(1, int64(h)/1000))
		}
	}
}

// chooseLevel picks the smallest level in which the region still has
// enough pixels for the w×h output (see covers), so the decoder reads as
// little as possible and the result is only scaled down; when no level has
// (upscaling), level 0. It returns the level and the region mapped onto
// that level's pixel grid with the level's own scale (levels may be
// rounded, e.g. ceil(W/8) for JPEG shrink-on-load), rounded outward and
// clipped to the level.
func chooseLevel(img Image, r image.Rectangle, w, h int) (int, image.Rectangle) {
	if len(img.Levels) == 0 {
		return 0, r
	}
	W, H := int64(img.Width), int64(img.Height)
	rw, rh := int64(r.Dx()), int64(r.Dy())
	best := 0
	bestArea := int64(img.Levels[0].Width) * int64(img.Levels[0].Height)
	for i, l := range img.Levels {
		lw, lh := int64(l.Width), int64(l.Height)
		if covers(rw, lw, W, int64(w)) && covers(rh, lh, H, int64(h)) && lw*lh < bestArea {
			best, bestArea = i, lw*lh
		}
	}
	l := img.Levels[best]
	lw, lh := int64(l.Width), int64(l.Height)
	x0 := int64(r.Min.X) * lw / W
	y0 := int64(r.Min.Y) * lh / H
	x1 := (int64(r.Max.X)*lw + W - 1) / W
	y1 := (int64(r.Max.Y)*lh + H - 1) / H
	return best, image.Rect(int(x0), int(y0), int(min(x1, lw)), int(min(y1, lh)))
}

// DecodeArea is the number of pixels the decoder produces to read region r
// of level i of img. On a tiled level that is every whole tile under r
// (one at least): decoders decode tiles whole, so a one-pixel crop of an
// image stored as one huge tile decodes all of it. On an untiled level it
// is the level's full width down to the end of the strip that holds r's
// last row, as sequential decoders decode every row above the ones they
// keep, and strips whole.
func DecodeArea(img Image, i int, r image.Rectangle) int64 {
	if i >= len(img.Levels) {
		return int64(img.Width) * int64(r.Max.Y)
	}
	l := img.Levels[i]
	if l.Tiled {
		return int64(tileAligned(l, r).Dx()) * int64(tileAligned(l, r).Dy())
	}
	return int64(l.Width) * int64(stripEnd(l, r.Max.Y))
}

// heldArea is Plan.Held: the pixels the decoder holds at once at least
// for region r of level i.
func heldArea(img Image, i int, r image.Rectangle) int64 {
	a := int64(r.Dx()) * int64(r.Dy())
	if i >= len(img.Levels) {
		return a
	}
	l := img.Levels[i]
	if l.Tiled {
		return int64(tileAligned(l, r).Dx()) * int64(tileAligned(l, r).Dy())
	}
	return a + int64(l.Width)*int64(stripEnd(l, 1))
}

// tileAligned widens r to the tile grid of level l, clipped to the level;
// r itself when the tile size is unknown.
func tileAligned(l Level, r image.Rectangle) image.Rectangle {
	tw, th := l.TileWidth, l.TileHeight
	if tw <= 0 || th <= 0 {
		return r
	}
	x0, y0 := r.Min.X/tw*tw, r.Min.Y/th*th
	x1 := min(int64(r.Max.X+tw-1)/int64(tw)*int64(tw), int64(l.Width))
	y1 := min(int64(r.Max.Y+th-1)/int64(th)*int64(th), int64(l.Height))
	return image.Rect(x0, y0, int(x1), int(y1))
}

// stripEnd is the row after the end of the strip that holds row y-1 of
// level l: y rounded up to whole strips, clipped to the level.
func stripEnd(l Level, y int) int {
	rps := int64(l.RowsPerStrip)
	if rps <= 0 {
		return y
	}
	return int(min((int64(y)+rps-1)/rps*rps, int64(l.Height)))
}

// SmallestDecode is the fewest source pixels decoded to show img: the
// area of its smallest untiled level (a thumbnail of it), or of one tile
// of a tiled level (its tiles can be served one by one; 1 when the tile
// size is unknown). A source whose SmallestDecode exceeds MaxSourcePixels
// cannot be shown at all: a decompression bomb, a huge image without a
// pyramid, or one stored as a single huge tile.
func SmallestDecode(img Image) int64 {
	if len(img.Levels) == 0 {
		return int64(img.Width) * int64(img.Height)
	}
	least := int64(-1)
	for _, l := range img.Levels {
		a := int64(l.Width) * int64(l.Height)
		if l.Tiled {
			a = 1
			if l.TileWidth > 0 && l.TileHeight > 0 {
				a = int64(min(l.TileWidth, l.Width)) * int64(min(l.TileHeight, l.Height))
			}
		}
		if least < 0 || a < least {
			least = a
		}
	}
	return least
}

// covers reports whether a region n pixels long in a full dimension of
// length full, mapped to a level dimension of length lvl (n·lvl/full
// pixels), has enough pixels for out output pixels. It has when it is at
// least out long, or when it falls short by less than one pixel and less
// than 1%: the tile algorithm of the spec rounds edge tile sizes up (3.0
// implementation notes §3, ceil((width - xr)/s)), so the right and bottom
// tiles at scale factor s ask for a fraction of a pixel more than level
// 1/s holds, and should still be read from that level. The 1% bound keeps
// tiny regions, where a fraction of a pixel is a large upscale, at a finer
// level.
func covers(n, lvl, full, out int64) bool {
	if n*lvl >= out*full {
		return true
	}
	return n*lvl > (out-1)*full && float64(n)*float64(lvl)*1.01 >= float64(out)*float64(full)
}

// rotatedSize returns the bounding box of a w×h image turned clockwise by
// deg degrees, 0 <= deg < 360. Multiples of 90 are exact; other angles use
// the formula of the 3.0 implementation notes §5, |w·cos|+|h·sin| by
// |h·cos|+|w·sin|, rounded half up after removing float noise so a value
// that is mathematically a whole number is not pushed over it.
func rotatedSize(w, h int, deg float64) (int, int) {
	if math.Mod(deg, 90) == 0 {
		if int(deg/90)%2 == 1 {
			return h, w
		}
		return w, h
	}
	rad := deg * math.Pi / 180
	c, s := math.Abs(math.Cos(rad)), math.Abs(math.Sin(rad))
	fw, fh := float64(w), float64(h)
	clean := func(x float64) int {
		x = math.Round(x*1e6) / 1e6
		return max(1, int(math.Floor(x+0.5)))
	}
	return clean(fw*c + fh*s), clean(fh*c + fw*s)
}
