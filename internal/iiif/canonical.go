package iiif

// Geometry is a request resolved against one image: what the planner knows
// once region and size are in pixels. Canonical turns it into the canonical
// request of the spec's "Canonical URI Syntax" sections.
type Geometry struct {
	// WholeImage reports that the region is the full image (3.0: "full if
	// the full image is requested"; 2.1: "including a square region of a
	// square image").
	WholeImage bool
	// X, Y, W and H are the region in full-image pixels, clipped to the
	// image.
	X, Y, W, H int
	// Width and Height are the output size before rotation.
	Width, Height int
	// IsMax reports that Width×Height is exactly what the size "max" gives
	// for this region under the server's limits.
	IsMax bool
	// IsUpMax reports that Width×Height is exactly what the version 3
	// size "^max" gives for this region under the server's limits.
	IsUpMax bool
	// Degrees is the clockwise rotation, 0 <= Degrees < 360.
	Degrees float64
	Mirror  bool
	Quality Quality
	Format  Format
}

// Canonical returns the canonical form of a resolved request for API
// version v. Two requests that produce the same image get equal canonical
// requests: "full" and "0,0,W,H" both become "full", "max" and "W," both
// become "max" (v3) or "full" (v2).
//
// Version 3 (§4.8): region "full" or x,y,w,h; size "max" when the maximum
// size without upscaling is requested, "^max" when the maximum upscaled
// size is, otherwise "w,h", or "^w,h" when the extracted region is
// upscaled; rotation "!" when mirrored, then an integer when possible;
// quality and format as requested.
//
// Version 2.1 (§4.7 and the 2.1.1 change log §1.2): region likewise; size
// "full" when the region is not scaled, "w," when the output keeps the
// region's aspect ratio (the height is the one "w," yields), otherwise
// "w,h". 2.1 keeps "max" out of canonical URIs ("the canonical form of
// requests equivalent to max must continue to use the w, syntax, or the
// full syntax if they are equivalent").
func Canonical(v Version, g Geometry) Request {
	r := Request{
		Version:  v,
		Rotation: Rotation{Degrees: g.Degrees, Mirror: g.Mirror},
		Quality:  g.Quality,
		Format:   g.Format,
	}
	if g.WholeImage {
		r.Region = Region{Kind: RegionFull}
	} else {
		r.Region = Region{Kind: RegionPixels, X: float64(g.X), Y: float64(g.Y), W: float64(g.W), H: float64(g.H)}
	}
	upscale := g.Width > g.W || g.Height > g.H
	switch {
	case v == V2 && g.Width == g.W && g.Height == g.H:
		r.Size = Size{Kind: SizeMax, Full: true}
	case v == V2 && g.Height == AspectHeight(g.W, g.H, g.Width):
		r.Size = Size{Kind: SizeWidth, W: g.Width}
	case v == V2:
		r.Size = Size{Kind: SizeExact, W: g.Width, H: g.Height}
	case g.IsMax:
		r.Size = Size{Kind: SizeMax}
	case g.IsUpMax && upscale:
		r.Size = Size{Kind: SizeMax, Upscale: true}
	default:
		r.Size = Size{Kind: SizeExact, W: g.Width, H: g.Height, Upscale: upscale}
	}
	return r
}

// AspectHeight returns the height that keeps the aspect ratio of a
// regionW×regionH region scaled to width w, rounded half up. It is the
// rounding of the "w," size form everywhere in iiifd (the spec leaves
// rounding to the implementation: 3.0 §4.7, 2.1 §4). The result may be 0
// for extreme ratios; callers reject that. Arguments must be positive and at
// most 1<<30 so that the products cannot overflow.
func AspectHeight(regionW, regionH, w int) int {
	return roundDiv(int64(regionH)*int64(w), int64(regionW))
}

// AspectWidth is AspectHeight for the ",h" form: the width that keeps the
// aspect ratio of the region scaled to height h, rounded half up.
func AspectWidth(regionW, regionH, h int) int {
	return roundDiv(int64(regionW)*int64(h), int64(regionH))
}

// roundDiv returns a/b rounded half up, for a >= 0 and b > 0.
func roundDiv(a, b int64) int {
	return int((2*a + b) / (2 * b))
}
