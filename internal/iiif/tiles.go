package iiif

import "slices"

// ScaleFactors returns the powers of two 1, 2, 4, ... up to and including the
// first factor s at which the whole w×h image, reduced to ceil(w/s) ×
// ceil(h/s) as in the spec's tile algorithm (3.0 implementation notes §3),
// fits in one tileW×tileH tile. A 6000×4000 image with 512 tiles gives
// [1 2 4 8 16], the spec's example (3.0 §5.4). It returns nil when an
// argument is not positive.
func ScaleFactors(w, h, tileW, tileH int) []int {
	if w < 1 || h < 1 || tileW < 1 || tileH < 1 {
		return nil
	}
	out := []int{1}
	for s := 1; ceilDiv(w, s) > tileW || ceilDiv(h, s) > tileH; {
		s *= 2
		out = append(out, s)
	}
	return out
}

// SizesFor returns the full-image sizes at the given scale factors that are
// within the limits (0 = no limit; maxHeight defaults to maxWidth as 3.0
// §5.2 tells clients to infer), smallest first and without duplicates. The
// width at factor s is ceil(w/s) and the height is the one the "w," size
// form gives for that width (AspectHeight), so a client may request an
// entry as "w," or "w,h" and get the same image, as 2.1 §5.2 asks servers to
// allow.
func SizesFor(w, h int, factors []int, maxWidth, maxHeight int, maxArea int64) []SizeEntry {
	if w < 1 || h < 1 {
		return nil
	}
	if maxHeight <= 0 {
		maxHeight = maxWidth
	}
	var out []SizeEntry
	for _, s := range factors {
		if s < 1 {
			continue
		}
		sw := ceilDiv(w, s)
		sh := AspectHeight(w, h, sw)
		if sh < 1 ||
			(maxWidth > 0 && sw > maxWidth) ||
			(maxHeight > 0 && sh > maxHeight) ||
			(maxArea > 0 && int64(sw)*int64(sh) > maxArea) {
			continue
		}
		e := SizeEntry{Width: sw, Height: sh}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b SizeEntry) int { return a.Width - b.Width })
	return out
}

// ceilDiv returns ceil(a/b) for a >= 1 and b >= 1, without overflow.
func ceilDiv(a, b int) int { return (a-1)/b + 1 }
